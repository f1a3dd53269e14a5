"""docker/stacktools/ready.py, the one poll-until-ready loop, against a real HTTP server and real processes."""

import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler

import pytest
from stacktools.ready import NotReady, wait_for, wait_until_ready

from .paths import ROOT
from .rawhttp import stub_server


class _Warming(BaseHTTPRequestHandler):
    """503 for the first `refusals` requests, then 200: a server that is starting."""

    refusals = 0

    def do_GET(self):
        type(self).refusals -= 1
        self.send_response(503 if type(self).refusals >= 0 else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    with stub_server(_Warming) as url:
        yield url


def test_returns_once_the_server_answers_200(server):
    _Warming.refusals = 3
    wait_until_ready([server + "/a", server + "/b"], timeout=30, interval=0.01)
    assert _Warming.refusals < 0


def test_says_what_it_last_heard_when_time_is_up(server):
    _Warming.refusals = 10**6
    with pytest.raises(NotReady, match=r"not ready after 0.2 s: .*/readyz: HTTP 503"):
        wait_until_ready(server + "/readyz", timeout=0.2)


def test_a_dead_process_ends_the_wait_with_its_output():
    proc = subprocess.Popen([sys.executable, "-c", "print('cannot bind'); raise SystemExit(3)"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with pytest.raises(NotReady, match=r"(?s)exited with code 3 before it was ready.*cannot bind"):
        wait_until_ready("http://127.0.0.1:1/readyz", timeout=600, process=proc)


def test_a_check_returns_why_not_and_wait_for_a_predicate():
    answers = iter(["starting", "starting", None])
    wait_until_ready(lambda: next(answers), timeout=30, interval=0.01)
    values = iter([0, "", "there"])
    assert wait_for(lambda: next(values), timeout=30, what="a value", interval=0.01) == "there"
    with pytest.raises(NotReady, match=r"gave up waiting for nothing after 0\.1 s"):
        wait_for(lambda: None, timeout=0.1, what="nothing")


def test_the_command_make_up_runs_with_the_system_python(server):
    """`PYTHONPATH=docker python3 -m stacktools.ready URL` from the root, as
    `make up` runs it (no venv: the standard library only)."""
    _Warming.refusals = 2
    env = {**os.environ, "PYTHONPATH": "docker"}
    ok = subprocess.run(["python3", "-m", "stacktools.ready", server + "/readyz", "--timeout", "30"],
                        cwd=ROOT, capture_output=True, text=True, env=env)
    assert (ok.returncode, ok.stderr) == (0, "")
    refused = subprocess.run(["python3", "-m", "stacktools.ready", "http://127.0.0.1:1/readyz", "--timeout", "0.5"],
                             cwd=ROOT, capture_output=True, text=True, env=env)
    assert refused.returncode == 1 and "not ready after 0.5 s" in refused.stderr, refused.stderr
