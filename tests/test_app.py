"""The app a worker serves, through falcon.testing, with a small model trained in the test."""

import signal

import pytest
from falcon import testing

from app.config import Limits, Settings
from app.wsgi import create_app, get_app

from . import metrics
from .bad_inputs import BAD_INPUTS, TEST_LIMITS, assert_json_error, oip_bad_inputs, oversized
from .paths import TINY_MODEL_NAME


def post_form(client, text, path="/inferreview"):
    return client.simulate_post(path, params=None, body=f"text={text}",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})


def test_seed_contract_form(tiny_client):
    result = tiny_client.simulate_post("/inferreview", params={"text": "I love it, excellent!"},
                                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    # simulate_post(params=...) puts them in the query string, as the seed's get_param() allowed
    assert result.status_code == 200
    ((label, probability),) = result.json.items()
    assert label == "5 star"
    assert 0.5 < probability <= 1.0


def test_seed_contract_form_body(tiny_client):
    result = post_form(tiny_client, "Terrible%2C+broke+after+one+day.")
    assert result.status_code == 200
    assert list(result.json) == ["1 star"]
    assert result.headers["content-type"].startswith("application/json")


def test_form_body_decoding(tiny_client, tiny_classifier):
    """Percent-encoding, `+` for spaces, and a U+FFFD the client really sent
    (%EF%BF%BD) are read as the standard library reads them."""
    for body, text in [("caf%C3%A9+%E2%82%AC+5", "caf\u00e9 \u20ac 5"),
                       ("I+love+it%2C+excellent%21", "I love it, excellent!"),
                       ("odd+%EF%BF%BD+char", "odd \ufffd char")]:
        result = post_form(tiny_client, body)
        assert result.status_code == 200, (body, result.text)
        ((label, probability),) = tiny_classifier.predict(text)
        assert result.json == {label: probability}


def test_json_body_text_and_review(tiny_client, tiny_classifier):
    by_text = tiny_client.simulate_post("/inferreview", json={"text": "Great , I love it"})
    by_review = tiny_client.simulate_post("/inferreview", json={"title": "Great", "body": "I love it"})
    assert by_text.status_code == by_review.status_code == 200
    assert by_text.json == by_review.json
    label, p = tiny_classifier.predict("Great , I love it")[0]
    assert by_text.json == {label: p}


def test_served_answer_is_the_classifier_answer_on_normalised_text(tiny_client, tiny_classifier):
    raw = "IT WAS OK...\nNothing (special)!"
    result = post_form(tiny_client, "IT+WAS+OK...%0ANothing+%28special%29%21")
    label, p = tiny_classifier.predict(raw)[0]
    assert result.json == {label: p}
    assert tiny_classifier.normalize(raw) == "it was ok . . . nothing ( special ) !"


@pytest.mark.parametrize("text", ["a\x00b", "tab\there", "\r\n\r\n ok", "\u00a0x", "é" * 1000,
                                  "'", ".", "br", "<br/>", ";a;"])
def test_control_characters_and_odd_text_are_served(tiny_client, text):
    result = tiny_client.simulate_post("/inferreview", json={"text": text})
    assert result.status_code == 200, result.text
    assert len(result.json) == 1


@pytest.mark.parametrize("text", ["\x00", '"', ";;", "<br />", ":", '<br /> ; : "\x7f\n', "<BR />"])
def test_a_text_that_normalises_to_nothing_is_refused(tiny_client, text):
    """As an empty text is: the model would answer a confident label for no word at all."""
    for path, body, status in (("/inferreview", {"text": text}, 400),
                               ("/inferreview", {"title": text, "body": ""}, 400),
                               ("/v1/predict", {"texts": ["fine", text]}, 422)):
        result = tiny_client.simulate_post(path, json=body)
        assert result.status_code == status, (path, text, result.text)
        assert result.json["title"] == "Missing text"


def test_query_string_text_is_read_by_the_body_rules(tiny_client, tiny_classifier):
    ok = tiny_client.simulate_post("/inferreview", query_string="text=caf%C3%A9+ok")
    assert ok.status_code == 200
    ((label, p),) = tiny_classifier.predict("caf\u00e9 ok")
    assert ok.json == {label: p}
    for query in ("text=%ff%fe", "text=ok%e2%82", "text=a&text=b", "text=%3B"):
        bad = tiny_client.simulate_post("/inferreview", query_string=query)
        assert bad.status_code == 400, (query, bad.text)


def test_batch_top_k_and_threshold(tiny_client, tiny_classifier):
    texts = ["I love it", {"title": "Junk", "body": "broke at once"}, "it was ok"]
    result = tiny_client.simulate_post("/v1/predict", json={"texts": texts, "k": 3})
    assert result.status_code == 200
    predictions = result.json["predictions"]
    assert len(predictions) == 3
    assert all(len(p) == 3 for p in predictions)
    assert [p[0]["label"] for p in predictions] == ["5 star", "1 star", "3 star"]
    for p in predictions:
        probs = [x["probability"] for x in p]
        assert probs == sorted(probs, reverse=True)
        assert sum(probs) == pytest.approx(1.0, abs=1e-3)
    high = tiny_client.simulate_post("/v1/predict", json={"texts": texts, "k": 3, "threshold": 0.5})
    assert all(len(p) == 1 for p in high.json["predictions"])
    assert all(x["probability"] >= 0.5 for p in high.json["predictions"] for x in p)
    none = tiny_client.simulate_post("/v1/predict", json={"texts": ["it was ok"], "threshold": 1.0})
    assert none.json == {"predictions": [[]]}


def test_batch_equals_single(tiny_client):
    texts = ["I love it", "terrible junk", "it was ok", "average product"]
    batch = tiny_client.simulate_post("/v1/predict", json={"texts": texts}).json["predictions"]
    for text, predicted in zip(texts, batch, strict=True):
        single = tiny_client.simulate_post("/inferreview", json={"text": text}).json
        assert single == {predicted[0]["label"]: predicted[0]["probability"]}


@pytest.mark.parametrize("name,method,path,headers,body,status",
                         BAD_INPUTS + oversized(TEST_LIMITS) + oip_bad_inputs(TINY_MODEL_NAME, TEST_LIMITS),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_bad_input_gets_json_4xx(tiny_client, name, method, path, headers, body, status):
    result = tiny_client.simulate_request(method, path, headers=headers, body=body)
    assert result.status_code == status, (name, result.text)
    assert_json_error(path, result.headers["content-type"], result.json)


def test_errors_are_json_even_when_client_prefers_xml(tiny_client):
    result = tiny_client.simulate_get("/nope", headers={"Accept": "application/xml"})
    assert result.status_code == 404
    assert result.headers["content-type"].startswith("application/json")
    assert result.json["title"] == "404 Not Found"


def test_declared_body_over_limit_is_413_before_reading(make_tiny_client):
    client = make_tiny_client(Limits(max_body_bytes=10))
    result = client.simulate_post("/inferreview", body="text=" + "a" * 20,
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert result.status_code == 413
    assert "exceeds 10" in result.json["description"]


def test_health_ready_and_model_info(tiny_client, tiny_classifier, tiny_model_path):
    assert tiny_client.simulate_get("/healthz").json == {"status": "ok"}
    ready = tiny_client.simulate_get("/readyz")
    assert (ready.status_code, ready.json) == (200, {"status": "ready"})
    info = tiny_client.simulate_get("/v1/model").json
    assert sorted(info["labels"]) == ["1 star", "3 star", "5 star"]
    assert info["dimension"] == 10
    assert info["quantized"] is False
    assert info["preprocessing"] == "fasttext-classification-results"
    from app.manifest import sha256_of
    assert info["sha256"] == sha256_of(tiny_model_path)


def test_readyz_is_503_while_draining(make_tiny_client):
    from app.drain import Lifecycle

    lifecycle = Lifecycle(shutdown_timeout=10, drain_quiet=0.5)
    lifecycle.draining = True
    client = make_tiny_client(lifecycle=lifecycle)
    result = client.simulate_get("/readyz")
    assert (result.status_code, result.json) == (503, {"status": "draining"})
    assert client.simulate_get("/healthz").status_code == 200


def test_metrics_in_prometheus_text(tiny_client, tiny_classifier):
    for _ in range(3):
        tiny_client.simulate_get("/healthz")
    result = tiny_client.simulate_get("/metrics")
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/plain")
    assert metrics.value(result.text, "worker_requests_total") == 4  # the read counts itself
    assert metrics.value(result.text, "worker_draining") == 0
    assert metrics.value(result.text, "worker_model_info", sha256=tiny_classifier.sha256) == 1


def test_the_wrapper_closes_connections_while_draining(make_tiny_client):
    """The one WSGI wrapper create_app returns does the drain's per-request part
    (app/drain.py's Lifecycle; its signals are exercised in test_server.py)."""
    from app.drain import Lifecycle

    lifecycle = Lifecycle(shutdown_timeout=10, drain_quiet=0.5)
    sigint = signal.getsignal(signal.SIGINT)
    client = make_tiny_client(lifecycle=lifecycle)
    assert "connection" not in client.simulate_get("/healthz").headers
    assert signal.getsignal(signal.SIGINT) is sigint  # not installed: no signal taken
    before = lifecycle.last_request
    lifecycle.draining = True
    result = client.simulate_get("/healthz")
    assert result.status_code == 200 and result.headers["connection"] == "close"
    assert client.simulate_get("/readyz").status_code == 503
    page = client.simulate_get("/metrics")
    assert page.headers["connection"] == "close"
    assert metrics.value(page.text, "worker_draining") == 1
    assert metrics.value(page.text, "worker_requests_total") == 4
    assert lifecycle.in_flight == 0 and lifecycle.last_request > before


def test_openapi_document_describes_every_route_with_the_limits(tiny_client, tiny_classifier):
    result = tiny_client.simulate_get("/openapi.json")
    assert result.status_code == 200 and result.headers["content-type"] == "application/json"
    doc = result.json
    assert doc["openapi"].startswith("3.0")
    # what clients reach through nginx; /metrics is the operator's, on the private network
    assert set(doc["paths"]) == {"/inferreview", "/v1/predict", "/v1/model", "/healthz", "/readyz",
                                 "/openapi.json", "/v2", "/v2/health/live", "/v2/health/ready",
                                 "/v2/models/{name}", "/v2/models/{name}/ready", "/v2/models/{name}/infer"}
    for path, methods in doc["paths"].items():  # every documented operation exists
        for method in methods:
            if method == "parameters":
                continue
            reached = tiny_client.simulate_request(method.upper(), path.format(name=tiny_classifier.name))
            assert reached.status_code not in (404, 405), path
    predict = doc["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert predict["properties"]["texts"]["maxItems"] == TEST_LIMITS.max_batch
    assert predict["properties"]["k"]["maximum"] == len(tiny_classifier.labels)
    answer = doc["paths"]["/v1/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    label = answer["properties"]["predictions"]["items"]["items"]["properties"]["label"]
    assert label["enum"] == tiny_classifier.labels


def test_the_worker_enforces_the_bounds_its_openapi_document_gives(tiny_client):
    """The resources and /openapi.json read one definition (app/api.py):
    each documented bound is accepted at the edge and refused just past it."""
    doc = tiny_client.simulate_get("/openapi.json").json
    body = doc["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    texts, k, threshold = (body["properties"][name] for name in ("texts", "k", "threshold"))
    form = doc["paths"]["/inferreview"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    text = form["schema"]["properties"]["text"]

    def predict(**fields):
        return tiny_client.simulate_post("/v1/predict", json={"texts": ["ok"], **fields}).status_code

    assert predict(k=k["minimum"]) == predict(k=k["maximum"]) == 200
    assert predict(k=k["minimum"] - 1) == predict(k=k["maximum"] + 1) == 422
    assert predict(threshold=threshold["minimum"]) == predict(threshold=threshold["maximum"]) == 200
    assert predict(threshold=threshold["minimum"] - 0.01) == predict(threshold=threshold["maximum"] + 0.01) == 422
    assert predict(texts=["ok"] * texts["maxItems"]) == 200
    assert predict(texts=["ok"] * (texts["maxItems"] + 1)) == 413
    assert predict(texts=["ok"] * (texts["minItems"] - 1)) == 422
    assert predict(texts=["a" * text["maxLength"]]) == 200
    assert predict(texts=["a" * (text["maxLength"] + 1)]) == 413
    for length, status in ((text["maxLength"], 200), (text["maxLength"] + 1, 413), (text["minLength"] - 1, 400)):
        assert post_form(tiny_client, "a" * length).status_code == status, length


def test_metrics_count_statuses_latency_and_labels(tiny_client, tiny_classifier):
    assert post_form(tiny_client, "I+love+it%2C+excellent%21").status_code == 200
    assert tiny_client.simulate_post("/v1/predict", json={"texts": ["awful", "great"]}).status_code == 200
    assert post_form(tiny_client, "").status_code == 400
    assert tiny_client.simulate_get("/nowhere").status_code == 404
    page = tiny_client.simulate_get("/metrics").text
    assert metrics.by_label(page, "worker_http_requests_total", "code") == {"200": 2, "400": 1, "404": 1}
    assert metrics.value(page, "worker_request_duration_seconds_bucket", le="+Inf") == 4
    assert metrics.value(page, "worker_request_duration_seconds_count") == 4
    assert metrics.value(page, "worker_request_duration_seconds_sum") > 0
    labels = metrics.by_label(page, "worker_predictions_total", "label")
    assert sum(labels.values()) == 3  # one form text, two batch texts
    assert set(labels) <= set(tiny_classifier.labels)
    assert metrics.value(page, "worker_model_info", sha256=tiny_classifier.sha256) == 1


def test_get_app_serves_what_create_app_builds(tiny_model_path, tiny_classifier):
    """get_app, bjoern's, gunicorn's and granian's entry point, is create_app
    from the settings: the same one wrapper, counting for /metrics."""
    app = get_app(Settings(model_path=tiny_model_path, limits=TEST_LIMITS))
    assert app.__code__ is create_app(tiny_classifier).__code__
    client = testing.TestClient(app)
    assert client.simulate_get("/healthz").status_code == 200
    page = client.simulate_get("/metrics").text
    assert "\nworker_requests_total 2\n" in page
    assert f'worker_model_info{{sha256="{tiny_classifier.sha256}"}} 1' in page
