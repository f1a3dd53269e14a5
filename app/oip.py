"""The Open Inference Protocol (KServe v2) over HTTP, for this model: one
BYTES input `text` of N texts; outputs `label` (BYTES) and `probability`
(FP32), each of shape [N, k], best first in each row; `k` and `threshold`
in the request's `parameters`.

`add_routes` puts the protocol's routes on the Falcon app: server and model
metadata, health, readiness, and infer, with the API's limits and
normalisation (app/resources.py) and the protocol's `{"error": ...}` on every
error (app/media.py). The infer request and response are read and written
here, in JSON and in Triton's binary tensor data extension, which
tritonclient, KServe's client and perf_analyzer send by default: the JSON
header, then each tensor's bytes, a BYTES element as its length (a
little-endian uint32) then its bytes.
"""

import struct
from dataclasses import dataclass

import falcon
import ujson

from . import __version__
from .api import INPUT, LABEL, OUTPUTS, PROBABILITY, THRESHOLD, Api, K
from .classifier import Classifier
from .resources import reject_oversized, review
from .stats import Stats

# The JSON header's length when binary tensor data follows it (Triton's extension).
HEADER_LENGTH = "Inference-Header-Content-Length"
# Rows a threshold leaves short are padded to k columns, so that the outputs stay rectangular.
PAD_LABEL, PAD_PROBABILITY = "", 0.0


class InvalidInfer(ValueError):
    """What is wrong with an infer request, as the client is told (a 400)."""


class TooManyTexts(InvalidInfer):
    """More texts than the deployment's limit (a 413, as on /v1/predict)."""


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    texts: list
    k: int
    threshold: float
    # (name, in binary) of each output asked for, in the order asked.
    outputs: tuple[tuple[str, bool], ...]


def _binary_elements(blob: bytes, count: int) -> list:
    """`count` BYTES elements, each a uint32 LE length then its bytes, as text."""
    elements, at = [], 0
    for i in range(count):
        if at + 4 > len(blob):
            raise InvalidInfer(f"input '{INPUT}': binary data ends before element {i}")
        (size,) = struct.unpack_from("<I", blob, at)
        at += 4
        if at + size > len(blob):
            raise InvalidInfer(f"input '{INPUT}': element {i} is longer than the binary data")
        try:
            elements.append(blob[at:at + size].decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInfer(f"input '{INPUT}': element {i} is not UTF-8") from None
        at += size
    if at != len(blob):
        raise InvalidInfer(f"input '{INPUT}': {len(blob) - at} bytes of binary data after its {count} elements")
    return elements


def _is_count(value) -> bool:
    return type(value) is int and value >= 0


def parse_infer(body: bytes, header_length: str | None, api: Api) -> InferRequest:
    """The request, or InvalidInfer saying why not."""
    if header_length is None:
        header, binary = body, b""
    else:
        if not header_length.isdigit() or not 0 < int(header_length) <= len(body):
            raise InvalidInfer(f"{HEADER_LENGTH} must be the JSON header's length, 1 to {len(body)} bytes")
        header, binary = body[:int(header_length)], body[int(header_length):]
    try:
        request = ujson.loads(header)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInfer("the request is not JSON") from None
    if not isinstance(request, dict):
        raise InvalidInfer("the request must be a JSON object")
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInfer("`id` must be a string")
    parameters = request.get("parameters", {})
    if not isinstance(parameters, dict):
        raise InvalidInfer("`parameters` must be an object")

    inputs = request.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise InvalidInfer(f"send one input, '{INPUT}'")
    tensor = inputs[0]
    if tensor.get("name") != INPUT:
        raise InvalidInfer(f"unknown input {tensor.get('name')!r}: the model's input is '{INPUT}'")
    if tensor.get("datatype") != "BYTES":
        raise InvalidInfer(f"input '{INPUT}' must be BYTES, not {tensor.get('datatype')!r}")
    shape = tensor.get("shape")
    if not isinstance(shape, list) or len(shape) != 1 or not _is_count(shape[0]):
        raise InvalidInfer(f"input '{INPUT}' must have shape [N]")
    count = shape[0]
    if count < api.min_texts:
        raise InvalidInfer(f"input '{INPUT}' holds no text")
    if count > api.max_texts:
        raise TooManyTexts(f"{count} texts in one request; the limit is {api.max_texts}")
    tensor_parameters = tensor.get("parameters", {})
    if not isinstance(tensor_parameters, dict):
        raise InvalidInfer(f"input '{INPUT}': `parameters` must be an object")
    binary_size = tensor_parameters.get("binary_data_size")
    if binary_size is not None:
        if "data" in tensor:
            raise InvalidInfer(f"input '{INPUT}' has both `data` and `binary_data_size`")
        if not _is_count(binary_size) or binary_size != len(binary):
            raise InvalidInfer(f"input '{INPUT}': binary_data_size must be the {len(binary)} bytes after the header")
        texts = _binary_elements(binary, count)
    else:
        if binary:
            raise InvalidInfer(f"{len(binary)} bytes after the JSON header, and no input says binary_data_size")
        texts = tensor.get("data")
        if not isinstance(texts, list) or len(texts) != count:
            raise InvalidInfer(f"input '{INPUT}': `data` must be a list of its {count} texts")

    k = parameters.get(K, api.default_k)
    if type(k) is not int or not api.min_k <= k <= api.max_k:
        raise InvalidInfer(f"parameter `{K}` must be an integer from {api.min_k} to {api.max_k}")
    threshold = parameters.get(THRESHOLD, api.default_threshold)
    if type(threshold) not in (int, float) or not api.min_threshold <= threshold <= api.max_threshold:
        raise InvalidInfer(f"parameter `{THRESHOLD}` must be a number from {api.min_threshold} "
                           f"to {api.max_threshold}")
    return InferRequest(request_id, texts, k, float(threshold), _outputs(request, parameters))


def _binary(parameters, default: bool, where: str) -> bool:
    value = parameters.get("binary_data", default)
    if type(value) is not bool:
        raise InvalidInfer(f"{where}: `binary_data` must be true or false")
    return value


def _outputs(request: dict, parameters: dict) -> tuple[tuple[str, bool], ...]:
    """The outputs asked for, each in binary or JSON: every output when none
    is named (in binary when `binary_data_output` says so)."""
    every = parameters.get("binary_data_output", False)
    if type(every) is not bool:
        raise InvalidInfer("parameter `binary_data_output` must be true or false")
    asked = request.get("outputs")
    if asked is None:
        return tuple((name, every) for name in OUTPUTS)
    if not isinstance(asked, list) or not asked:
        raise InvalidInfer("`outputs` must be a non-empty list")
    chosen = []
    for output in asked:
        name = output.get("name") if isinstance(output, dict) else None
        if name not in OUTPUTS:
            raise InvalidInfer(f"unknown output {name!r}: the model's outputs are {', '.join(OUTPUTS)}")
        if any(name == seen for seen, _ in chosen):
            raise InvalidInfer(f"output '{name}' asked for twice")
        output_parameters = output.get("parameters", {})
        if not isinstance(output_parameters, dict):
            raise InvalidInfer(f"output '{name}': `parameters` must be an object")
        chosen.append((name, _binary(output_parameters, every, f"output '{name}'")))
    return tuple(chosen)


def _columns(predictions: list, k: int) -> dict:
    """The outputs' flat, row-major data: k (label, probability) a text, padded."""
    labels, probabilities = [], []
    for row in predictions:
        for label, probability in row:
            labels.append(label)
            probabilities.append(probability)
        missing = k - len(row)
        labels += [PAD_LABEL] * missing
        probabilities += [PAD_PROBABILITY] * missing
    return {LABEL: labels, PROBABILITY: probabilities}


def _binary_data(name: str, values: list) -> bytes:
    if name == LABEL:
        return b"".join(struct.pack("<I", len(b)) + b for b in (v.encode("utf-8") for v in values))
    return struct.pack(f"<{len(values)}f", *values)


def encode_infer(model_name: str, model_version: str, request: InferRequest,
                 predictions: list) -> tuple[bytes, int | None]:
    """The response's body, and the JSON header's length when binary data
    follows it (None: all JSON)."""
    columns = _columns(predictions, request.k)
    shape = [len(predictions), request.k]
    outputs, blobs = [], []
    for name, binary in request.outputs:
        output = {"name": name, "datatype": OUTPUTS[name], "shape": shape}
        if binary:
            blobs.append(_binary_data(name, columns[name]))
            output["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            output["data"] = columns[name]
        outputs.append(output)
    response = {"model_name": model_name, "model_version": model_version}
    if request.id is not None:
        response["id"] = request.id
    response["outputs"] = outputs
    header = ujson.dumps(response, escape_forward_slashes=False).encode()
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)


# GET /v2: the server, and the protocol's extensions it speaks.
SERVER = {"name": "reviewrating", "version": __version__, "extensions": ["binary_tensor_data"]}


class _Model:
    """What the model routes share: the one model, by its name and version."""

    def __init__(self, classifier: Classifier):
        self.name, self.version = classifier.name, classifier.version

    def check(self, name: str, version: str | None) -> None:
        if name != self.name or version not in (None, self.version):
            model = name if version is None else f"{name} version {version}"
            has = f"{self.name} version {self.version}"
            raise falcon.HTTPNotFound(title="Unknown model", description=f"no model {model}; this server has {has}")


class ServerMetadata:
    def on_get(self, req, resp):
        resp.media = SERVER


class Live:
    def on_get(self, req, resp):
        resp.media = {"live": True}


class ServerReady:
    """Ready while the model answers its self-test. A draining worker's state
    is its own (its /readyz): nginx sends a client's requests to the others."""

    def __init__(self, classifier: Classifier):
        self.classifier = classifier

    def on_get(self, req, resp):
        ready = self.classifier.self_test()
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        resp.media = {"ready": ready}


class ModelMetadata(_Model):
    def __init__(self, classifier: Classifier):
        super().__init__(classifier)
        self.classifier = classifier
        self.metadata = {
            "name": self.name, "versions": [self.version], "platform": "fasttext",
            "inputs": [{"name": INPUT, "datatype": "BYTES", "shape": [-1]}],
            "outputs": [{"name": name, "datatype": datatype, "shape": [-1, -1]} for name, datatype in OUTPUTS.items()],
        }
        # Triton's model configuration, the part perf_analyzer reads: no batch dimension of its own.
        self.config = {"name": self.name, "platform": "fasttext", "max_batch_size": 0}

    def on_get(self, req, resp, name, version=None):
        self.check(name, version)
        resp.media = self.metadata

    def on_get_ready(self, req, resp, name, version=None):
        self.check(name, version)
        ready = self.classifier.self_test()
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        resp.media = {"name": self.name, "ready": ready}

    def on_get_config(self, req, resp, name, version=None):
        self.check(name, version)
        resp.media = self.config


class Infer(_Model):
    """POST /v2/models/{name}[/versions/{version}]/infer."""

    def __init__(self, classifier: Classifier, api: Api, stats: Stats):
        super().__init__(classifier)
        self.classifier, self.api, self.stats = classifier, api, stats

    def on_post(self, req: falcon.Request, resp: falcon.Response, name, version=None):
        self.check(name, version)
        reject_oversized(req, self.api)
        try:
            request = parse_infer(req.bounded_stream.read(), req.get_header(HEADER_LENGTH), self.api)
        except TooManyTexts as exc:
            raise falcon.HTTPContentTooLarge(description=str(exc)) from None
        except InvalidInfer as exc:
            raise falcon.HTTPBadRequest(title="Invalid inference request", description=str(exc)) from None
        normalize = self.classifier.normalize
        texts = []
        for i, text in enumerate(request.texts):
            where = f"input '{INPUT}' element {i}"
            if not isinstance(text, str):
                raise falcon.HTTPBadRequest(title="Invalid text", description=f"{where} must be a string")
            texts.append(review(text, self.api, where, falcon.HTTPBadRequest, normalize))
        predictions = self.classifier.predict_many(texts, k=request.k, threshold=request.threshold)
        for labels in predictions:
            if labels:
                self.stats.predicted(labels[0][0])
        body, header_length = encode_infer(self.name, self.version, request, predictions)
        resp.data = body
        if header_length is None:
            resp.content_type = falcon.MEDIA_JSON
        else:
            resp.content_type = "application/octet-stream"
            resp.set_header(HEADER_LENGTH, str(header_length))


def add_routes(app: falcon.App, classifier: Classifier, api: Api, stats: Stats) -> None:
    """The protocol's routes, with and without a version in the path."""
    app.add_route("/v2", ServerMetadata())
    app.add_route("/v2/health/live", Live())
    app.add_route("/v2/health/ready", ServerReady(classifier))
    model, infer = ModelMetadata(classifier), Infer(classifier, api, stats)
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        app.add_route(base, model)
        app.add_route(f"{base}/ready", model, suffix="ready")
        app.add_route(f"{base}/config", model, suffix="config")
        app.add_route(f"{base}/infer", infer)
