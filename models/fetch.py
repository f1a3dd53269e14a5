"""Fetch a model named by its manifest and verify its sha256: `make model`.

Usage: python -m models.fetch [models/amazon_review_full.json]   (from the project root)

Tries MODEL_FROM first when it is set (a local copy of the model file), then
the manifest's official `url`; where that cannot be reached (as on machines
without internet) copies the manifest's `fallback` (a path relative to the
project root, `../shared/models/...`). Either way the file is written
only after its sha256 matches the manifest, so a half download or a wrong file
never sits where the worker will load it.
"""

import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

from app.manifest import Manifest, ModelError, sha256_of

ROOT = Path(__file__).resolve().parent.parent

DOWNLOAD_TIMEOUT = 15  # seconds; an unreachable host should not stall `make model` for long


def _download(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response, dest.open("wb") as out:
        shutil.copyfileobj(response, out)


def fetch(manifest_path: Path) -> Path:
    manifest = Manifest.read(manifest_path)
    if not manifest.file or not manifest.sha256:
        raise ModelError(f"{manifest_path} must name the model `file` and its `sha256`")
    target = manifest_path.parent / manifest.file
    if target.is_file() and sha256_of(target) == manifest.sha256:
        print(f"{target}: present, sha256 verified")
        return target

    sources = []
    if os.environ.get("MODEL_FROM"):
        sources.append(("copy", str(Path(os.environ["MODEL_FROM"]).expanduser().resolve())))
    if manifest.url:
        sources.append(("download", manifest.url))
    if manifest.fallback:
        sources.append(("copy", str((ROOT / manifest.fallback).resolve())))
    failures = []
    with tempfile.TemporaryDirectory(dir=manifest_path.parent) as tmp:
        candidate = Path(tmp) / manifest.file
        for how, source in sources:
            try:
                if how == "download":
                    _download(source, candidate)
                else:
                    shutil.copyfile(source, candidate)
            except OSError as exc:  # URLError and socket timeouts are OSErrors
                failures.append(f"{how} {source}: {getattr(exc, 'reason', None) or exc}")
                print(f"  {failures[-1]}", file=sys.stderr)
                continue
            digest = sha256_of(candidate)
            if digest != manifest.sha256:
                failures.append(f"{how} {source}: sha256 {digest}, expected {manifest.sha256}")
                print(f"  {failures[-1]}", file=sys.stderr)
                continue
            candidate.replace(target)
            print(f"{target}: {how} from {source}, sha256 verified")
            return target
    raise ModelError("could not fetch a verified model:\n  " + "\n  ".join(failures) + "\n"
                     f"With no internet, point it at a local copy of {manifest.file}: "
                     f"`make model MODEL_FROM=/path/to/{manifest.file}` (checked against its sha256), "
                     f"or put ../shared/ beside the project.")


def main(argv: list[str]) -> int:
    manifest_path = Path(argv[1] if len(argv) > 1 else ROOT / "models" / "amazon_review_full.json").resolve()
    try:
        fetch(manifest_path)
    except ModelError as exc:
        print(f"make model: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
