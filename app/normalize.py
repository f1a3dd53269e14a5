"""Text preprocessing, so the service feeds a model what it was trained on.

fastText's published supervised models (``amazon_review_full.ftz`` among them)
were trained on text passed through ``normalize_text`` in fastText's
``classification-results.sh``::

    tr '[:upper:]' '[:lower:]' |
    sed -e "s/'/ ' /g" -e 's/"//g' -e 's/\\./ \\. /g' -e 's/<br \\/>/ /g' \\
        -e 's/,/ , /g' -e 's/(/ ( /g' -e 's/)/ ) /g' -e 's/\\!/ \\! /g' \\
        -e 's/\\?/ \\? /g' -e 's/\\;/ /g' -e 's/\\:/ /g' | tr -s " "

with each review given as ``title , body``.  ``normalize_classification_results``
reproduces it (checked line for line against ``../shared/data/*.ft.txt``), plus
one addition: control characters (newlines above all, which fastText's
``predict`` refuses) become spaces.

Which preprocessing a model needs is a property of the model: its manifest
names one of ``PREPROCESSORS``.
"""

import re

# The sed script's rules, in two translate passes around the `<br />` rule, so
# that the order in which sed applies them is kept: deleting `"` can make a
# `<br />` (which sed then removes), while `;`/`:` becoming spaces comes after
# it (so `<br;/>` must survive).
_BEFORE_BR = {ord(c): f" {c} " for c in "'.,()!?"}
_BEFORE_BR[ord('"')] = None
_CONTROL = {c: " " for c in [*range(0x20), 0x7F]}
_AFTER_BR = {ord(";"): " ", ord(":"): " ", **_CONTROL}

# `tr -s " "` squeezes spaces only; other white space (e.g. U+00A0) is part of a
# token for fastText, so it must be kept as it is.
_SPACES = re.compile(" {2,}")


def normalize_classification_results(text: str) -> str:
    text = text.lower().translate(_BEFORE_BR).replace("<br />", " ")
    return _SPACES.sub(" ", text.translate(_AFTER_BR)).strip(" ")


def normalize_none(text: str) -> str:
    """Raw text, only with control characters made spaces (fastText rejects ``\\n``)."""
    return text.translate(_CONTROL)

PREPROCESSORS = {
    "fasttext-classification-results": normalize_classification_results,
    "none": normalize_none,
}


def review_text(title: str, body: str) -> str:
    """Join a review the way the training data did: ``title , body``."""
    if title and body:
        return f"{title} , {body}"
    return title or body
