"""The real model's reference outputs and the anchors' figures: every value a test
compares with, written once, each with where it comes from."""

# ../shared/README.md, models/amazon_review_full.ftz: the checksum the project must verify.
MODEL_SHA256 = "814f71e0eaacfdff736949f6c1175ed835feb0f85976d70dcc9319cdccfca50f"
# ../shared/README.md: labels __label__1 … __label__5, read through the manifest's label_format "{} star".
MODEL_LABELS = [f"{n} star" for n in range(1, 6)]
# models/amazon_review_full.json (the manifest): the model's name and version on the Open Inference Protocol's routes.
MODEL_NAME, MODEL_VERSION = "amazon_review_full", "1"
# ../shared/README.md: dim 10; the .ftz is fastText's quantized form.
MODEL_DIMENSION, MODEL_QUANTIZED = 10, True

# ../shared/README.md, NORMALISED text (fastText's CLI: `fasttext predict-prob MODEL - 1`), 6 significant digits.
PREDICTIONS = [
    ("I love this product.", "5 star", "0.884676"),
    ("This is the worst thing I ever bought", "1 star", "0.999782"),
    ("it was ok", "3 star", "0.987053"),
]
# The README's curl example (POST /inferreview, text=I love this product.): the first of them.
CURL_TEXT, CURL_LABEL, CURL_PROBABILITY = PREDICTIONS[0]
LABEL_OF = {text: label for text, label, _ in PREDICTIONS}

# ../shared/README.md's data table: `fasttext test` P@1 of the model on each labelled file.
ACCURACY = {"marc_en_test": "0.601", "amazon_review_full_test_first999_notitle": "0.563"}

# ../shared/README.md, anchors/wrk2-stall: the real wrk2 with both workers stopped 1 s (ms).
STALL_PERCENTILES_MS = {50: 1.1, 90: 81, 99: 916, 99.9: 998}
