"""app/oip.py: the Open Inference Protocol's infer request and response, as
the third-party clients write and read them: tritonclient's and KServe's own
encoders make the requests, their own decoders read the responses (JSON and
Triton's binary tensor data)."""

import struct

import numpy as np
import pytest
import tritonclient.http as triton
import ujson
from kserve import InferInput, InferRequest, InferResponse
from kserve.protocol.infer_type import RequestedOutput

from app import oip
from app.api import Api
from app.config import Limits

from . import metrics
from .paths import TINY_MODEL_NAME

API = Api(Limits(max_batch=4), [f"{n} star" for n in range(1, 6)])
TEXTS = ["i love this", "it was ok", "é ✓ 😀"]
# What the model would answer for TEXTS with k=2 and a threshold that cut the last row short.
PREDICTIONS = [[("5 star", 0.88), ("4 star", 0.07)], [("3 star", 0.98), ("2 star", 0.01)], [("1 star", 0.99)]]


def triton_request(binary_in=True, outputs=(("label", True), ("probability", True)), **kw):
    text = triton.InferInput("text", [len(TEXTS)], "BYTES")
    text.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=object), binary_data=binary_in)
    asked = [triton.InferRequestedOutput(name, binary_data=binary) for name, binary in outputs] if outputs else None
    body, json_size = triton.InferenceServerClient.generate_request_body([text], asked, **kw)
    return body, None if json_size is None else str(json_size)


@pytest.mark.parametrize("binary_in", [True, False])
def test_tritonclient_requests_are_read(binary_in):
    body, length = triton_request(binary_in, request_id="r-1", parameters={"k": 2, "threshold": 0.005})
    request = oip.parse_infer(body, length, API)
    assert request.texts == TEXTS and request.id == "r-1"
    assert (request.k, request.threshold) == (2, 0.005)
    assert request.outputs == (("label", True), ("probability", True))


def test_kserve_requests_are_read():
    text = InferInput("text", [len(TEXTS)], "BYTES", data=TEXTS)
    body, length = InferRequest("m", [text], request_id="k-1", parameters={"k": 3},
                                request_outputs=[RequestedOutput("probability")]).to_rest()
    body = body if isinstance(body, bytes) else ujson.dumps(body).encode()
    request = oip.parse_infer(body, None if length is None else str(length), API)
    assert (request.texts, request.id, request.k, request.outputs) == (TEXTS, "k-1", 3, (("probability", False),))


def test_every_output_by_default_in_binary_when_the_request_says_so():
    body, length = triton_request(outputs=None)  # tritonclient then asks binary_data_output
    assert oip.parse_infer(body, length, API).outputs == (("label", True), ("probability", True))
    plain = ujson.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["x"]}]})
    assert oip.parse_infer(plain.encode(), None, API).outputs == (("label", False), ("probability", False))


@pytest.mark.parametrize("binary", [(True, True), (False, False), (True, False)])
def test_tritonclient_reads_the_response(binary):
    body, length = triton_request(outputs=(("label", binary[0]), ("probability", binary[1])),
                                  request_id="r-2", parameters={"k": 2})
    request = oip.parse_infer(body, length, API)
    answer, header = oip.encode_infer("amazon_review_full", "1", request, PREDICTIONS)
    result = triton.InferenceServerClient.parse_response_body(answer, header_length=header)
    labels = [[x.decode() if isinstance(x, bytes) else x for x in row] for row in result.as_numpy("label")]
    assert labels == [["5 star", "4 star"], ["3 star", "2 star"], ["1 star", oip.PAD_LABEL]]
    probabilities = result.as_numpy("probability")
    assert probabilities.dtype == np.float32 and probabilities.shape == (3, 2)
    assert probabilities.tolist() == np.array([[0.88, 0.07], [0.98, 0.01], [0.99, 0.0]], np.float32).tolist()
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == ("amazon_review_full", "1", "r-2")


def test_kserve_reads_the_response():
    text = InferInput("text", [len(TEXTS)], "BYTES", data=TEXTS)
    body, _ = InferRequest("m", [text], parameters={"k": 2}).to_rest()
    request = oip.parse_infer(ujson.dumps(body).encode() if isinstance(body, dict) else body, None, API)
    answer, header = oip.encode_infer("amazon_review_full", "1", request, PREDICTIONS)
    assert header is None
    response = InferResponse.from_bytes(answer, len(answer))
    assert response.model_name == "amazon_review_full" and response.id == request.id
    by_name = {o.name: o for o in response.outputs}
    assert by_name["label"].shape == [3, 2] and by_name["label"].data[:2] == ["5 star", "4 star"]
    assert by_name["probability"].as_numpy().shape == (3, 2)


def test_no_id_in_the_request_none_in_the_response():
    plain = ujson.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["x"]}]})
    request = oip.parse_infer(plain.encode(), None, API)
    answer, _ = oip.encode_infer("m", "1", request, [[("5 star", 0.5)]])
    assert "id" not in ujson.loads(answer)


def _tensor(**over):
    return {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["x"], **over}


def _body(**over):
    return ujson.dumps({"inputs": [_tensor()], **over}).encode()


@pytest.mark.parametrize("body,length,message", [
    (b"not json", None, "not JSON"),
    (b"[1, 2]", None, "JSON object"),
    (b'{"inputs": []}', None, "one input"),
    (_body(inputs=[_tensor(), _tensor()]), None, "one input"),
    (_body(inputs=[_tensor(name="texts")]), None, "unknown input 'texts'"),
    (_body(inputs=[_tensor(datatype="FP32")]), None, "must be BYTES"),
    (_body(inputs=[_tensor(shape=[1, 1])]), None, "shape [N]"),
    (_body(inputs=[_tensor(shape=[-1])]), None, "shape [N]"),
    (_body(inputs=[_tensor(shape=[0], data=[])]), None, "holds no text"),
    (_body(inputs=[_tensor(shape=[2])]), None, "list of its 2 texts"),
    (_body(inputs=[_tensor(data="x")]), None, "list of its 1 texts"),
    (_body(id=7), None, "`id` must be a string"),
    (_body(parameters=[]), None, "`parameters` must be an object"),
    (_body(parameters={"k": 6}), None, "`k` must be an integer from 1 to 5"),
    (_body(parameters={"k": True}), None, "`k` must be an integer"),
    (_body(parameters={"threshold": 2}), None, "`threshold` must be a number from 0 to 1"),
    (_body(parameters={"threshold": "0.5"}), None, "`threshold` must be a number"),
    (_body(parameters={"binary_data_output": 1}), None, "binary_data_output"),
    (_body(outputs=[{"name": "score"}]), None, "unknown output 'score'"),
    (_body(outputs=[{"name": "label"}, {"name": "label"}]), None, "asked for twice"),
    (_body(outputs=[]), None, "non-empty list"),
    (_body(outputs=[{"name": "label", "parameters": {"binary_data": "yes"}}]), None, "binary_data"),
    (_body() + b"xx", str(len(_body())), "no input says binary_data_size"),
    (_body(), "0", "1 to"),
    (_body(), "-3", "1 to"),
    (_body(), "99999", "1 to"),
])
def test_bad_requests_say_what_is_wrong(body, length, message):
    with pytest.raises(oip.InvalidInfer, match=message.replace("[", r"\[").replace("]", r"\]")):
        oip.parse_infer(body, length, API)


def _binary_body(elements: bytes, declared: int | None = None, shape=1):
    header = ujson.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [shape], "parameters": {
        "binary_data_size": len(elements) if declared is None else declared}}]}).encode()
    return header + elements, str(len(header))


@pytest.mark.parametrize("elements,declared,shape,message", [
    (struct.pack("<I", 5) + b"abc", None, 1, "longer than the binary data"),
    (b"\x01\x00", None, 1, "ends before element 0"),
    (struct.pack("<I", 2) + b"\xff\xfe", None, 1, "not UTF-8"),
    (struct.pack("<I", 1) + b"a" + b"zz", None, 1, "2 bytes of binary data after its 1 elements"),
    (struct.pack("<I", 1) + b"a", 9, 1, "binary_data_size must be the 5 bytes"),
    (struct.pack("<I", 1) + b"a", None, 2, "ends before element 1"),
])
def test_bad_binary_data_says_what_is_wrong(elements, declared, shape, message):
    body, length = _binary_body(elements, declared, shape)
    with pytest.raises(oip.InvalidInfer, match=message):
        oip.parse_infer(body, length, API)


def test_more_texts_than_the_limit_is_its_own_error():
    body = ujson.dumps({"inputs": [_tensor(shape=[5], data=["x"] * 5)]}).encode()
    with pytest.raises(oip.TooManyTexts, match="5 texts in one request; the limit is 4"):
        oip.parse_infer(body, None, API)


# Through the app, as a worker serves it (falcon.testing; the tiny model).

def test_a_binary_infer_through_the_app_answers_what_v1_predict_does(tiny_client):
    texts = ["great product, love it", "terrible, broke at once"]
    text = triton.InferInput("text", [len(texts)], "BYTES")
    text.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object))
    body, json_size = triton.InferenceServerClient.generate_request_body(
        [text], [triton.InferRequestedOutput("label"), triton.InferRequestedOutput("probability")],
        request_id="x-1", parameters={"k": 2})
    answer = tiny_client.simulate_post(f"/v2/models/{TINY_MODEL_NAME}/versions/1/infer", body=body,
                                       headers={oip.HEADER_LENGTH: str(json_size)})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/octet-stream"
    result = triton.InferenceServerClient.parse_response_body(
        answer.content, header_length=int(answer.headers[oip.HEADER_LENGTH]))
    got = [[(label.decode(), p) for label, p in zip(labels, probabilities, strict=True)]
           for labels, probabilities in zip(result.as_numpy("label"), result.as_numpy("probability").tolist(),
                                            strict=True)]
    v1 = tiny_client.simulate_post("/v1/predict", json={"texts": texts, "k": 2}).json["predictions"]
    assert got == [[(p["label"], np.float32(p["probability"])) for p in row] for row in v1]
    assert result.get_response()["id"] == "x-1"


def test_the_metadata_routes_name_the_model_from_its_manifest(tiny_client, tiny_classifier):
    server = tiny_client.simulate_get("/v2").json
    assert server["name"] == "reviewrating" and server["extensions"] == ["binary_tensor_data"]
    assert tiny_client.simulate_get("/v2/health/live").json == {"live": True}
    assert tiny_client.simulate_get("/v2/health/ready").json == {"ready": True}
    for base in (f"/v2/models/{TINY_MODEL_NAME}", f"/v2/models/{TINY_MODEL_NAME}/versions/1"):
        model = tiny_client.simulate_get(base).json
        assert (model["name"], model["versions"]) == (TINY_MODEL_NAME, [tiny_classifier.version])
        assert tiny_client.simulate_get(f"{base}/ready").json == {"name": TINY_MODEL_NAME, "ready": True}
        assert tiny_client.simulate_get(f"{base}/config").json["max_batch_size"] == 0


def test_infer_predictions_are_counted(tiny_client):
    body = ujson.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [3],
                                    "data": ["good", "bad", "fine"]}]})
    assert tiny_client.simulate_post(f"/v2/models/{TINY_MODEL_NAME}/infer", body=body).status_code == 200
    assert metrics.total(tiny_client.simulate_get("/metrics").text, "worker_predictions_total") == 3
