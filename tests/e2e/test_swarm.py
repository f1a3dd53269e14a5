"""End to end on Docker Swarm: a single-node swarm on this machine, the
compose file deployed with `make swarm-deploy` (docker stack deploy), the
README's curl example on :9000, a rolling update of the workers under a
steady stream of requests with none failing, then the stack removed and the
swarm left."""

import contextlib
import json
import os

import pytest
from stacktools.ready import NotReady, answers, wait_for, wait_until_ready

from ..reference import CURL_LABEL, CURL_PROBABILITY, CURL_TEXT
from . import stacks
from .stacks import WORKERS, assert_port_free
from .traffic import BASE, readme_curl, under_load

STACK = "rrswarm"
ENV = {**os.environ, "WORKERS": str(WORKERS), "STACK": STACK}


def run(*cmd, timeout=600, check=True):
    return stacks.run(*cmd, timeout=timeout, check=check, env=ENV)


def tasks(service: str) -> list[str]:
    label = f"label=com.docker.swarm.service.name={STACK}_{service}"
    return sorted(run("docker", "ps", "-q", "--filter", label).stdout.split())


def swarm_state() -> str:
    return run("docker", "info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


@pytest.fixture(scope="module", autouse=True)
def swarm():
    assert_port_free()
    assert swarm_state() == "inactive", "this machine is already in a swarm: the test would leave it"
    run("docker", "swarm", "init", "--advertise-addr", "127.0.0.1")
    try:
        run("make", "swarm-deploy")

        def deployed():
            why, running = answers(f"{BASE}/readyz"), len(tasks("worker"))
            return None if why is None and running == WORKERS else \
                f"/readyz: {why or 'ok'}, {running} of {WORKERS} worker tasks"

        try:
            wait_until_ready(deployed, 120, interval=1, what="the swarm stack on :9000")
        except NotReady as exc:
            pytest.fail(f"{exc}\n" + run("docker", "service", "ls", check=False).stdout)
        yield
    finally:
        run("make", "swarm-rm", check=False)
        with contextlib.suppress(NotReady):  # the networks go after the tasks; leave --force takes the rest
            wait_for(lambda: STACK not in run("docker", "network", "ls", check=False).stdout, 60,
                     f"the networks of {STACK} to go", interval=1)
        run("docker", "swarm", "leave", "--force", check=False)
    assert swarm_state() == "inactive"


def test_the_readme_curl_example_on_the_swarm():
    assert readme_curl(CURL_TEXT) == (CURL_LABEL, CURL_PROBABILITY)


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
