"""The service's normalisation is fastText's classification-results.sh, exactly."""

import csv
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.normalize import PREPROCESSORS, review_text
from app.normalize import normalize_classification_results as norm

from .paths import shared_file


@pytest.mark.parametrize("name", ["marc_en_test", "amazon_review_full_test_first999_notitle"])
def test_reproduces_the_training_files_line_for_line(name):
    with shared_file("data", f"{name}.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    expected = shared_file("data", f"{name}.ft.txt").read_text(encoding="utf-8").splitlines()
    assert len(rows) == len(expected) > 900
    for (label, title, body), line in zip(rows, expected, strict=True):
        assert f"__label__{label} {norm(review_text(title, body))}" == line


@pytest.mark.parametrize("raw,expected", [
    ("I love this product.", "i love this product ."),
    ("Don't", "don ' t"),
    ('He said "wow"', "he said wow"),
    ("a,b(c)d!e?f", "a , b ( c ) d ! e ? f"),
    ("semi;colon:here", "semi colon here"),
    ("line<br />break<BR />again", "line break again"),
    ("many     spaces", "many spaces"),
    ("new\nline\ttab\x00nul\x7fdel", "new line tab nul del"),
    # sed deletes `"` before it removes `<br />`, and blanks `;` `:` only after.
    ('<br "/>x', "x"),
    ("<br;/>x", "<br />x"),
    # only spaces are squeezed: other white space is part of a token for fastText
    ("a\u00a0\u00a0b", "a\u00a0\u00a0b"),
    ("ÉCOLE Ünïcode", "école ünïcode"),
    ("  padded  ", "padded"),
])
def test_rules(raw, expected):
    assert norm(raw) == expected


def sed_pipeline(text: str) -> str:
    """classification-results.sh's normalize_text, rule by rule in sed's order,
    plus the service's one addition (control characters become spaces)."""
    text = text.lower()
    for old, new in [("'", " ' "), ('"', ""), (".", " . "), ("<br />", " "), (",", " , "), ("(", " ( "),
                     (")", " ) "), ("!", " ! "), ("?", " ? "), (";", " "), (":", " ")]:
        text = text.replace(old, new)
    text = re.sub("[\x00-\x1f\x7f]", " ", text)
    return re.sub(" +", " ", text).strip(" ")


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([*"aZ '\".<>/br,()!?;:\n\t\x00\u00a0É", "<br />", "<BR />"]),
                max_size=40).map("".join))
def test_the_fast_normalisation_equals_the_rules_applied_in_order(raw):
    # The service reorders and skips passes for speed; the result must not change.
    assert norm(raw) == sed_pipeline(raw)


def test_review_text_joins_title_and_body_like_the_training_data():
    assert review_text("Great", "Works") == "Great , Works"
    assert review_text("", "Works") == "Works"
    assert review_text("Great", "") == "Great"


def test_raw_preprocessing_only_removes_control_characters():
    assert PREPROCESSORS["none"]("Hello,\nWorld!") == "Hello, World!"
