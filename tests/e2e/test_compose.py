"""End to end with Docker Compose, what only the compose stack shows: `make up`
(images built locally, no registry), real containers, real HTTP on :9000.
The checks every stack must pass are in test_smoke.py."""

import os
import re
import time
from datetime import datetime

import pytest
import requests

from .. import metrics
from ..paths import ROOT
from ..reference import CURL_LABEL, CURL_TEXT
from . import stacks
from .stacks import WORKERS, containers, inspect, run, wait_healthy
from .traffic import BASE, under_load

pytestmark = pytest.mark.usefixtures("compose_stack")

HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # Debian's, as the README names it


def test_make_up_needs_no_rust_and_builds_nothing_of_the_load_test(compose_stack):
    """The fixture's `make up` ran with cargo and rustc off the PATH (a cargo
    that fails in their place, stacks.NO_RUST_ENV): it never called them, and
    it built none of the load test's images (the generator's, the peers')."""
    assert not stacks.RUST_CALLED.exists(), stacks.RUST_CALLED.read_text()
    for image in ("reviewrating-wrk2", "reviewrating-peers", "reviewrating-rust-peer"):
        found = run("docker", "image", "inspect", "--format", "{{.Created}}", image, check=False)
        if found.returncode == 0:  # made earlier, by a load test
            created = datetime.fromisoformat(found.stdout.strip().split(".")[0].rstrip("Z") + "+00:00")
            assert created.timestamp() < compose_stack.made_at, (image, created)


def test_one_worker_container_per_requested_worker_and_only_nginx_listens():
    """nginx shares the host's network (on 127.0.0.1 only: test_smoke.py); no
    docker-proxy stands in front of it; workers have no network at all, only
    their unix sockets in a volume nginx mounts."""
    workers, proxies = containers("worker"), containers("nginx")
    assert len(workers) == WORKERS and len(proxies) == 1
    for c in workers:
        assert inspect(c)["HostConfig"]["NetworkMode"] == "none"
        assert inspect(c)["NetworkSettings"]["Ports"] == {}, "a worker publishes a port"
    assert inspect(proxies[0])["HostConfig"]["NetworkMode"] == "host"
    assert "docker-proxy" not in run("ps", "-eo", "comm").stdout
    sockets = run("docker", "exec", proxies[0], "sh", "-c", "stat -c %a /run/workers; ls /run/workers").stdout.split()
    assert sockets[0] == "770"  # the workers and their group (nginx), no one else
    assert sorted(sockets[1:]) == sorted(f"{inspect(c)['Config']['Hostname']}.sock" for c in workers)


def test_containers_are_hardened():
    for c in containers("worker") + containers("nginx"):
        info = inspect(c)
        host = info["HostConfig"]
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges:true" in host["SecurityOpt"]
        # unless-stopped: a worker that drained after a stray SIGTERM (exit 0) comes back
        assert host["RestartPolicy"]["Name"] == "unless-stopped"
        assert host["Memory"] == 256 << 20 and host["PidsLimit"] in (32, 256), (host["Memory"], host["PidsLimit"])
        assert info["Config"]["User"] not in ("", "root", "0")
        status = run("docker", "exec", c, "sh", "-c", "id -u; grep CapEff /proc/1/status").stdout.split()
        assert status[0] != "0" and status[-1] == "0000000000000000"
    worker = containers("worker")[0]
    assert run("docker", "exec", worker, "touch", "/srv/x", check=False).returncode != 0
    # no network: workers reach nothing, and nothing reaches them but through their socket
    interfaces = run("docker", "exec", worker, "cat", "/proc/net/dev").stdout.splitlines()[2:]
    assert [line.split(":")[0].strip() for line in interfaces] == ["lo"]


@pytest.mark.parametrize("image", ["reviewrating-worker:latest", "reviewrating-nginx:latest"])
def test_images_carry_security_updates_and_no_apt_proxy(image):
    """Built with Debian's security updates applied (apt-get upgrade over the
    base image: nothing left to upgrade) and no apt proxy setting of the
    build machine inside."""
    script = ("grep -rils proxy /etc/apt/apt.conf* || true; apt-get update -qq >/dev/null 2>&1 && "
              "apt-get -s upgrade | grep -c '^Inst' || true")
    out = run("docker", "run", "--rm", "--user", "0", "--entrypoint", "sh", image, "-c", script).stdout.split()
    assert out == ["0"], out


def test_nginx_reports_upstream_health():
    """The status port (9001, never published): each worker nginx routes to,
    with whether it answered /readyz at the last probe. The workers' own
    metrics are read on their sockets, not through :9000."""
    nginx = containers("nginx")[0]
    workers = containers("worker")
    for c in workers:  # on each worker's socket, from nginx's side of the shared volume
        sock = f"/run/workers/{inspect(c)['Config']['Hostname']}.sock"
        page = run("docker", "exec", nginx, "curl", "-fsS", "--unix-socket", sock, "http://worker/metrics").stdout
        assert "worker_requests_total" in page
        assert f"unix:{sock}" in run("docker", "exec", nginx, "curl", "-fsS", "http://127.0.0.1:9001/upstreams").stdout
    page = run("docker", "exec", nginx, "curl", "-fsS", "http://127.0.0.1:9001/metrics").stdout
    assert metrics.value(page, "nginx_upstream_workers") == WORKERS
    up = metrics.by_label(page, "nginx_upstream_up", "address")
    assert len(up) == WORKERS and set(up.values()) == {1}, page


def test_nginx_hides_its_version():
    for r in (requests.get(f"{BASE}/healthz"), requests.request("TRACE", f"{BASE}/healthz")):
        assert r.headers["Server"] == "nginx", r.headers
    assert requests.request("TRACE", f"{BASE}/healthz").json()["title"].startswith("405")


def test_docker_stop_drains_a_worker_under_load():
    victim = containers("worker")[-1]
    stopped = {}

    def stop():
        t = time.monotonic()
        run("docker", "stop", victim)
        stopped["seconds"] = time.monotonic() - t

    under_load(stop, seconds_after=1)
    state = inspect(victim)["State"]
    assert state["ExitCode"] == 0, state  # drained and exited by itself, not killed
    assert stopped["seconds"] < 10
    run("docker", "start", victim)
    wait_healthy(victim)


def test_rollout_replaces_every_worker_under_load_losing_nothing():
    """`make rollout` while four clients send requests non-stop: every
    worker container is replaced, one at a time, and no request fails."""
    old = containers("worker")
    results = under_load(lambda: run("make", "rollout", timeout=300), seconds_after=1)
    new = containers("worker")
    assert len(new) == WORKERS and not set(new) & set(old), (old, new)
    for c in new:
        assert inspect(c)["State"]["Health"]["Status"] == "healthy"
    print(f"\nrollout of {WORKERS} workers: {len(results)} requests, none failed")


def test_plain_docker_compose_up_build_works():
    """The design's way in, without make: `docker compose up --build` (the base
    image is there; the host's CA bundle lent as the README says, where it has
    one), with no Rust on the PATH."""
    run("docker", "compose", "down")
    env = dict(stacks.NO_RUST_ENV)
    if os.path.isfile(HOST_CA_BUNDLE):
        env["BUILD_CA_BUNDLE"] = HOST_CA_BUNDLE
    run("docker", "compose", "up", "--build", "--detach", "--wait", env=env)
    r = requests.post(f"{BASE}/inferreview", data={"text": CURL_TEXT})
    assert r.status_code == 200 and list(r.json()) == [CURL_LABEL]
    assert not stacks.RUST_CALLED.exists(), stacks.RUST_CALLED.read_text()


def test_the_worker_image_holds_exactly_the_locked_packages():
    """What goes into the image is what was committed: requirements.txt's
    pins (installed by sha256), app/native built from this tree, and not the
    build tools (setuptools, pybind11), which stay in the builder stage."""
    frozen = run("docker", "run", "--rm", "--entrypoint", "pip", "reviewrating-worker:latest",
                 "freeze", "--all").stdout.splitlines()
    installed = {line.split("==")[0].split(" @ ")[0].lower(): line for line in frozen}
    locked = {name: f"{name}=={version}" for name, version in
              re.findall(r"^([A-Za-z0-9._-]+)==(\S+) ", (ROOT / "requirements.txt").read_text(), re.M)}
    assert installed.pop("reviewrating-native").startswith("reviewrating-native @ file:")
    installed.pop("pip")  # the venv's own
    assert installed == locked
