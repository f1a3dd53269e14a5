"""The fastText model, loaded once, with what the service needs to know about it."""

import os
import resource
import signal
from pathlib import Path

import reviewrating_native

from .manifest import Manifest, ModelError, sha256_of
from .normalize import PREPROCESSORS, normalize_classification_results

LABEL_PREFIX = "__label__"
# A certain prediction reads just over 1 (fastText's std_log adds 1e-5 before
# the log), in its CLI as here: the service passes fastText's figure on unchanged.
MAX_PROBABILITY = 1.0000101


class FastTextModel:
    """fastText's C++, through the worker's own extension (app/native), which
    also answers POST /inferreview's plain case in one call (`responder`).

    The same fastText calls as fasttext_pybind's (predictLine on the text and
    a newline), built from the same release's sources, without the `fasttext`
    wrapper: its numpy import costs a worker memory (loadtest/RESULTS.md,
    "What each change bought")."""

    def __init__(self, path: str):
        self.f = reviewrating_native.Model(path)

    @property
    def supervised(self) -> bool:
        return self.f.supervised

    def get_labels(self) -> list[str]:
        return self.f.labels if self.supervised else []

    def get_dimension(self) -> int:
        return self.f.dimension

    def is_quantized(self) -> bool:
        return self.f.quantized

    def predict(self, text: str, k: int = 1, threshold: float = 0.0) -> list[tuple[float, str]]:
        """(probability, label) pairs, best first. The text must hold no
        newline (fastText reads one line); the normalisers see to that."""
        return self.f.predict(text + "\n", k, threshold)

    def predict_many(self, texts: list[str], k: int = 1, threshold: float = 0.0):
        """[(probability, label) pairs] for each text."""
        return self.f.predict_many([t + "\n" for t in texts], k, threshold)

    def responder(self, heads: list[str], max_chars: int):
        """The compiled POST /inferreview for this model (Classifier.responder)."""
        return self.f.responder(heads, max_chars)


def _load_bounded(path: Path) -> FastTextModel:
    """Load a model with the address space capped while fastText reads it.

    fastText trusts the sizes written in the file, so a truncated or foreign
    file can make it allocate and fill memory without bound. A loaded model
    needs little more memory than its file, so a cap of a few times the file
    size turns such a file into a prompt std::bad_alloc (MemoryError).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        in_use = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    cap = in_use + 4 * path.stat().st_size + (512 << 20)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        return FastTextModel(str(path))
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _probe_in_child(path: Path) -> None:
    """Load the model and predict once in a forked child; raise ModelError if that fails or crashes.

    This catches most damaged files, not all: a file cut near its end can load
    and predict garbage. Only a checksum in the manifest proves a model intact.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        try:
            _load_bounded(path).predict("self test")
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            os.write(write_end, str(exc).encode()[:1000])
            code = 1
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        raise ModelError(f"model file {path} crashed fastText ({sig}) while loading: it is damaged or truncated")
    if os.WEXITSTATUS(status):
        raise ModelError(f"model file {path} cannot be loaded by fastText: {message}")


class Classifier:
    """A fastText supervised model plus the preprocessing it expects."""

    def __init__(self, model: FastTextModel, manifest: Manifest, sha256: str, name: str):
        self._model = model
        self.manifest = manifest
        self.sha256 = sha256
        self.name, self.version = name, manifest.version  # as the Open Inference Protocol names it
        self.normalize = PREPROCESSORS[manifest.preprocessing]
        raw_labels = model.get_labels()
        self.labels = [self._display(label) for label in raw_labels]
        # Shown labels by fastText's, so a prediction costs a dict lookup, not a format().
        self._shown = dict(zip(raw_labels, self.labels, strict=True))

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
        if not manifest.sha256:
            # Nothing vouches for this file: let a child process try it first,
            # since fastText can crash outright on a damaged file.
            _probe_in_child(model_path)
        try:
            model = _load_bounded(model_path)
        except (ValueError, MemoryError, RuntimeError) as exc:
            raise ModelError(f"model file {model_path} cannot be loaded by fastText: {exc}") from None
        if not model.supervised or not model.get_labels():
            raise ModelError(f"model file {model_path} is not a supervised model")
        return cls(model, manifest, digest, manifest.name or model_path.stem)

    def _display(self, label: str) -> str:
        if label.startswith(LABEL_PREFIX):
            label = label[len(LABEL_PREFIX):]
        return self.manifest.label_format.format(label)

    def predict(self, text: str, k: int = 1, threshold: float = 0.0) -> list[tuple[str, float]]:
        """Labels and probabilities for one raw text, best first.

        The text must be encodable as UTF-8 (no lone surrogates); callers
        check that, since fastText's binding rejects it with a TypeError.
        """
        pairs = self._model.predict(self.normalize(text), k, threshold)
        return [(self._shown[label], p) for p, label in pairs]

    def predict_many(self, texts: list[str], k: int = 1, threshold: float = 0.0) -> list[list[tuple[str, float]]]:
        normalized = [self.normalize(t) for t in texts]
        return [[(self._shown[label], p) for p, label in pairs]
                for pairs in self._model.predict_many(normalized, k, threshold)]

    def responder(self, heads: list[str], max_chars: int):
        """A compiled responder: its `respond(form_body) -> bytes | None`
        answers POST /inferreview in one call for a body that is just `text=`
        and ASCII (`heads[i]`, the answer's start for label i, then the
        probability and `}`; None for anything else, which the Python path
        answers), and `counts()` the predictions it served by label index.
        Only for the normalisation it reproduces; None when the model needs another."""
        if self.normalize is not normalize_classification_results:
            return None
        return self._model.responder(heads, max_chars)

    def self_test(self) -> bool:
        """One real prediction: the model answers with a known label and a sane probability."""
        result = self.predict("self test", k=1)
        return len(result) == 1 and result[0][0] in self.labels and 0.0 <= result[0][1] <= MAX_PROBABILITY

    def info(self) -> dict:
        return {
            "labels": self.labels,
            "dimension": self._model.get_dimension(),
            "quantized": self._model.is_quantized(),
            "sha256": self.sha256,
            "preprocessing": self.manifest.preprocessing,
        }
