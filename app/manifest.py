"""A model's manifest: ``models/<name>.json`` beside ``models/<name>.ftz``.

It states the model's sha256, where it comes from, the preprocessing it was
trained on and how its labels read. The manifest is what makes "serve what the
model was trained on" a property of the model rather than of the code.
Standard library only, so `make model` can use it before anything is installed.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .normalize import PREPROCESSORS  # standard library only, as this module


class ModelError(Exception):
    """The model cannot be served: missing, corrupt, or its manifest is wrong."""


@dataclass(frozen=True)
class Manifest:
    file: str | None = None
    sha256: str | None = None
    url: str | None = None
    fallback: str | None = None
    preprocessing: str = "none"
    label_format: str = "{}"
    # What the Open Inference Protocol's routes call the model (default: the file's stem).
    name: str | None = None
    version: str = "1"

    @classmethod
    def read(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ModelError(f"cannot read model manifest {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise ModelError(f"model manifest {path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ModelError(f"model manifest {path} must be a JSON object")
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        manifest = cls(**known)
        for field in ("name", "version"):
            value = getattr(manifest, field)
            if value is not None and not (isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value)):
                raise ModelError(f"model manifest {path}: `{field}` must be 1 to 64 letters, digits, _ . or -")
        if manifest.preprocessing not in PREPROCESSORS:
            raise ModelError(
                f"model manifest {path} names unknown preprocessing "
                f"{manifest.preprocessing!r}; known: {', '.join(PREPROCESSORS)}"
            )
        return manifest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
