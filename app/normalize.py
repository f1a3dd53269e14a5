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

# sed's rules, applied with str.replace, one C pass each and skipped when the
# character is absent: faster than str.translate with multi-character
# replacements and a regex (loadtest/RESULTS.md, "What each change bought"). The
# order that matters is sed's: deleting `"` can make a `<br />` (which sed then
# removes), and `;`/`:` become spaces only after it (so `<br;/>` survives).
# The characters spaced out first do not occur in `<br />`, so doing them
# before it changes nothing.
_SURROUND = tuple((c, f" {c} ") for c in "'.,()!?")
_CONTROL = str.maketrans(dict.fromkeys([*range(32), 127], " "))


def normalize_classification_results(text: str) -> str:
    text = text.lower()
    for char, spaced in _SURROUND:
        if char in text:
            text = text.replace(char, spaced)
    if '"' in text:
        text = text.replace('"', "")
    if "<br />" in text:
        text = text.replace("<br />", " ")
    text = text.replace(";", " ").replace(":", " ")
    if not text.isprintable():  # control characters are never printable: most texts skip this pass
        text = text.translate(_CONTROL)
    # `tr -s " "` squeezes spaces only; other white space (e.g. U+00A0) is part
    # of a token for fastText, so only " " is squeezed. Ends are stripped too.
    # Each replace pass halves every run of spaces: faster than splitting into
    # words and joining them again (loadtest/RESULTS.md, "What each change bought").
    while "  " in text:
        text = text.replace("  ", " ")
    return text.strip(" ")


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
