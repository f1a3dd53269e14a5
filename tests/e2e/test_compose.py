"""End to end with Docker Compose: `make up` (images built locally, no registry),
real containers, real HTTP on :9000, `make down`."""

import ipaddress
import json
import os
import signal
import socket
import subprocess
import time

import pytest
import requests

from ..paths import ROOT
from .traffic import BASE, predictions, spread_over, under_load

WORKERS = 2
PROJECT = "reviewrating"
ENV = {**os.environ, "WORKERS": str(WORKERS)}


def run(*cmd, timeout=900, check=True, env=None):
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env or ENV)
    if check:
        assert result.returncode == 0, f"{' '.join(cmd)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def containers(service: str) -> list[str]:
    out = run("docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
              "--filter", f"label=com.docker.compose.service={service}").stdout
    return sorted(out.split())


def inspect(container: str) -> dict:
    return json.loads(run("docker", "inspect", container).stdout)[0]


def worker_predictions(container: str) -> int:
    # The worker has no network: its /metrics through its own unix socket (app/server.py names it).
    out = run("docker", "exec", container, "python", "-c",
              "import socket; s = socket.socket(socket.AF_UNIX); "
              "s.connect(f'/run/workers/{socket.gethostname()}.sock'); "
              "s.sendall(b'GET /metrics HTTP/1.0\\r\\n\\r\\n'); "
              "print(b''.join(iter(lambda: s.recv(65536), b'')).decode())").stdout
    return predictions(out)


def host_listeners(port: int) -> list[str]:
    """The addresses on this machine's network that listen on TCP `port` (/proc/net/tcp, tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hexport = local.split(":")
                if state == "0A" and int(hexport, 16) == port:  # LISTEN
                    raw = bytes.fromhex(address)
                    found.append(str(ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)))))
    return found


def wait_healthy(container: str, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = inspect(container)["State"]
        if state.get("Health", {}).get("Status") == "healthy":
            return state
        time.sleep(0.5)
    pytest.fail(f"{container} not healthy after {timeout}s: {state}")


@pytest.fixture(scope="module", autouse=True)
def stack():
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", 9000)) != 0, "port 9000 is already in use (`make local-down`?)"
    run("make", "up", f"WORKERS={WORKERS}")
    yield
    run("make", "down")


def test_the_readme_curl_example():
    out = run("curl", "-s", "-X", "POST", f"{BASE}/inferreview", "-d", "text=I love this product.").stdout
    ((label, p),) = json.loads(out).items()
    assert (label, f"{p:.6g}") == ("5 star", "0.884676")


def test_json_api_and_errors_through_nginx():
    r = requests.post(f"{BASE}/v1/predict", json={"texts": ["it was ok", "I love it"], "k": 2})
    assert r.status_code == 200
    assert [p[0]["label"] for p in r.json()["predictions"]] == ["3 star", "5 star"]
    assert requests.get(f"{BASE}/v1/model").json()["sha256"].startswith("814f71e0")
    bad = requests.post(f"{BASE}/inferreview", data={"txt": "x"})
    assert (bad.status_code, bad.headers["content-type"]) == (400, "application/json")
    big = requests.post(f"{BASE}/inferreview", data=b"text=" + b"a" * (2 << 20),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413 and big.json()["title"].startswith("413")


def test_one_worker_container_per_requested_worker_and_only_nginx_listens():
    """nginx shares the host's network and listens on 127.0.0.1 only (PUBLISH_ADDR's
    default), :9000 and its status port :9001; no docker-proxy stands in front of it;
    workers have no network at all, only their unix sockets in a volume nginx mounts."""
    workers, proxies = containers("worker"), containers("nginx")
    assert len(workers) == WORKERS and len(proxies) == 1
    for c in workers:
        assert inspect(c)["HostConfig"]["NetworkMode"] == "none"
        assert inspect(c)["NetworkSettings"]["Ports"] == {}, "a worker publishes a port"
    assert inspect(proxies[0])["HostConfig"]["NetworkMode"] == "host"
    assert host_listeners(9000) == ["127.0.0.1"] and host_listeners(9001) == ["127.0.0.1"]
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
    """The status port (9001, never published): stub_status, and each worker
    nginx routes to with whether it answered /readyz at the last probe. The
    workers' own metrics are scraped on the private network, not through :9000."""
    nginx = containers("nginx")[0]
    workers = containers("worker")
    for c in workers:  # on each worker's socket, from nginx's side of the shared volume
        sock = f"/run/workers/{inspect(c)['Config']['Hostname']}.sock"
        page = run("docker", "exec", nginx, "curl", "-fsS", "--unix-socket", sock, "http://worker/metrics").stdout
        assert "worker_requests_total" in page
        assert f"unix:{sock}" in run("docker", "exec", nginx, "curl", "-fsS", "http://127.0.0.1:9001/upstreams").stdout
    for path in ("/metrics", "//metrics", "/%6detrics"):
        r = requests.get(BASE + path)
        assert (r.status_code, r.json()) == (404, {"title": "404 Not Found"}), path
    # nginx's healthcheck asks nginx itself, on the status port, not a worker through it
    assert "/dev/tcp/${NGINX_STATUS_ADDR:-127.0.0.1}/9001" in " ".join(inspect(nginx)["Config"]["Healthcheck"]["Test"])
    assert run("docker", "exec", nginx, "curl", "-fsS", "http://127.0.0.1:9001/healthz").stdout.strip() == \
        '{"status": "ok"}'
    page = run("docker", "exec", nginx, "curl", "-fsS", "http://127.0.0.1:9001/metrics").stdout
    assert f"nginx_upstream_workers {WORKERS}" in page
    up = [line for line in page.splitlines() if line.startswith("nginx_upstream_up{")]
    assert len(up) == WORKERS and all(line.endswith(" 1") for line in up), page
    assert "Active connections" in run("docker", "exec", nginx, "curl", "-fsS",
                                       "http://127.0.0.1:9001/stub_status").stdout
    assert host_listeners(9001) == ["127.0.0.1"]


def test_nginx_hides_its_version():
    for r in (requests.get(f"{BASE}/healthz"), requests.request("TRACE", f"{BASE}/healthz")):
        assert r.headers["Server"] == "nginx", r.headers
    assert requests.request("TRACE", f"{BASE}/healthz").json()["title"].startswith("405")


def test_nginx_spreads_requests_over_every_worker():
    workers = containers("worker")
    served = spread_over(lambda: [worker_predictions(c) for c in workers])
    print(f"requests per worker: {served}")
    assert sum(served) == 400
    assert all(n >= 400 / WORKERS * 0.5 for n in served), served


def test_worker_killed_under_load_loses_nothing_and_comes_back():
    victim = containers("worker")[0]
    before = inspect(victim)["State"]
    under_load(lambda: os.kill(before["Pid"], signal.SIGKILL), seconds_after=3)
    after = wait_healthy(victim)
    assert after["Pid"] != before["Pid"]
    assert inspect(victim)["RestartCount"] >= 1
    # and nginx sends it traffic again
    count = worker_predictions(victim)
    session = requests.Session()
    for _ in range(100):
        session.post(f"{BASE}/inferreview", data={"text": "ok"})
    assert worker_predictions(victim) > count + 20


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


def test_a_worker_drained_by_a_stray_sigterm_comes_back():
    """SIGTERM from outside Docker (not `docker stop`): the worker drains and
    exits 0, and `restart: unless-stopped` starts it again (on-failure would not)."""
    victim = containers("worker")[0]
    before = inspect(victim)
    under_load(lambda: os.kill(before["State"]["Pid"], signal.SIGTERM), seconds_after=2)
    after = wait_healthy(victim)
    assert after["Pid"] != before["State"]["Pid"]
    assert inspect(victim)["RestartCount"] > before["RestartCount"]


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


def test_plain_docker_compose_up_works_once_images_exist():
    run("docker", "compose", "down")
    run("docker", "compose", "up", "--detach", "--wait")
    r = requests.post(f"{BASE}/inferreview", data={"text": "I love this product."})
    assert r.status_code == 200 and list(r.json()) == ["5 star"]
