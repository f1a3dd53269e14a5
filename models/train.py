"""Train your own model with the same pipeline the service serves: `make train`.

    python -m models.train reviews.csv models/mine.ftz [--epoch 5] [--quantize]

The input is a Zhang-style CSV, `"label","title","body"` per row (as in
../shared/data/). Each review is normalised exactly as the service will
normalise it at inference time, and a manifest (`models/mine.json`) is written
beside the model with its sha256 and that preprocessing, so the worker serves
it with `MODEL_PATH=models/mine.ftz`.
"""

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

import fasttext

from app.manifest import sha256_of
from app.normalize import PREPROCESSORS, review_text

PREPROCESSING = "fasttext-classification-results"


def read_reviews(path: Path) -> list[tuple[str, str]]:
    """(label, raw review text) pairs from a `label,title,body` CSV."""
    with path.open(newline="", encoding="utf-8") as f:
        return [(row[0], review_text(row[1], row[2])) for row in csv.reader(f) if row]


def train(reviews, output: Path, *, label_format: str = "{} star", quantize: bool = False, **params) -> Path:
    normalize = PREPROCESSORS[PREPROCESSING]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as data:
        for label, text in reviews:
            data.write(f"__label__{label} {normalize(text)}\n")
        data.flush()
        model = fasttext.train_supervised(input=data.name, verbose=0, **params)
    if quantize:
        model.quantize(input=None, retrain=False)
    output.parent.mkdir(parents=True, exist_ok=True)
    model.save_model(str(output))
    manifest = {
        "file": output.name,
        "sha256": sha256_of(output),
        "preprocessing": PREPROCESSING,
        "label_format": label_format,
    }
    output.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return output


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n")[0])
    parser.add_argument("input", type=Path, help='CSV of "label","title","body" rows')
    parser.add_argument("output", type=Path, help="where to write the model (.bin or .ftz)")
    parser.add_argument("--epoch", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--word-ngrams", type=int, default=2)
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--bucket", type=int, default=2_000_000, help="hash buckets for word n-grams")
    parser.add_argument("--quantize", action="store_true", help="write a small quantized model")
    args = parser.parse_args(argv)
    if not args.input.is_file():
        parser.error(f"{args.input} not found")
    reviews = read_reviews(args.input)
    out = train(reviews, args.output, quantize=args.quantize,
                epoch=args.epoch, lr=args.lr, wordNgrams=args.word_ngrams, dim=args.dim,
                bucket=args.bucket)
    print(f"trained on {len(reviews)} reviews: {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
