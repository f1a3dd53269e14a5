"""End to end on Docker Swarm: a single-node swarm on this machine, the
compose file deployed with `make swarm-deploy` (docker stack deploy), the
README's curl example on :9000, a rolling update of the workers under a
steady stream of requests with none failing, then the stack removed and the
swarm left."""

import json
import os
import socket
import time

import pytest
import requests

from .test_compose import WORKERS
from .test_compose import run as compose_run
from .traffic import BASE, under_load

STACK = "rrswarm"
ENV = {**os.environ, "WORKERS": str(WORKERS), "STACK": STACK}


def run(*cmd, timeout=600, check=True):
    return compose_run(*cmd, timeout=timeout, check=check, env=ENV)


def tasks(service: str) -> list[str]:
    return sorted(run("docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={STACK}_{service}").stdout.split())


def swarm_state() -> str:
    return run("docker", "info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


@pytest.fixture(scope="module", autouse=True)
def swarm():
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", 9000)) != 0, "port 9000 is already in use"
    assert swarm_state() == "inactive", "this machine is already in a swarm: the test would leave it"
    run("docker", "swarm", "init", "--advertise-addr", "127.0.0.1")
    try:
        run("make", "swarm-deploy")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{BASE}/readyz", timeout=2).status_code == 200 and len(tasks("worker")) == WORKERS:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(1)
        else:
            pytest.fail("the swarm stack did not answer /readyz on :9000: "
                        + run("docker", "service", "ls", check=False).stdout)
        yield
    finally:
        run("make", "swarm-rm", check=False)
        deadline = time.monotonic() + 60  # the stack's networks go after its tasks
        while time.monotonic() < deadline and STACK in run("docker", "network", "ls", check=False).stdout:
            time.sleep(1)
        run("docker", "swarm", "leave", "--force", check=False)
    assert swarm_state() == "inactive"


def test_the_readme_curl_example_on_the_swarm():
    out = run("curl", "-s", "-X", "POST", f"{BASE}/inferreview", "-d", "text=I love this product.").stdout
    ((label, p),) = json.loads(out).items()
    assert (label, f"{p:.6g}") == ("5 star", "0.884676")


def test_services_as_swarm_runs_them():
    worker = json.loads(run("docker", "service", "inspect", f"{STACK}_worker").stdout)[0]["Spec"]
    assert worker["Mode"]["Replicated"]["Replicas"] == WORKERS
    assert worker["EndpointSpec"]["Mode"] == "dnsrr"
    assert worker["UpdateConfig"]["Order"] == "start-first" and worker["UpdateConfig"]["Parallelism"] == 1
    assert worker["UpdateConfig"]["FailureAction"] == "rollback"
    # any: a worker that drained after a stray SIGTERM (exit 0) is restarted too
    assert worker["TaskTemplate"]["RestartPolicy"]["Condition"] == "any"
    assert worker["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"] == 256 << 20
    container = worker["TaskTemplate"]["ContainerSpec"]
    assert container["ReadOnly"] is True and container["CapabilityDrop"] == ["ALL"]
    nginx = json.loads(run("docker", "service", "inspect", f"{STACK}_nginx").stdout)[0]["Spec"]
    assert "Global" in nginx["Mode"]
    assert [p["PublishedPort"] for p in nginx["EndpointSpec"]["Ports"]] == [9000]


def test_rolling_update_under_load_loses_nothing():
    old = tasks("worker")
    results = under_load(
        lambda: run("docker", "service", "update", "--force", "--detach=false", f"{STACK}_worker"),
        seconds_after=2)
    new = tasks("worker")
    assert len(new) == WORKERS and not set(new) & set(old), (old, new)
    print(f"\nswarm rolling update of {WORKERS} workers: {len(results)} requests, none failed")
