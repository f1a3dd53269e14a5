from pathlib import Path

import pytest
from falcon import testing

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
REAL_MODEL = ROOT / "models" / "amazon_review_full.ftz"
TINY_DATA = Path(__file__).parent / "data" / "tiny_reviews.csv"

from app.classifier import Classifier
from app.config import Limits
from app.wsgi import create_app
from models.train import read_reviews, train

# Small limits so the limit tests send small bodies.
TEST_LIMITS = Limits(max_body_bytes=64 * 1024, max_text_chars=2000, max_batch=8)


def shared_file(*parts) -> Path:
    """A file from ../shared/: these tests fail, never skip, when it is missing."""
    path = SHARED.joinpath(*parts)
    assert path.is_file(), f"{path} is missing: the tests need ../shared/ beside the project (see README)"
    return path


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A small model trained in the test, from tests/data/tiny_reviews.csv."""
    out = tmp_path_factory.mktemp("tiny") / "tiny.bin"
    # One thread and a fixed seed: fastText training is then deterministic.
    return train(read_reviews(TINY_DATA), out, epoch=25, lr=0.5, wordNgrams=2, dim=10,
                 bucket=10_000, thread=1, seed=1)


@pytest.fixture(scope="session")
def tiny_classifier(tiny_model_path) -> Classifier:
    return Classifier.load(tiny_model_path)


@pytest.fixture
def tiny_client(tiny_classifier) -> testing.TestClient:
    return testing.TestClient(create_app(tiny_classifier, TEST_LIMITS))


@pytest.fixture(scope="session")
def real_model_path() -> Path:
    assert REAL_MODEL.is_file(), f"{REAL_MODEL} is missing: run `make model`"
    return REAL_MODEL


@pytest.fixture(scope="session")
def real_classifier(real_model_path) -> Classifier:
    return Classifier.load(real_model_path)


@pytest.fixture
def real_client(real_classifier) -> testing.TestClient:
    return testing.TestClient(create_app(real_classifier))
