"""What every stack must do, checked once, on each in turn: the local stack
(`make local-up`) and the compose stack (`make up`), real HTTP on :9000."""

import os
import re
import signal

import pytest
import requests
from stacktools.ready import wait_for

from app.config import Limits

from .. import metrics
from ..bad_inputs import BAD_INPUTS, assert_json_error, oip_bad_inputs, oversized
from ..reference import CURL_LABEL, CURL_PROBABILITY, CURL_TEXT, MODEL_NAME, MODEL_SHA256, PREDICTIONS
from .stacks import WORKERS, listening
from .traffic import BASE, readme_curl, spread_over, under_load


def test_the_readme_curl_example(stack):
    assert readme_curl(CURL_TEXT) == (CURL_LABEL, CURL_PROBABILITY)


def test_json_api_through_nginx(stack):
    session = requests.Session()
    review = {"title": "Junk", "body": "broke"}
    r = session.post(f"{BASE}/v1/predict", json={"texts": [text for text, _, _ in PREDICTIONS] + [review], "k": 2})
    assert r.status_code == 200
    predictions = r.json()["predictions"]
    assert [len(p) for p in predictions] == [2] * (len(PREDICTIONS) + 1)
    assert [(p[0]["label"], f"{p[0]['probability']:.6g}") for p in predictions[:-1]] == \
        [(label, probability) for _, label, probability in PREDICTIONS]
    single = session.post(f"{BASE}/inferreview", json=review).json()
    assert single == {predictions[-1][0]["label"]: predictions[-1][0]["probability"]}
    assert session.get(f"{BASE}/healthz").json() == {"status": "ok"}
    # /readyz through nginx: the service is ready (a worker answered), not a worker's state
    assert session.get(f"{BASE}/readyz").json() == {"status": "ok"}
    assert session.get(f"{BASE}/v1/model").json()["sha256"] == MODEL_SHA256


@pytest.mark.parametrize("name,method,path,headers,body,status",
                         BAD_INPUTS + oversized(Limits()) + oip_bad_inputs(MODEL_NAME, Limits()),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_bad_input_through_nginx(stack, name, method, path, headers, body, status):
    r = requests.request(method, BASE + path, headers=headers, data=body, timeout=10)
    assert r.status_code == status, (name, r.text)
    assert_json_error(path, r.headers["content-type"], r.json())


def test_huge_body_is_refused_without_reaching_a_worker(stack):
    before = stack.refusals()
    r = requests.post(f"{BASE}/inferreview", data=b"text=" + b"a" * (10 << 20),
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    assert r.status_code == 413
    assert r.json()["title"].startswith("413")
    assert stack.refusals() == before  # nginx answered it: no worker refused anything


def test_nginx_spreads_requests_over_every_worker(stack):
    served = spread_over(stack.predictions)
    print(f"requests per worker: {served}")
    assert sum(served) == 400
    assert all(n >= 400 / WORKERS * 0.5 for n in served), served


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill -9", "stray SIGTERM"])
def test_a_worker_stopped_under_load_loses_nothing_and_comes_back(stack, sig):
    """SIGKILL, or a SIGTERM from outside the stack's own tools (the worker drains
    and exits 0): no request fails, the stack starts the worker again by itself
    (supervisord's autorestart, Compose's restart: unless-stopped), and nginx
    sends it requests again."""
    worker = stack.workers()[0]
    pid = stack.pid(worker)
    under_load(lambda: os.kill(pid, sig), seconds_after=2.5)
    stack.wait_back(worker, pid)
    session = requests.Session()

    def serves_again():
        for _ in range(20):
            assert session.post(f"{BASE}/inferreview", data={"text": "ok"}, timeout=10).status_code == 200
        return stack.predictions()[stack.workers().index(worker)] >= 10

    wait_for(serves_again, 20, f"nginx to send {worker} requests again", interval=0.5)


def test_nginx_listens_on_loopback_only(stack):
    """:9000 on 127.0.0.1 (PUBLISH_ADDR widens it), the status port on 127.0.0.1 only."""
    assert listening(9000) == ["127.0.0.1"]
    assert listening(9001) == ["127.0.0.1"]
    assert requests.get("http://127.0.0.1:9001/stub_status", timeout=5).text.startswith("Active connections")
    assert requests.get("http://127.0.0.1:9001/healthz", timeout=5).json() == {"status": "ok"}


@pytest.mark.parametrize("path", [
    "/metrics", "//metrics", "/%6detrics", "/%6D%65trics", "/metrics/", "/./metrics", "/healthz/../metrics",
    "/metrics?x=1", "/METRICS", "/readyz/", "/nope", "/_error/400", "/_error/502", "/v1", "/v1/",
    "/inferreview/extra", "/v1/model/../../metrics",
])
def test_internal_and_unknown_paths_are_a_json_404_from_nginx(stack, path):
    before = stack.refusals()
    for method in ("GET", "POST"):
        r = requests.request(method, BASE + path, data=b"text=hi", timeout=5,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 404, (method, path, r.text)
        assert r.headers["content-type"] == "application/json" and r.json() == {"title": "404 Not Found"}
        assert "worker_" not in r.text
    # nginx answered: no worker did (a worker's 404 reads the same)
    assert stack.refusals() == before


@pytest.mark.parametrize("sent,kept", [
    ("order-2026-12-03.17", True), ("a" * 128, True), ("a" * 129, False), ("with space", False), ("", False),
])
def test_every_answer_carries_the_request_id_the_worker_got(stack, sent, kept):
    """A client's X-Request-ID (1-128 printable characters, no space) is kept,
    else nginx makes one; answers carry it, errors included, whoever answered."""
    headers = {"X-Request-ID": sent} if sent else {}
    answers = [
        requests.post(f"{BASE}/inferreview", data={"text": "it was ok"}, headers=headers, timeout=10),  # a worker's 200
        requests.post(f"{BASE}/inferreview", data={"text": ""}, headers=headers, timeout=10),  # a worker's 400
        requests.get(f"{BASE}/nope", headers=headers, timeout=10),  # nginx's 404
        requests.request("TRACE", f"{BASE}/healthz", headers=headers, timeout=10),  # nginx's 405
        requests.get(f"{BASE}/v2/models/no-such-model", headers=headers, timeout=10),  # the protocol's 404
    ]
    ids = [r.headers.get("X-Request-ID") for r in answers]
    assert [r.status_code for r in answers] == [200, 400, 404, 405, 404]
    if kept:
        assert ids == [sent] * len(answers)
    else:
        # nginx's own: the connection's number and the request's on it
        assert all(re.fullmatch(r"[0-9]+-[0-9]+", i or "") for i in ids) and len(set(ids)) == len(ids), ids


def test_a_failure_is_logged_with_its_request_id(stack):
    request_id = f"trace-{os.getpid()}-{stack.name}"
    r = requests.get(f"{BASE}/v2/nothing-here", headers={"X-Request-ID": request_id}, timeout=10)
    assert r.status_code == 404 and r.headers["X-Request-ID"] == request_id
    # the failures' access log is buffered (flush=5s)
    def logged():
        return next((entry for entry in stack.nginx_log().splitlines() if f"id={request_id}" in entry), None)

    line = wait_for(logged, 15, "the failure's log line", interval=0.5)
    assert '"GET /v2/nothing-here HTTP/1.1" 404 ' in line


def test_one_metrics_page_for_the_whole_service(stack):
    """The status port's /metrics: every worker's counters, each with its
    worker label, and nginx's, on one page a Prometheus parser reads."""
    for _ in range(10):
        assert requests.post(f"{BASE}/inferreview", data={"text": "it was ok"}, timeout=10).status_code == 200

    def predictions(text):
        served = {}
        for s in metrics.samples(text):
            if s.name == "worker_predictions_total":  # by worker and label
                served[s.labels["worker"]] = served.get(s.labels["worker"], 0) + s.value
        return served

    def page():
        # The page is rewritten every 2 s (nginx/service-metrics.sh): until its first
        # write the status port answers 404, and a page may predate the requests above.
        r = requests.get("http://127.0.0.1:9001/metrics", timeout=5)
        if r.status_code != 200 or len(metrics.by_label(r.text, "worker_requests_total", "worker")) != WORKERS:
            return None
        return r.text if sum(predictions(r.text).values()) >= 10 else None

    text = wait_for(page, 15, "every worker and the requests above on the status page", interval=0.5)
    served = predictions(text)
    assert len(served) == WORKERS and sum(served.values()) >= 10, served
    names = {s.name for s in metrics.samples(text)}
    assert {"nginx_connections_accepted_total", "nginx_http_requests_total", "nginx_connections"} <= names
    buckets = {s.labels["worker"] for s in metrics.samples(text) if s.name == "worker_request_duration_seconds_bucket"}
    assert buckets == set(served)
