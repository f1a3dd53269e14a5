"""app/native's own reading of a line (LineReader: tokens from the char range,
hashed and looked up without a std::string each, fastText's Model::State kept
across calls) gives fastText exactly what fastText's getLine gives it, and
predicts exactly what the `fasttext` module predicts: the same input ids, the
same label, the same probability bit for bit.

tests/test_compiled.py compares whole answers with the Python path (which reads
through fastText's own predictLine); these compare the parts, on texts the
normaliser would never let through too (a responder's `line`/`predict` take
the text as fastText would read it, not normalised again).
"""

import struct

import fasttext
import pytest

from app.resources import compiled_inferreview
from models.train import read_reviews, train

from .paths import TINY_DATA

# What fastText's tokeniser treats specially: its whitespace (\n ends the line
# with EOS), the EOS token itself, labels, long words, bytes beyond ASCII.
HOSTILE = [
    "", " ", "  \t ", "\x00", "\x0b\x0c", "\r", "\n", "a\nb c", "</s>", "</s> good", "good </s> bad", "a</s>b",
    "<s>", "__label__1", "__label__5 great", "great __label__5", "__label__", "__label__nope x",
    "\x00great\x00", "great\x0bbad\x0cok\rno\tyes", "x" * 100_000, "great " * 3000, "é", "café naïve",
    "İstanbul ünïcödé \u00a0 nbsp", "\ufffd\ufffd", "\x7f\x01\x1f", "a  b   c", " leading", "trailing ",
    "i love this product .", "this is the worst thing i ever bought", "it was ok",
    ("one two three four five six seven eight nine ten " * 20_000)[: 1 << 20],  # 1 MiB
]


def _bits(p: float) -> bytes:
    return struct.pack("<d", p)


@pytest.fixture(scope="module")
def real(real_classifier, real_model_path):
    return real_classifier, compiled_inferreview(real_classifier, 1 << 21), real_model_path


@pytest.fixture(scope="module")
def subword_model(tmp_path_factory):
    """A tiny model with character n-grams (the real one has none): getSubwords'
    and computeSubwords' path."""
    from app.classifier import Classifier

    out = tmp_path_factory.mktemp("subword") / "subword.bin"
    train(read_reviews(TINY_DATA), out, epoch=5, lr=0.5, wordNgrams=3, dim=8, minn=2, maxn=4,
          bucket=5_000, thread=1, seed=1)
    classifier = Classifier.load(out)
    return classifier, compiled_inferreview(classifier, 1 << 21), out


def _texts(classifier, labelled_texts):
    normalised = [classifier.normalize(t) for t in labelled_texts]
    return normalised + labelled_texts[::7] + HOSTILE


def test_line_ids_equal_fasttext_getline(real, labelled_texts):
    classifier, responder, _ = real
    model = classifier._model.f
    for text in _texts(classifier, labelled_texts):
        assert responder.line(text) == model.line(text), text[:200]


def test_line_ids_equal_fasttext_getline_with_subwords(subword_model, labelled_texts):
    classifier, responder, _ = subword_model
    model = classifier._model.f
    for text in _texts(classifier, labelled_texts[::5]):
        assert responder.line(text) == model.line(text), text[:200]


@pytest.mark.parametrize("which", ["real", "subword_model"])
def test_predictions_equal_the_fasttext_module_bit_for_bit(request, which, labelled_texts):
    classifier, responder, path = request.getfixturevalue(which)
    reference = fasttext.load_model(str(path))
    labels = classifier._model.f.labels
    texts = _texts(classifier, labelled_texts if which == "real" else labelled_texts[::5])
    for text in texts:
        ours = responder.predict(text)
        if "\n" in text:  # the module refuses it: fastText's own predictLine is the judge
            ((p, label),) = classifier._model.f.predict(text + "\n", 1, 0.0)
        else:
            (label,), (p,) = reference.predict(text, k=1)
        assert ours is not None, text[:200]
        assert (labels[ours[1]], _bits(ours[0])) == (label, _bits(float(p))), text[:200]


def test_respond_keeps_its_state_between_calls(real):
    """The kept Model::State carries nothing from one call into the next."""
    _, responder, _ = real
    first = [responder.predict(t) for t in HOSTILE]
    assert [responder.predict(t) for t in reversed(HOSTILE)] == first[::-1]
