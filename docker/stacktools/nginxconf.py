"""nginx's settings and configuration for Python, from nginx/render.sh: the one
renderer (the nginx image runs it too, with no Python), so the settings have one
reader and one rule for overrides.

    settings(**overrides)                  # {"NGINX_PORT": "9000", ..., "NGINX_URL": "http://127.0.0.1:9000"}
    render(directory, addresses, **overrides)   # nginx.conf, proxy.conf, upstream.conf there

`overrides` (NAME=value) go over the environment, which goes over
nginx/settings.env; an empty value leaves the default.
"""

import os
import subprocess
from pathlib import Path

RENDER = Path(__file__).resolve().parents[2] / "nginx" / "render.sh"


def _render(args: list[str], overrides: dict) -> str:
    env = {**os.environ, **{name: str(value) for name, value in overrides.items()}}
    result = subprocess.run([str(RENDER), *args], env=env, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(result.stderr.strip() or f"{RENDER} failed")
    return result.stdout


def settings(**overrides) -> dict[str, str]:
    """The settings in effect, and the addresses they give (NGINX_LISTEN, NGINX_URL, ...)."""
    return dict(line.split("=", 1) for line in _render(["--settings"], overrides).splitlines())


def render(directory: Path, addresses: list[str], **overrides) -> None:
    """nginx's configuration files in `directory`, for the workers at `addresses` (host:port, unix:/path)."""
    _render([str(directory), *addresses], overrides)
