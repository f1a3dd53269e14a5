"""Worker settings, read from the environment; every one has a default.

| variable            | default                              | meaning                                    |
|---------------------|--------------------------------------|--------------------------------------------|
| HOST                | 127.0.0.1                            | address to bind, or `unix:/path/to.sock`   |
| PORT                | 8001                                 | TCP port (ignored for unix sockets)        |
| MODEL_PATH          | models/amazon_review_full.ftz        | the fastText model                         |
| MODEL_MANIFEST      | MODEL_PATH with `.json`              | sha256, preprocessing and label format     |
| MAX_BODY_BYTES      | 1048576                              | larger request bodies get 413              |
| MAX_TEXT_CHARS      | 20000                                | longer texts get 413                       |
| MAX_BATCH           | 256                                  | more texts in one /v1/predict get 413      |
| SHUTDOWN_TIMEOUT    | 10                                   | seconds a SIGTERM'd worker may drain       |
| DRAIN_QUIET         | 0.5                                  | seconds without a request that end a drain |

Relative paths are resolved against the project root, so the worker starts the
same from any directory.
"""

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1 << 20
    max_text_chars: int = 20_000
    max_batch: int = 256


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8001
    model_path: Path = PROJECT_ROOT / "models" / "amazon_review_full.ftz"
    manifest_path: Path | None = None
    limits: Limits = Limits()
    shutdown_timeout: float = 10.0
    drain_quiet: float = 0.5

    @classmethod
    def from_env(cls, env=os.environ) -> "Settings":
        def path(name, default):
            value = env.get(name)
            if not value:
                return default
            p = Path(value)
            return p if p.is_absolute() else PROJECT_ROOT / p

        def number(name, default, kind):
            value = env.get(name)
            if value in (None, ""):
                return default
            try:
                result = kind(value)
            except ValueError:
                raise SystemExit(f"{name}={value!r} is not a valid {kind.__name__}") from None
            if result <= 0:
                raise SystemExit(f"{name}={value!r} must be positive")
            return result

        return cls(
            host=env.get("HOST") or cls.host,
            port=number("PORT", cls.port, int),
            model_path=path("MODEL_PATH", cls.model_path),
            manifest_path=path("MODEL_MANIFEST", None),
            limits=Limits(
                max_body_bytes=number("MAX_BODY_BYTES", Limits.max_body_bytes, int),
                max_text_chars=number("MAX_TEXT_CHARS", Limits.max_text_chars, int),
                max_batch=number("MAX_BATCH", Limits.max_batch, int),
            ),
            shutdown_timeout=number("SHUTDOWN_TIMEOUT", cls.shutdown_timeout, float),
            drain_quiet=number("DRAIN_QUIET", cls.drain_quiet, float),
        )
