"""The models the tests use (a tiny one trained here, and the real one: `make
model`), and clients of what a worker serves, built by `create_app`."""

import csv
from pathlib import Path

import pytest
from falcon import testing

from app.classifier import Classifier
from app.wsgi import create_app
from models.train import read_reviews, train

from .bad_inputs import TEST_LIMITS
from .paths import REAL_MODEL, TINY_DATA, TINY_MODEL_NAME, shared_file


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A small model trained in the test, from tests/data/tiny_reviews.csv."""
    out = tmp_path_factory.mktemp("tiny") / f"{TINY_MODEL_NAME}.bin"
    # One thread and a fixed seed: fastText training is then deterministic.
    return train(read_reviews(TINY_DATA), out, epoch=25, lr=0.5, wordNgrams=2, dim=10,
                 bucket=10_000, thread=1, seed=1)


@pytest.fixture(scope="session")
def tiny_classifier(tiny_model_path) -> Classifier:
    return Classifier.load(tiny_model_path)


@pytest.fixture
def make_tiny_client(tiny_classifier):
    """A client of `create_app` on the tiny model, given its other dependencies
    (limits, lifecycle, stats)."""
    def make(limits=TEST_LIMITS, **dependencies) -> testing.TestClient:
        return testing.TestClient(create_app(tiny_classifier, limits, **dependencies))

    return make


@pytest.fixture
def tiny_client(make_tiny_client) -> testing.TestClient:
    return make_tiny_client()


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


# The labelled reviews of ../shared/data, as texts (a review's body, and its
# title and body as the model's training data joined them).
LABELLED_DATA = ["amazon_review_full_test_first999_notitle.csv", "amazon_review_polarity_test_first6459.csv",
                 "marc_en_test.csv", "marc_en_validation.csv"]


@pytest.fixture(scope="session")
def labelled_texts() -> list[str]:
    texts = []
    for name in LABELLED_DATA:
        with shared_file("data", name).open(newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                texts += [row[-1], f"{row[-2]} , {row[-1]}"] if len(row) >= 3 else [row[-1]]
    return texts
