"""The compiled /inferreview (app/native) answers byte for byte what the Python path answers.

Each test sends the same request to an app with the compiled call and to one
without it (`create_app(..., compiled=False)`); the compiled call answers the
plain case itself and hands everything else back to Python, so the two must
agree on every body: labelled reviews, the bad-input corpus, generated texts
and generated form bodies. fastText's CLI stays the judge of the figures
(tests/test_fasttext.py); this proves the compiled path serves the same ones.
"""

from urllib.parse import quote, quote_plus

import pytest
from falcon import testing
from hypothesis import given, settings
from hypothesis import strategies as st

from app.config import Limits
from app.media import dumps
from app.resources import compiled_inferreview
from app.stats import Stats
from app.wsgi import create_app

from .bad_inputs import BAD_INPUTS, FORM, TEST_LIMITS, oversized


def _python_answer(classifier, text: str) -> bytes:
    """The Python path's body for a valid text: InferReview's own steps."""
    label, probability = classifier.predict(text, k=1)[0]
    return dumps({label: probability}).encode()


def _pair(classifier, limits=Limits()):
    return (testing.TestClient(create_app(classifier, limits)),
            testing.TestClient(create_app(classifier, limits, compiled=False)))


def _same_answer(compiled, python, body: bytes, headers=FORM, path="/inferreview", method="POST"):
    a = compiled.simulate_request(method, path, body=body, headers=headers)
    b = python.simulate_request(method, path, body=body, headers=headers)
    assert (a.status, a.headers.get("content-type"), a.content) == \
        (b.status, b.headers.get("content-type"), b.content), body[:200]
    return a


def test_every_labelled_review_is_answered_compiled_with_the_python_bytes(real_classifier, labelled_texts):
    respond = compiled_inferreview(real_classifier, Limits().max_text_chars).respond
    compiled = 0
    for text in labelled_texts:
        for body in (f"text={quote_plus(text)}", f"text={quote(text, safe='')}"):
            answer = respond(body.encode())
            if answer is None:
                assert not text.isascii() or not real_classifier.normalize(text), text
                continue
            compiled += 1
            assert answer == _python_answer(real_classifier, text), text
    # The labelled data is mostly ASCII: the compiled call answered nearly all of it.
    assert compiled > 0.9 * 2 * len(labelled_texts)


def test_labelled_reviews_through_both_apps(real_classifier, labelled_texts):
    compiled, python = _pair(real_classifier)
    for text in labelled_texts[::25]:
        _same_answer(compiled, python, f"text={quote_plus(text)}".encode())


@pytest.mark.parametrize("name,method,path,headers,body,status",
                         BAD_INPUTS + oversized(TEST_LIMITS), ids=lambda v: v if isinstance(v, str) else None)
def test_bad_inputs_get_the_python_errors(tiny_classifier, name, method, path, headers, body, status):
    compiled, python = _pair(tiny_classifier, TEST_LIMITS)
    assert _same_answer(compiled, python, body, headers, path, method).status_code == status


@pytest.mark.parametrize("body", [
    b"text=" + b"a" * TEST_LIMITS.max_text_chars,  # at the limit: compiled
    b"text=" + b"a" * (TEST_LIMITS.max_text_chars - 2) + b"%41%42",  # at the limit once decoded
    b"text=" + b"a" * (TEST_LIMITS.max_text_chars - 2) + b"%41%42%43",  # one over: Python's 413
    b"text=%3Cbr+%2F%3E", b"text=%22%22", b"text=%3Cbr+%22%2F%3E+ok", b"text=%3Cbr%3B%2F%3E",
    b"text=%3Cbr%3C%3Cbr+%2F%3Ebr+%2F%3E", b"text=a%00b", b"text=%7F", b"text=%0A%0D%09x",
    b"text=__label__5+good", b"text=a=b", b"text=%zz", b"text=%4", b"text=%e2%82%ac", b"text=ok&",
    b"text=%C4%B0", b"TEXT=ok", b"te%78t=ok", b"text=+++x+++", b"text=.", b"text=%3B%3A",
    # fastText's end of line as a word: its getLine stops there, and so must the compiled reading
    b"text=%3C%2Fs%3E", b"text=%3C%2Fs%3E+great", b"text=great+%3C%2Fs%3E+awful+awful", b"text=a%3C%2Fs%3Eb",
])
def test_edge_bodies_get_the_python_answer(tiny_classifier, body):
    compiled, python = _pair(tiny_classifier, TEST_LIMITS)
    _same_answer(compiled, python, body)


def test_charset_parameter_and_json_take_the_python_path_unchanged(tiny_classifier):
    compiled, python = _pair(tiny_classifier, TEST_LIMITS)
    _same_answer(compiled, python, b"text=ok", {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    _same_answer(compiled, python, b'{"text": "ok"}', {"Content-Type": "application/json"})


def test_compiled_predictions_are_counted_for_metrics(make_tiny_client):
    stats = Stats()
    client = make_tiny_client(stats=stats)
    served = [client.simulate_post("/inferreview", body=b"text=great", headers=FORM).json for _ in range(3)]
    client.simulate_post("/inferreview", body=b"text=caf%C3%A9", headers=FORM)  # the Python path
    (label,) = served[0]
    counts = stats.all_predictions()
    assert sum(counts.values()) == 4 and counts[label] >= 3


# Characters that matter to the form parser, the normalisation and fastText's tokeniser.
_TRICKY = [*"aAzZ09 .,()!?'\";:<>/br_-\t\n\r\x00\x0b\x1f\x7f%+&=", "<br />", "é", "İ", "\u00a0", "\ufffd"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_TRICKY), max_size=40).map("".join) | st.text(max_size=60))
def test_generated_texts_get_the_python_answer(real_classifier, text):
    compiled, python = _pair(real_classifier)
    _same_answer(compiled, python, f"text={quote_plus(text)}".encode())
    _same_answer(compiled, python, f"text={quote(text, safe='')}".encode())


_FORM_BYTES = [*b"text=&%+abAB09fFgG.,<>/ \"';:", 0x7F, 0x00, 0x0A, 0xC3, 0xA9, 0xFF]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_FORM_BYTES), max_size=40).map(bytes))
def test_generated_form_bodies_get_the_python_answer(real_classifier, tail):
    compiled, python = _pair(real_classifier)
    _same_answer(compiled, python, b"text=" + tail)
    _same_answer(compiled, python, tail)
