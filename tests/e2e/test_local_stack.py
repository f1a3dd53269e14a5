"""End to end without Docker, what only the local stack shows: `make local-up`
(real supervisord, nginx and bjoern workers, the real model), real HTTP on :9000.
The checks every stack must pass are in test_smoke.py."""

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from stacktools import localstack, nginxconf
from stacktools.ready import wait_for

from app.normalize import review_text

from ..paths import REAL_MODEL, ROOT, shared_file
from ..rawhttp import exchange, free_port
from ..reference import ACCURACY
from . import stacks
from .traffic import BASE

pytestmark = pytest.mark.usefixtures("local_stack")


def test_make_local_up_needs_no_rust():
    """The fixture's `make local-up` ran with cargo and rustc off the PATH (a
    cargo that fails in their place, stacks.NO_RUST_ENV) and never called them."""
    assert not stacks.RUST_CALLED.exists(), stacks.RUST_CALLED.read_text()


@pytest.mark.parametrize("payload,status", [
    (b"NOT HTTP AT ALL\r\n\r\n", b"400"),
    (b"POST /inferreview HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", b"400"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", b"431"),
    (b"POST /inferreview HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
     b"Content-Length: 2000000\r\nConnection: close\r\n\r\n", b"413"),
], ids=["garbage", "bad content-length", "huge header", "10 MB-class body"])
def test_malformed_http_gets_json_from_nginx(payload, status):
    response = exchange(payload)
    assert response.split(b" ")[1] == status, response[:200]
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"application/json" in head
    assert json.loads(body)["title"]


def fasttext_cli_labels(ft_txt) -> list[str]:
    """fastText's own CLI on the labelled, normalised file: its predicted labels."""
    text = "".join(line.split(" ", 1)[1] + "\n" if " " in line else "\n"
                   for line in ft_txt.read_text(encoding="utf-8").splitlines())
    out = subprocess.run(["fasttext", "predict", str(REAL_MODEL), "-", "1"],
                         input=text, capture_output=True, text=True, check=True).stdout
    return [label.removeprefix("__label__") for label in out.split()]


def fasttext_test_precision(ft_txt) -> str:
    out = subprocess.run(["fasttext", "test", str(REAL_MODEL), str(ft_txt)],
                         capture_output=True, text=True, check=True).stdout
    return next(line.split()[1] for line in out.splitlines() if line.startswith("P@1"))


@pytest.mark.parametrize("name,published", ACCURACY.items())
def test_accuracy_over_http_equals_fasttext_test(name, published):
    with shared_file("data", f"{name}.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    session = requests.Session()
    served = []
    for _, title, body in rows:
        r = session.post(f"{BASE}/inferreview", data={"text": review_text(title, body)}, timeout=10)
        assert r.status_code == 200, r.text
        (label,) = r.json()
        served.append(label.split()[0])
    truth = [label for label, _, _ in rows]
    accuracy = sum(s == t for s, t in zip(served, truth, strict=True)) / len(rows)
    precision = fasttext_test_precision(shared_file("data", f"{name}.ft.txt"))
    assert precision == published
    assert f"{accuracy:.3f}" == precision
    # and review by review, the label fastText's CLI gives the normalised text
    assert served == fasttext_cli_labels(shared_file("data", f"{name}.ft.txt"))
    print(f"{name}: {len(rows)} reviews over HTTP, accuracy {accuracy:.4f} (fasttext test P@1 {precision})")


def test_fuzzing_from_the_openapi_document(local_stack, tmp_path):
    """schemathesis generates requests from /openapi.json (valid and invalid
    bodies, odd methods) and checks every answer: no 5xx, a documented status,
    content type, headers and body shape. Bounded by a case count and a fixed
    seed, so a failure reproduces; no worker may die on the way."""
    before = local_stack.pids()
    checks = ("not_a_server_error,status_code_conformance,content_type_conformance,"
              "response_headers_conformance,response_schema_conformance,unsupported_method")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run", f"{BASE}/openapi.json",
         "--checks", checks, "--max-examples", "100", "--seed", "20261125",
         "--request-timeout", "10", "--output-truncate", "true"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)  # its cache goes there
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failures" not in result.stdout.split("SUMMARY")[-1]
    assert local_stack.pids() == before


PUBLIC = ["/inferreview", "/v1/predict", "/v1/model", "/openapi.json", "/healthz"]


def test_the_public_routes_reach_the_workers():
    for path in PUBLIC:
        method = "POST" if path in ("/inferreview", "/v1/predict") else "GET"
        r = requests.request(method, BASE + path, json={"texts": ["ok"]} if path == "/v1/predict" else None,
                             data=None if path == "/v1/predict" else ({"text": "ok"} if method == "POST" else None),
                             timeout=5)
        assert r.status_code == 200, (path, r.text)
    # the normalised path is what nginx passes on: the batch's `//v1/predict` is /v1/predict
    assert requests.post(BASE + "//v1/predict", json={"texts": ["ok"]}, timeout=5).status_code == 200


@pytest.mark.parametrize("payload,status", [
    (b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", b"505"),
    (b"POST /inferreview HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", b"501"),
    (b"GET /_error/502 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"404"),
], ids=["505", "501", "internal error page"])
def test_nginx_own_errors_are_json(payload, status):
    response = exchange(payload)
    assert response.split(b" ")[1] == status, response[:200]
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"application/json" in head
    assert json.loads(body)["title"].startswith(status.decode())


def test_the_status_port_refuses_other_addresses_with_json(tmp_path):
    """A second nginx from the same config whose status port admits no loopback
    address: nginx's 403 there is JSON, like every other error of its own."""
    ports = [free_port(), free_port()]
    clients = nginxconf.settings()["NGINX_STATUS_CLIENTS"].split()
    assert "127.0.0.0/8" in clients
    nginxconf.render(tmp_path, ["127.0.0.1:8001"], **localstack.nginx_addresses("127.0.0.1"),
                     NGINX_PORT=ports[0], NGINX_STATUS_PORT=ports[1],
                     NGINX_STATUS_CLIENTS=" ".join(c for c in clients if c != "127.0.0.0/8"))
    (tmp_path / "tmp").mkdir()
    subprocess.run(["nginx", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf"), "-e", "stderr"], check=True)
    try:
        for path in ("/stub_status", "/healthz", "/metrics", "/upstreams", "/nope"):
            r = requests.get(f"http://127.0.0.1:{ports[1]}{path}", timeout=5)
            assert (r.status_code, r.headers["content-type"], r.json()) == (
                403, "application/json", {"title": "403 Forbidden"})
    finally:
        subprocess.run(["nginx", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf"), "-e", "stderr",
                        "-s", "quit"], check=True)


def test_nginx_logs_failures_only_buffered():
    """nginx's access log holds the 4xx and 5xx (buffered, flushed within 5 s)
    with nginx's errors in its log, and not the requests that succeeded."""
    log = ROOT / "run" / "logs" / "nginx.log"
    marker = f"logged-{time.monotonic_ns()}"
    assert requests.get(f"{BASE}/{marker}", timeout=5).status_code == 404
    assert requests.post(f"{BASE}/inferreview?{marker}=1", data={"text": "fine"}, timeout=5).status_code == 200
    wait_for(lambda: f"/{marker} " in log.read_text(), 8, f"nginx to log /{marker}", interval=0.2)
    lines = [line for line in log.read_text().splitlines() if marker in line]
    assert len(lines) == 1 and f'"GET /{marker} HTTP/1.1" 404 ' in lines[0], lines
