"""Where the tests find the project and ../shared/ (a plain module: test modules import it, not conftest)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
REAL_MODEL = ROOT / "models" / "amazon_review_full.ftz"
TINY_DATA = Path(__file__).parent / "data" / "tiny_reviews.csv"
# The model trained from it (conftest.py), by the name the Open Inference Protocol's routes give it: its file's stem.
TINY_MODEL_NAME = "tiny"


def shared_file(*parts) -> Path:
    """A file from ../shared/: these tests fail, never skip, when it is missing."""
    path = SHARED.joinpath(*parts)
    assert path.is_file(), f"{path} is missing: the tests need ../shared/ beside the project (see README)"
    return path
