"""The two stacks the end-to-end tests run against, brought up and down as a user
does (`make local-up` / `make up`), and what the tests ask of their workers. Both
serve :9000, so never two at once (tests/e2e/conftest.py's fixtures see to it)."""

import contextlib
import ipaddress
import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests
from stacktools import localstack
from stacktools.ready import wait_for, wait_until_ready

from .. import metrics
from ..paths import ROOT

WORKERS = 2
PROJECT = "reviewrating"  # docker-compose.yml's name
ENV = {**os.environ, "WORKERS": str(WORKERS)}
# The product needs no Rust: the stacks come up (`make up`, `make local-up`)
# with cargo and rustc off the PATH, and in cargo's place one that fails and
# leaves RUST_CALLED behind, so a build that something ignored still shows.
# (No rustc stands in: pip asks `rustc --version` for its user agent, and
# does without it.)
NO_RUST = Path(tempfile.mkdtemp(prefix="no-rust-"))
RUST_CALLED = NO_RUST / "called"
(NO_RUST / "cargo").write_text(f'#!/bin/sh\necho "$0 $*" >> {RUST_CALLED}\n'
                               'echo "cargo: the product must not need it" >&2\nexit 97\n')
(NO_RUST / "cargo").chmod(0o755)
NO_RUST_ENV = {**ENV, "PATH": os.pathsep.join(
    [str(NO_RUST)] + [d for d in ENV["PATH"].split(os.pathsep)
                      if d and not any(os.access(os.path.join(d, t), os.X_OK) for t in ("cargo", "rustc"))])}


def run(*cmd, timeout=900, check=True, env=None) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env or ENV)
    if check:
        assert result.returncode == 0, f"{' '.join(cmd)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def assert_port_free(port: int = 9000) -> None:
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, \
            f"port {port} is already in use: stop what listens there (`make local-down`, `make down`?)"


LISTEN, ESTABLISHED = "0A", "01"  # the kernel's TCP states, as /proc/net/tcp writes them


def tcp_sockets():
    """This machine's TCP sockets as (local address, local port, state), from
    /proc/net/tcp and tcp6 (addresses in the kernel's byte order, words reversed)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                address, hexport = fields[1].split(":")
                raw = bytes.fromhex(address)
                local = ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)))
                yield str(local), int(hexport, 16), fields[3]


def listening(port: int) -> list[str]:
    """The addresses on this machine that listen on TCP `port`."""
    return [address for address, local_port, state in tcp_sockets() if local_port == port and state == LISTEN]




def containers(service: str) -> list[str]:
    out = run("docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
              "--filter", f"label=com.docker.compose.service={service}").stdout
    return sorted(out.split())


def inspect(container: str) -> dict:
    return json.loads(run("docker", "inspect", container).stdout)[0]


def wait_healthy(container: str, timeout: float = 60, not_pid: int | None = None) -> dict:
    """Until Docker's healthcheck calls the container healthy (and its process is not `not_pid`)."""
    state = {}

    def healthy():
        state.clear()
        state.update(inspect(container)["State"])
        health = state.get("Health", {}).get("Status")
        if health == "healthy" and state["Pid"] not in (0, not_pid):
            return None
        return f"{state['Status']}, health {health}, pid {state['Pid']}"

    wait_until_ready(healthy, timeout, interval=0.5, what=f"container {container[:12]}")
    return state


class Stack:
    """What the tests ask of a running stack's workers."""

    name = ""

    def workers(self) -> list[str]:
        raise NotImplementedError

    def pid(self, worker: str) -> int:
        raise NotImplementedError

    def metrics(self, worker: str) -> str:
        """The worker's /metrics page, read on its private side (nginx refuses /metrics)."""
        raise NotImplementedError

    def wait_back(self, worker: str, old_pid: int) -> None:
        """Until `worker` runs again as a new process and is ready."""
        raise NotImplementedError

    def nginx_log(self) -> str:
        """What nginx wrote to its log: its errors and the failures' access log."""
        raise NotImplementedError

    def pids(self) -> dict[str, int]:
        return {w: self.pid(w) for w in self.workers()}

    def predictions(self) -> list[int]:
        """Predictions each worker served (nginx's and Docker's probes do not count)."""
        return [metrics.total(self.metrics(w), "worker_predictions_total") for w in self.workers()]

    def refusals(self) -> list[dict[str, int]]:
        """Each worker's answers other than 200 (the probes and the /metrics reads are 200s)."""
        return [{code: n for code, n in metrics.by_label(self.metrics(w), "worker_http_requests_total", "code").items()
                 if code != "200"} for w in self.workers()]


class LocalStack(Stack):
    """`make local-up`: supervisord runs the workers on 127.0.0.1:8001... and nginx."""

    name = "local"

    def workers(self) -> list[str]:
        return [f"worker:worker-{8001 + n}" for n in range(WORKERS)]

    @staticmethod
    def port(worker: str) -> int:
        return int(worker.rsplit("-", 1)[1])

    @staticmethod
    def supervisorctl(*args) -> str:
        return subprocess.run(localstack.supervisorctl_command(*args), cwd=ROOT,
                              capture_output=True, text=True, timeout=60).stdout

    def pid(self, worker: str) -> int:
        return int(self.supervisorctl("pid", worker).strip())

    @staticmethod
    def nginx_processes() -> int:
        """nginx's worker processes (worker_processes auto: one per core), each
        with its own pool of keep-alive connections to the workers."""
        master = int((localstack.run_dir() / "nginx" / "nginx.pid").read_text())
        return len(open(f"/proc/{master}/task/{master}/children").read().split())

    def metrics(self, worker: str) -> str:
        return requests.get(f"http://127.0.0.1:{self.port(worker)}/metrics", timeout=5).text

    def nginx_log(self) -> str:
        return (localstack.run_dir() / "logs" / "nginx.log").read_text(errors="replace")

    def wait_back(self, worker: str, old_pid: int) -> None:
        # supervisord brings the worker back by itself
        wait_for(lambda: "RUNNING" in self.supervisorctl("status", worker) and self.pid(worker) != old_pid,
                 20, f"supervisord to restart {worker}", interval=0.2)
        wait_until_ready(f"http://127.0.0.1:{self.port(worker)}/readyz", 10)


class ComposeStack(Stack):
    """`make up`: a container a worker (no network: a unix socket in a shared volume) and nginx."""

    name = "compose"
    made_at = 0.0  # when `make up` began (time.time())

    def workers(self) -> list[str]:
        return containers("worker")

    def pid(self, worker: str) -> int:
        return inspect(worker)["State"]["Pid"]

    def metrics(self, worker: str) -> str:
        # The worker has no network: its /metrics through its own unix socket (app/server.py names it);
        # the page only, without the reply's head.
        return run("docker", "exec", worker, "python", "-c",
                   "import socket; s = socket.socket(socket.AF_UNIX); "
                   "s.connect(f'/run/workers/{socket.gethostname()}.sock'); "
                   "s.sendall(b'GET /metrics HTTP/1.0\\r\\n\\r\\n'); "
                   "reply = b''.join(iter(lambda: s.recv(65536), b'')); "
                   "print(reply.partition(b'\\r\\n\\r\\n')[2].decode())").stdout

    def nginx_log(self) -> str:
        (nginx,) = containers("nginx")
        logs = run("docker", "logs", nginx)
        return logs.stdout + logs.stderr

    def wait_back(self, worker: str, old_pid: int) -> None:
        # restart: unless-stopped brings it back, and its healthcheck says when it is ready
        wait_healthy(worker, not_pid=old_pid)


@contextlib.contextmanager
def local_stack():
    assert_port_free()
    up = run("make", "local-up", f"WORKERS={WORKERS}", timeout=180, check=False, env=NO_RUST_ENV)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield LocalStack()
    finally:
        down = run("make", "local-down", timeout=180, check=False)
        assert down.returncode == 0, down.stdout + down.stderr
        assert listening(9000) == [], "nginx still listens after local-down"


@contextlib.contextmanager
def compose_stack():
    assert_port_free()
    try:
        stack = ComposeStack()
        stack.made_at = time.time()
        run("make", "up", f"WORKERS={WORKERS}", env=NO_RUST_ENV)
        yield stack
    finally:
        run("make", "down")


STACKS = {"local": local_stack, "compose": compose_stack}
