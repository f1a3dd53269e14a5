"""A real bjoern worker process: graceful drain on SIGTERM/SIGINT with keep-alive connections open."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from stacktools.ready import wait_for, wait_until_ready

from .paths import REAL_MODEL, ROOT
from .rawhttp import free_port, read_response

REQUEST = (b"POST /inferreview HTTP/1.1\r\nHost: w\r\nContent-Type: application/x-www-form-urlencoded\r\n"
           b"Content-Length: 14\r\n\r\ntext=I+love+it")


@pytest.fixture
def start_worker(tiny_model_path):
    started = []

    def start(**env):
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=ROOT,
            env={**os.environ, "PORT": str(port), "MODEL_PATH": str(tiny_model_path), **env},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        started.append(proc)
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", 20, process=proc, interval=0.05)
        return proc, port

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def keep_alive_connection(port) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.sendall(REQUEST)
    assert read_response(conn).startswith(b"HTTP/1.1 200")
    return conn


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_drains_and_exits_despite_idle_keep_alive_connections(start_worker, sig):
    proc, port = start_worker(DRAIN_QUIET="0.5", SHUTDOWN_TIMEOUT="10")
    idle = [keep_alive_connection(port) for _ in range(4)]
    busy = keep_alive_connection(port)
    sent = time.monotonic()
    proc.send_signal(sig)
    time.sleep(0.2)  # the handler runs within bjoern's 0.1 s signal check
    # New connections are refused at once ...
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    # ... while a request on an open connection is still answered, and told to close.
    busy.sendall(REQUEST)
    response = read_response(busy)
    assert response.startswith(b"HTTP/1.1 200"), response
    assert b"Connection: close" in response
    assert proc.wait(timeout=5) == 0
    elapsed = time.monotonic() - sent
    assert elapsed < 3, f"took {elapsed:.1f}s to drain"
    output = proc.stdout.read()
    assert "draining" in output and "drained" in output, output
    for conn in idle:
        conn.close()


def test_shutdown_timeout_bounds_a_drain_that_never_goes_quiet(start_worker):
    proc, port = start_worker(DRAIN_QUIET="5", SHUTDOWN_TIMEOUT="1")
    conns = [keep_alive_connection(port) for _ in range(20)]
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    # One request every 0.1 s keeps the worker from ever being quiet for 5 s.
    for conn in conns:
        if proc.poll() is not None:
            break
        try:
            conn.sendall(REQUEST)
            read_response(conn)
        except OSError:
            break
        time.sleep(0.1)
    assert proc.wait(timeout=5) == 0
    assert time.monotonic() - sent < 2.5
    assert "shutdown timeout of 1.0s reached" in proc.stdout.read()


def test_readyz_reports_draining(start_worker):
    proc, port = start_worker(DRAIN_QUIET="2")
    conn = keep_alive_connection(port)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    conn.sendall(b"GET /readyz HTTP/1.1\r\nHost: w\r\n\r\n")
    response = read_response(conn)
    assert response.startswith(b"HTTP/1.1 503"), response
    assert b'"draining"' in response
    assert proc.wait(timeout=5) == 0


def test_a_socket_directory_gets_one_socket_per_host_removed_when_draining(tiny_model_path, tmp_path):
    """HOST=unix:DIR/ (the compose stack): the worker listens on DIR/<hostname>.sock,
    mode 0660 for nginx in its group, and removes it when it drains, so nginx's
    entrypoint, which lists DIR, stops routing to it."""
    path = tmp_path / f"{socket.gethostname()}.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "app"], cwd=ROOT,
        env={**os.environ, "HOST": f"unix:{tmp_path}/", "MODEL_PATH": str(tiny_model_path), "DRAIN_QUIET": "0.2"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for(path.is_socket, 20, f"the worker's socket {path}", process=proc, interval=0.05)
        assert path.stat().st_mode & 0o777 == 0o660
        assert os.listdir(tmp_path) == [path.name]
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(5)
            conn.connect(str(path))
            conn.sendall(REQUEST)
            assert read_response(conn).startswith(b"HTTP/1.1 200")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not path.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.parametrize("quiet,timeout", [("0.01", "10"), ("5", "0.05")], ids=["quiet period", "timeout"])
def test_a_request_in_flight_is_never_cut_short(start_worker, quiet, timeout):
    """SIGTERM arrives while a heavy batch (real model, 52 texts of 20 000 dots:
    0.1-0.3 s) is being computed. The drain's timer fires during it, past both
    a quiet period counted from the request's start and the shutdown timeout;
    the worker still answers it whole and exits only afterwards."""
    proc, port = start_worker(MODEL_PATH=str(REAL_MODEL), DRAIN_QUIET=quiet, SHUTDOWN_TIMEOUT=timeout)
    body = json.dumps({"texts": ["." * 20000] * 52}).encode()
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: w\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
    time.sleep(0.03)  # the body is read and the batch being computed
    proc.send_signal(signal.SIGTERM)
    response = read_response(conn)
    assert response.startswith(b"HTTP/1.1 200"), (response[:200], proc.stdout.read() if proc.poll() is not None else "")
    assert len(json.loads(response.partition(b"\r\n\r\n")[2])["predictions"]) == 52
    assert proc.wait(timeout=15) == 0
