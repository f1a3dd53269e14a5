"""The fastText model, loaded once, with what the service needs to know about it.

A model arrives with a manifest (``models/<name>.json``) that states its
sha256, the preprocessing it was trained on and how its labels read; the
manifest is what makes "serve what the model was trained on" a property of the
model rather than of the code.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from fasttext.FastText import _FastText

from .normalize import PREPROCESSORS

LABEL_PREFIX = "__label__"


class ModelError(Exception):
    """The model cannot be served: missing, corrupt, or its manifest is wrong."""


@dataclass(frozen=True)
class Manifest:
    sha256: str | None = None
    preprocessing: str = "none"
    label_format: str = "{}"

    @classmethod
    def read(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ModelError(f"cannot read model manifest {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise ModelError(f"model manifest {path} is not valid JSON: {exc}") from None
        manifest = cls(
            sha256=data.get("sha256"),
            preprocessing=data.get("preprocessing", cls.preprocessing),
            label_format=data.get("label_format", cls.label_format),
        )
        if manifest.preprocessing not in PREPROCESSORS:
            raise ModelError(
                f"model manifest {path} names unknown preprocessing "
                f"{manifest.preprocessing!r}; known: {', '.join(PREPROCESSORS)}"
            )
        return manifest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Classifier:
    """A fastText supervised model plus the preprocessing it expects."""

    def __init__(self, model: _FastText, manifest: Manifest, sha256: str):
        self._model = model
        self.manifest = manifest
        self.sha256 = sha256
        self.normalize = PREPROCESSORS[manifest.preprocessing]
        raw_labels = model.get_labels()
        self.labels = [self._display(label) for label in raw_labels]

    @classmethod
    def load(cls, model_path: str | Path, manifest_path: str | Path | None = None) -> "Classifier":
        """Load a model, verifying it against its manifest when there is one.

        Every way this can fail raises ``ModelError`` with a message meant for
        the operator, never a traceback from inside fastText.
        """
        model_path = Path(model_path)
        if manifest_path is None:
            manifest_path = model_path.with_suffix(".json")
            manifest = Manifest.read(manifest_path) if manifest_path.exists() else Manifest()
        else:
            manifest = Manifest.read(Path(manifest_path))
        if not model_path.is_file():
            raise ModelError(
                f"model file {model_path} not found (run `make model` to fetch and verify it)"
            )
        digest = sha256_of(model_path)
        if manifest.sha256 and digest != manifest.sha256:
            raise ModelError(
                f"model file {model_path} has sha256 {digest}, but its manifest "
                f"expects {manifest.sha256}: the file is corrupt or not this model "
                "(delete it and run `make model`)"
            )
        try:
            # _FastText directly: fasttext.load_model() only adds a warning on stderr.
            model = _FastText(model_path=str(model_path))
        except ValueError as exc:
            raise ModelError(f"model file {model_path} cannot be loaded by fastText: {exc}") from None
        if not model.is_quantized() and not model.get_labels():
            raise ModelError(f"model file {model_path} is not a supervised model")
        return cls(model, manifest, digest)

    def _display(self, label: str) -> str:
        if label.startswith(LABEL_PREFIX):
            label = label[len(LABEL_PREFIX):]
        return self.manifest.label_format.format(label)

    def predict(self, text: str, k: int = 1, threshold: float = 0.0) -> list[tuple[str, float]]:
        """Labels and probabilities for one raw text, best first.

        The text must be encodable as UTF-8 (no lone surrogates); callers
        check that, since fastText's binding rejects it with a TypeError.
        """
        labels, probs = self._model.predict(self.normalize(text), k, threshold)
        return [(self._display(label), float(p)) for label, p in zip(labels, probs)]

    def predict_many(self, texts: list[str], k: int = 1, threshold: float = 0.0) -> list[list[tuple[str, float]]]:
        normalized = [self.normalize(t) for t in texts]
        all_labels, all_probs = self._model.predict(normalized, k, threshold)
        return [
            [(self._display(label), float(p)) for label, p in zip(labels, probs)]
            for labels, probs in zip(all_labels, all_probs)
        ]

    def self_test(self) -> bool:
        """One real prediction: the model answers with a known label and a sane probability."""
        result = self.predict("self test", k=1)
        return len(result) == 1 and result[0][0] in self.labels and 0.0 <= result[0][1] <= 1.0 + 1e-6

    def info(self) -> dict:
        return {
            "labels": self.labels,
            "dimension": self._model.get_dimension(),
            "quantized": self._model.is_quantized(),
            "sha256": self.sha256,
            "preprocessing": self.manifest.preprocessing,
        }
