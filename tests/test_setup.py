"""What a fresh machine and the deployment files get: the system packages
`make` installs or names, local mode's addresses, Swarm's translation."""

import json
import os
import re
import subprocess
import sys

import pytest
from stacktools import localstack, nginxconf, swarm

from .paths import ROOT

ENSURE = ROOT / "docker" / "bootstrap" / "ensure-packages.sh"


def test_missing_packages_stop_make_at_once_with_the_exact_command(tmp_path):
    """With a PATH that holds none of the tools (and NO_INSTALL=1, so nothing is
    installed), the script names every missing package in one apt-get line."""
    for tool in ("env", "bash", "id"):
        (tmp_path / tool).symlink_to(f"/usr/bin/{tool}")
    result = subprocess.run(["/usr/bin/bash", str(ENSURE), "test"], capture_output=True, text=True,
                            env={"PATH": str(tmp_path), "NO_INSTALL": "1", "PYTHON": "python3"})
    assert result.returncode == 1
    command = result.stderr.splitlines()[-1].strip()
    assert command.startswith("apt-get update && apt-get install -y --no-install-recommends ")
    assert {"make", "gcc", "python3-venv", "fasttext", "wrk", "valgrind", "curl"} <= set(command.split())


@pytest.mark.parametrize("target", ["build", "check", pytest.param("test", marks=pytest.mark.e2e)])
def test_nothing_to_do_when_every_package_is_there(target):
    """This machine ran `make check` (or `make test`, for the e2e tier), which
    installed them: the check passes silently."""
    result = subprocess.run([str(ENSURE), target], capture_output=True, text=True,
                            env={**os.environ, "NO_INSTALL": "1", "PYTHON": sys.executable})
    assert (result.returncode, result.stderr) == (0, ""), target


def test_local_mode_listens_on_loopback_unless_told(tmp_path):
    """The local stack's nginx as nginx/render.sh writes it for each PUBLISH_ADDR."""
    port, status_port = (nginxconf.settings()[name] for name in ("NGINX_PORT", "NGINX_STATUS_PORT"))

    def listens(publish_addr):
        nginxconf.render(tmp_path, ["127.0.0.1:8001"], **localstack.nginx_addresses(publish_addr))
        return re.findall(r"^ *listen (.*);$", (tmp_path / "nginx.conf").read_text(), re.M)

    assert listens("127.0.0.1") == [f"127.0.0.1:{port} backlog=4096", f"127.0.0.1:{status_port}"]
    # the status port stays on loopback
    assert listens("0.0.0.0") == [f"0.0.0.0:{port} backlog=4096", f"127.0.0.1:{status_port}"]
    assert listens("::1") == [f"[::1]:{port} backlog=4096", f"127.0.0.1:{status_port}"]


def test_swarm_restarts_any_ended_task_and_limits_memory():
    """docker/stacktools/swarm.py on the compose file's own configuration (as `make swarm-deploy` gives it)."""

    config = {"services": {
        "worker": {"image": "w", "restart": "unless-stopped", "mem_limit": "268435456", "pids_limit": 32,
                   "deploy": {"replicas": 2}},
        "nginx": {"image": "n", "restart": "unless-stopped", "mem_limit": "268435456", "pids_limit": 256,
                  "ports": [{"target": 9000, "published": "9000", "host_ip": "127.0.0.1"}]},
    }}
    out = json.loads(json.dumps(swarm.stack(config)))
    for name in ("worker", "nginx"):
        svc = out["services"][name]
        assert svc["deploy"]["restart_policy"]["condition"] == "any"
        assert svc["deploy"]["resources"]["limits"]["memory"] == "268435456b"
        assert not {"restart", "mem_limit", "pids_limit"} & set(svc)


REQUIREMENTS = ["requirements.txt", "requirements-build.txt", "requirements-dev.txt", "requirements-peers.txt",
                "requirements-loadtest.txt"]


def pins(text: str) -> dict[str, str]:
    norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
    return {norm(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9._-]+)==(\S+)", text, re.M)}


def test_every_requirement_is_pinned_with_hashes_as_its_in_file_says():
    """requirements*.txt (made by `make requirements`) pin every package, each
    with the sha256 of its files, at the versions requirements*.in name."""
    for name in REQUIREMENTS:
        text = (ROOT / name).read_text()
        entries = [e for e in text.replace("\\\n", " ").splitlines() if e and not e.lstrip().startswith("#")]
        assert entries, name
        for entry in entries:
            assert "==" in entry and "--hash=sha256:" in entry, (name, entry)
        wanted = pins((ROOT / name.replace(".txt", ".in")).read_text())
        got = pins(text)
        assert {k: got.get(k) for k in wanted} == wanted, name


def test_make_help_names_every_command():
    """The README says `make help` lists every command: every .PHONY target."""
    makefiles = (ROOT / "Makefile").read_text() + (ROOT / "loadtest" / "loadtest.mk").read_text()
    phony = set(" ".join(re.findall(r"^\.PHONY:((?:.*\\\n)*.*)$", makefiles, re.M)).replace("\\", " ").split())
    shown = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout
    named = set(re.findall(r"make ([a-z-]+)", shown)) | set(re.findall(r"\| ([a-z-]+)", shown))
    assert phony and phony - {"help"} <= named, sorted(phony - named)
