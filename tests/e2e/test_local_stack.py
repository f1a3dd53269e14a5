"""End to end without Docker: `make local-up` (real supervisord, nginx and bjoern workers,
the real model), real HTTP on :9000, `make local-down`."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from app.config import Limits
from app.normalize import review_text

from ..bad_inputs import BAD_INPUTS, oversized
from ..paths import ROOT, shared_file
from .traffic import BASE, predictions, spread_over, under_load

WORKERS = 2


def make(*args):
    return subprocess.run(["make", *args], cwd=ROOT, capture_output=True, text=True, timeout=180)


def supervisorctl(*args):
    return subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c",
                           str(ROOT / "run" / "supervisord.conf"), *args],
                          capture_output=True, text=True, timeout=60).stdout


@pytest.fixture(scope="module", autouse=True)
def stack():
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", 9000)) != 0, "port 9000 is already in use: stop what listens there"
    up = make("local-up", f"WORKERS={WORKERS}")
    assert up.returncode == 0, up.stdout + up.stderr
    yield
    down = make("local-down")
    assert down.returncode == 0, down.stdout + down.stderr
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", 9000)) != 0, "nginx still listens after local-down"


def worker_pids() -> dict[str, int]:
    pids = {}
    for n in range(WORKERS):
        name = f"worker:worker-{8001 + n}"
        pids[name] = int(supervisorctl("pid", name).strip())
    return pids


def test_the_readme_curl_example():
    out = subprocess.run(["curl", "-s", "-X", "POST", f"{BASE}/inferreview", "-d", "text=I love this product."],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    ((label, p),) = json.loads(out).items()
    assert (label, f"{p:.6g}") == ("5 star", "0.884676")


def test_json_api_through_nginx():
    session = requests.Session()
    r = session.post(f"{BASE}/v1/predict", json={"texts": ["it was ok", {"title": "Junk", "body": "broke"}], "k": 2})
    assert r.status_code == 200
    predictions = r.json()["predictions"]
    assert [len(p) for p in predictions] == [2, 2]
    assert predictions[0][0]["label"] == "3 star"
    single = session.post(f"{BASE}/inferreview", json={"title": "Junk", "body": "broke"}).json()
    assert single == {predictions[1][0]["label"]: predictions[1][0]["probability"]}
    assert session.get(f"{BASE}/healthz").json() == {"status": "ok"}
    # /readyz through nginx: the service is ready (a worker answered), not a worker's state
    assert session.get(f"{BASE}/readyz").json() == {"status": "ok"}
    assert session.get(f"{BASE}/v1/model").json()["sha256"].startswith("814f71e0")


@pytest.mark.parametrize("name,method,path,headers,body,status",
                         BAD_INPUTS + oversized(Limits()), ids=lambda v: v if isinstance(v, str) else "")
def test_bad_input_through_nginx(name, method, path, headers, body, status):
    r = requests.request(method, BASE + path, headers=headers, data=body, timeout=10)
    assert r.status_code == status, (name, r.text)
    assert r.headers["content-type"].startswith("application/json")
    assert "title" in r.json()


def raw_http(payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", 9000), timeout=10) as conn:
        conn.sendall(payload)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        return data


@pytest.mark.parametrize("payload,status", [
    (b"NOT HTTP AT ALL\r\n\r\n", b"400"),
    (b"POST /inferreview HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", b"400"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", b"431"),
    (b"POST /inferreview HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
     b"Content-Length: 2000000\r\nConnection: close\r\n\r\n", b"413"),
], ids=["garbage", "bad content-length", "huge header", "10 MB-class body"])
def test_malformed_http_gets_json_from_nginx(payload, status):
    response = raw_http(payload)
    assert response.split(b" ")[1] == status, response[:200]
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"application/json" in head
    assert json.loads(body)["title"]


def test_huge_body_is_refused_without_reaching_a_worker():
    r = requests.post(f"{BASE}/inferreview", data=b"text=" + b"a" * (10 << 20),
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    assert r.status_code == 413
    assert r.json()["title"].startswith("413")


def worker_predictions(port: int) -> int:
    return predictions(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)


def test_nginx_spreads_requests_over_every_worker():
    served = spread_over(lambda: [worker_predictions(8001 + n) for n in range(WORKERS)])
    assert sum(served) == 400
    assert all(n >= 400 / WORKERS * 0.5 for n in served), served


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill -9", "SIGTERM"])
def test_worker_stopped_while_requests_flow_loses_nothing(sig):
    before = worker_pids()
    victim_name, victim = next(iter(before.items()))
    under_load(lambda: os.kill(victim, sig), seconds_after=2.5)
    # supervisord brings the worker back by itself
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = supervisorctl("status", victim_name)
        if "RUNNING" in status and worker_pids()[victim_name] != victim:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"{victim_name} did not come back: {status}")
    port = 8001 + list(before).index(victim_name)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{victim_name} restarted but is not ready")


def fasttext_cli_labels(ft_txt) -> list[str]:
    """fastText's own CLI on the labelled, normalised file: its predicted labels."""
    text = "".join(line.split(" ", 1)[1] + "\n" if " " in line else "\n"
                   for line in ft_txt.read_text(encoding="utf-8").splitlines())
    out = subprocess.run(["fasttext", "predict", str(ROOT / "models" / "amazon_review_full.ftz"), "-", "1"],
                         input=text, capture_output=True, text=True, check=True).stdout
    return [label.removeprefix("__label__") for label in out.split()]


def fasttext_test_precision(ft_txt) -> str:
    out = subprocess.run(["fasttext", "test", str(ROOT / "models" / "amazon_review_full.ftz"), str(ft_txt)],
                         capture_output=True, text=True, check=True).stdout
    return next(line.split()[1] for line in out.splitlines() if line.startswith("P@1"))


@pytest.mark.parametrize("name,published", [("marc_en_test", "0.601"),
                                            ("amazon_review_full_test_first999_notitle", "0.563")])
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
    accuracy = sum(s == t for s, t in zip(served, truth)) / len(rows)
    precision = fasttext_test_precision(shared_file("data", f"{name}.ft.txt"))
    assert precision == published
    assert f"{accuracy:.3f}" == precision
    # and review by review, the label fastText's CLI gives the normalised text
    assert served == fasttext_cli_labels(shared_file("data", f"{name}.ft.txt"))
    print(f"{name}: {len(rows)} reviews over HTTP, accuracy {accuracy:.4f} (fasttext test P@1 {precision})")


def test_fuzzing_from_the_openapi_document(tmp_path):
    """schemathesis generates requests from /openapi.json (valid and invalid
    bodies, odd methods) and checks every answer: no 5xx, a documented status,
    content type, headers and body shape. Bounded by a case count and a fixed
    seed, so a failure reproduces; no worker may die on the way."""
    before = worker_pids()
    checks = ("not_a_server_error,status_code_conformance,content_type_conformance,"
              "response_headers_conformance,response_schema_conformance,unsupported_method")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run", f"{BASE}/openapi.json",
         "--checks", checks, "--max-examples", "100", "--seed", "20261125",
         "--request-timeout", "10", "--output-truncate", "true"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)  # its cache goes there
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failures" not in result.stdout.split("SUMMARY")[-1]
    assert worker_pids() == before


def test_floors_ceiling_measures_each_layer_and_leaves_nothing_running(tmp_path):
    """loadtest/floors.py beside the local stack: the bare and Falcon-only workers
    and the two extra nginx start, wrk drives each layer flat out, and all of
    them are gone afterwards (the product's stack stays up)."""
    ports = (9002, 9004, 9006, 8101, 8102, 8111, 8112)
    proc = subprocess.run([sys.executable, "-m", "loadtest.floors", "--ceiling",
                           "--results", str(tmp_path), "--duration", "2s", "--rounds", "1",
                           "--workers", str(WORKERS)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split("|") for line in (tmp_path / "ceiling.md").read_text().splitlines()
            if line.startswith("| 1 |")]
    rates = {row[2].strip(): float(row[3]) for row in rows}
    assert set(rates) == {"product", "falcon", "bare", "return"}, rates
    assert all(rate > 100 for rate in rates.values()), rates
    for row in rows:  # CPU read for the generator and for each layer's processes
        parts = dict(part.strip().rsplit(" ", 1) for part in row[4].split(","))
        assert "wrk" in parts and "nginx" in parts, row
        assert ("workers" in parts) == (row[2].strip() != "return"), row
    for port in ports:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open after floors.py"
    assert requests.get(f"{BASE}/readyz", timeout=5).status_code == 200


def listening(port: int) -> list[str]:
    """The local addresses of the TCP sockets listening on `port` (IPv4 and IPv6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(addr)
                if len(raw) == 4:
                    found.append(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    found.append(socket.inet_ntop(socket.AF_INET6, words))
    return found


def test_local_mode_listens_on_loopback_only():
    """:9000 on 127.0.0.1 (PUBLISH_ADDR widens it), the status port on 127.0.0.1 only."""
    assert listening(9000) == ["127.0.0.1"]
    assert listening(9001) == ["127.0.0.1"]
    assert requests.get("http://127.0.0.1:9001/stub_status", timeout=5).text.startswith("Active connections")
    assert requests.get("http://127.0.0.1:9001/healthz", timeout=5).json() == {"status": "ok"}


PUBLIC = ["/inferreview", "/v1/predict", "/v1/model", "/openapi.json", "/healthz"]


@pytest.mark.parametrize("path", [
    "/metrics", "//metrics", "/%6detrics", "/%6D%65trics", "/metrics/", "/./metrics", "/healthz/../metrics",
    "/metrics?x=1", "/METRICS", "/readyz/", "/nope", "/_error/400", "/_error/502", "/v1", "/v1/",
    "/inferreview/extra", "/v1/model/../../metrics",
])
def test_internal_and_unknown_paths_are_a_json_404_from_nginx(path):
    before = [worker_requests(8001 + n) for n in range(WORKERS)]
    for method in ("GET", "POST"):
        r = requests.request(method, BASE + path, data=b"text=hi", timeout=5,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 404, (method, path, r.text)
        assert r.headers["content-type"] == "application/json" and r.json() == {"title": "404 Not Found"}
        assert "worker_" not in r.text
    # nginx answered: no worker saw the request (each counts every request it receives)
    assert [worker_requests(8001 + n) for n in range(WORKERS)] == [b + 1 for b in before]


def worker_requests(port: int) -> int:
    """Requests a worker received, read on the private side (each read counts itself)."""
    page = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return int(next(line.split()[1] for line in page.splitlines() if line.startswith("worker_requests_total ")))


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
    response = raw_http(payload)
    assert response.split(b" ")[1] == status, response[:200]
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"application/json" in head
    assert json.loads(body)["title"].startswith(status.decode())


def test_the_status_port_refuses_other_addresses_with_json(tmp_path):
    """A second nginx from the same config whose status port admits no loopback
    address: nginx's 403 there is JSON, like every other error of its own."""
    from docker.localstack import nginx_conf

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    conf = nginx_conf((ROOT / "nginx" / "nginx.conf").read_text(), "127.0.0.1")
    conf = conf.replace("listen 127.0.0.1:9000 ", f"listen 127.0.0.1:{ports[0]} ")
    conf = conf.replace("listen 127.0.0.1:9001;", f"listen 127.0.0.1:{ports[1]};")
    assert conf.count("127.0.0.0/8 1;") == 1
    conf = conf.replace("127.0.0.0/8 1;", "")
    (tmp_path / "tmp").mkdir()
    (tmp_path / "nginx.conf").write_text(conf)
    (tmp_path / "upstream.conf").write_text(subprocess.run(
        [str(ROOT / "nginx" / "render-upstream.sh"), "127.0.0.1:8001"], capture_output=True, text=True,
        check=True).stdout)
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
    deadline = time.monotonic() + 8
    while f"/{marker} " not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    lines = [line for line in log.read_text().splitlines() if marker in line]
    assert len(lines) == 1 and f'"GET /{marker} HTTP/1.1" 404 ' in lines[0], lines
