"""The pinned fastText distribution trains and predicts correctly (the issue's known traps),
and the service answers what fastText's own CLI prints for the real model."""

import csv
import math
import shutil
import subprocess

import pytest

from app.normalize import review_text

from .paths import TINY_DATA, shared_file
from .reference import MODEL_DIMENSION, MODEL_LABELS, MODEL_QUANTIZED, MODEL_SHA256, PREDICTIONS


def test_training_gives_finite_weights_and_learns(tiny_classifier):
    # The 0.9.3 sdist gave "Encountered NaN" on a trivial set; this one must learn it.
    correct = 0
    with TINY_DATA.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    for label, title, body in rows:
        (predicted, p), = tiny_classifier.predict(review_text(title, body))
        assert math.isfinite(p)
        correct += predicted == f"{label} star"
    assert correct / len(rows) > 0.95


def _fasttext_cli():
    cli = shutil.which("fasttext")
    assert cli, "fastText's CLI is missing: apt-get install fasttext (.ci/run does)"
    return cli


def test_served_probabilities_equal_fasttext_cli(real_model_path, real_classifier):
    """`fasttext predict-prob MODEL - 1` on the normalised text prints what we serve."""
    with shared_file("data", "marc_en_test.csv").open(newline="", encoding="utf-8") as f:
        reviews = [review_text(t, b) for _, t, b in csv.reader(f)]
    reviews = reviews[::10] + [text for text, _, _ in PREDICTIONS]
    normalised = "".join(real_classifier.normalize(r) + "\n" for r in reviews)
    cli = subprocess.run([_fasttext_cli(), "predict-prob", str(real_model_path), "-", "1"],
                         input=normalised, capture_output=True, text=True, check=True)
    lines = cli.stdout.splitlines()
    assert len(lines) == len(reviews)
    for review, line in zip(reviews, lines, strict=True):
        cli_label, cli_prob = line.split()
        (label, p), = real_classifier.predict(review)
        assert label == cli_label.removeprefix("__label__") + " star"
        assert f"{p:.6g}" == cli_prob, review  # the CLI prints 6 significant digits


@pytest.mark.parametrize("text,label,prob", PREDICTIONS)
def test_reference_predictions(real_client, text, label, prob):
    result = real_client.simulate_post("/inferreview", body=f"text={text}",
                                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    ((served_label, p),) = result.json.items()
    assert (served_label, f"{p:.6g}") == (label, prob)


def test_real_model_info(real_client):
    info = real_client.simulate_get("/v1/model").json
    assert sorted(info["labels"]) == MODEL_LABELS
    assert (info["dimension"], info["quantized"]) == (MODEL_DIMENSION, MODEL_QUANTIZED)
    assert info["sha256"] == MODEL_SHA256
