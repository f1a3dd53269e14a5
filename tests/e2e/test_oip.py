"""The Open Inference Protocol (KServe v2) on the compose stack, through nginx
on :9000, driven by clients no one here wrote: tritonclient (NVIDIA Triton's
HTTP client) and KServe's Python SDK REST client. Their answers must be
/v1/predict's for the same texts; bad input is the protocol's JSON error."""

import asyncio
import json

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from tritonclient.utils import InferenceServerException

from ..reference import MODEL_NAME, MODEL_VERSION
from .traffic import BASE

pytestmark = pytest.mark.usefixtures("compose_stack")

MODEL, VERSION = MODEL_NAME, MODEL_VERSION
TEXTS = ["I love this product.", "it was ok", "This is the worst thing I ever bought", "Ça marche très bien ✓"]


def v1_predict(texts, k=1, threshold=0.0):
    r = requests.post(f"{BASE}/v1/predict", json={"texts": texts, "k": k, "threshold": threshold}, timeout=10)
    assert r.status_code == 200, r.text
    return [[(p["label"], np.float32(p["probability"])) for p in row] for row in r.json()["predictions"]]


def rows(labels, probabilities):
    """An answer's [N, k] outputs as /v1/predict's rows (padding dropped)."""
    return [[(label.decode() if isinstance(label, bytes) else label, probability)
             for label, probability in zip(label_row, probability_row, strict=True) if label not in ("", b"")]
            for label_row, probability_row in zip(labels.tolist(), probabilities.tolist(), strict=True)]


@pytest.fixture(scope="module")
def client():
    with triton.InferenceServerClient("127.0.0.1:9000") as c:
        yield c


def test_tritonclient_sees_a_live_ready_server_and_the_model(client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL) and client.is_model_ready(MODEL, VERSION)
    assert not client.is_model_ready("no-such-model")
    server = client.get_server_metadata()
    assert server["name"] and "binary_tensor_data" in server["extensions"]
    model = client.get_model_metadata(MODEL)
    assert model["name"] == MODEL and model["versions"] == [VERSION]
    assert model["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert {(o["name"], o["datatype"]) for o in model["outputs"]} == {("label", "BYTES"), ("probability", "FP32")}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("k,threshold", [(1, 0.0), (3, 0.0), (5, 0.01)])
def test_tritonclient_answers_are_v1_predicts(client, binary, k, threshold):
    text = triton.InferInput("text", [len(TEXTS)], "BYTES")
    text.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=object), binary_data=binary)
    outputs = [triton.InferRequestedOutput(name, binary_data=binary) for name in ("label", "probability")]
    result = client.infer(MODEL, [text], outputs=outputs, request_id=f"t-{k}",
                          parameters={"k": k, "threshold": threshold})
    assert result.get_response()["id"] == f"t-{k}"
    assert result.get_response()["model_name"] == MODEL
    assert result.as_numpy("label").shape == (len(TEXTS), k)
    assert rows(result.as_numpy("label"), result.as_numpy("probability")) == v1_predict(TEXTS, k, threshold)


def test_tritonclient_gets_only_the_outputs_it_asks_for(client):
    text = triton.InferInput("text", [1], "BYTES")
    text.set_data_from_numpy(np.array([b"it was ok"], dtype=object))
    result = client.infer(MODEL, [text], outputs=[triton.InferRequestedOutput("probability")])
    assert [o["name"] for o in result.get_response()["outputs"]] == ["probability"]
    assert result.as_numpy("label") is None


def test_tritonclient_hears_the_protocols_errors(client):
    text = triton.InferInput("text", [1], "BYTES")
    text.set_data_from_numpy(np.array([b"it was ok"], dtype=object))
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("no-such-model", [text])
    assert unknown.value.status() == "404" and "no-such-model" in unknown.value.message()
    with pytest.raises(InferenceServerException) as bad_k:
        client.infer(MODEL, [text], parameters={"k": 9})
    assert bad_k.value.status() == "400" and "`k`" in bad_k.value.message()


def kserve(call):
    async def run():
        c = InferenceRESTClient(RESTConfig(protocol="v2", timeout=10))
        try:
            return await call(c)
        finally:
            await c.close()
    return asyncio.run(run())


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_kserves_client_answers_are_v1_predicts(binary):
    text = InferInput("text", [len(TEXTS)], "BYTES")
    if binary:
        text.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=object), binary_data=True)
    else:
        text.set_data_from_numpy(np.array(TEXTS, dtype=object), binary_data=False)
    request = InferRequest(MODEL, [text], request_id="kserve-1", parameters={"k": 2})
    response = kserve(lambda c: c.infer(BASE, request, model_name=MODEL))
    assert response.id == "kserve-1" and response.model_name == MODEL
    outputs = {o.name: o.as_numpy() for o in response.outputs}
    assert rows(outputs["label"], outputs["probability"]) == v1_predict(TEXTS, k=2)


def test_kserves_client_sees_a_ready_server_and_model():
    assert kserve(lambda c: c.is_server_ready(BASE)) is True
    assert kserve(lambda c: c.is_server_live(BASE)) is True
    assert kserve(lambda c: c.is_model_ready(BASE, MODEL)) is True
    assert kserve(lambda c: c.is_model_ready(BASE, "no-such-model")) is False


INFER = f"{BASE}/v2/models/{MODEL}/infer"


@pytest.mark.parametrize("body,status", [
    (b"{not json", 400),
    (json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [""]}]}).encode(), 400),
    (json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [7]}]}).encode(), 400),
    (json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [300],
                             "data": ["x"] * 300}]}).encode(), 413),
    (json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1],
                             "data": ["x" * 30000]}]}).encode(), 413),
    (b"{" + b" " * (2 << 20) + b"}", 413),  # over nginx's body limit: nginx's own answer, in the same shape
])
def test_bad_input_is_the_protocols_json_error(body, status):
    r = requests.post(INFER, data=body, timeout=10)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert set(r.json()) == {"error"} and r.json()["error"], r.text


@pytest.mark.parametrize("path,status", [
    ("/v2/models/no-such-model", 404), ("/v2/models/no-such-model/ready", 404),
    (f"/v2/models/{MODEL}/versions/9", 404), ("/v2/nothing-here", 404),
])
def test_unknown_models_and_paths_are_the_protocols_404(path, status):
    r = requests.get(f"{BASE}{path}", timeout=10)
    assert r.status_code == status and set(r.json()) == {"error"}, r.text
