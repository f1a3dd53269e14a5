"""nginx's configuration: what each setting of nginx/settings.env does to what
nginx/render.sh writes, and the values other files carry that must agree with
them. The rendered configuration at work is tests/e2e's."""

import os
import re
import shutil
import subprocess

import pytest
from stacktools import nginxconf, swarm
from stacktools.ready import wait_for

from app.config import Limits

from .e2e.stacks import run
from .paths import ROOT

DEFAULTS = nginxconf.settings()


def rendered(tmp_path, addresses=("127.0.0.1:8001",), **overrides) -> str:
    nginxconf.render(tmp_path, list(addresses), **overrides)
    files = ("nginx.conf", "proxy.conf", "route.conf", "upstream.conf")
    return "".join((tmp_path / name).read_text() for name in files)


def test_every_placeholder_is_filled_and_nginx_variables_are_left(tmp_path):
    conf = rendered(tmp_path)
    assert not re.search(r"\$\{?[A-Z]", conf)
    for variable in ("$uri", "$binary_remote_addr", "$upstream_addr", "$server_port", "$upstream_addresses"):
        assert variable in conf


def test_a_placeholder_with_no_setting_is_refused(tmp_path):
    copy = tmp_path / "nginx"
    shutil.copytree(ROOT / "nginx", copy)
    template = copy / "nginx.conf.template"
    template.write_text(template.read_text() + "# ${NGINX_NO_SUCH_SETTING}\n")
    result = subprocess.run([str(copy / "render.sh"), str(tmp_path / "out"), "127.0.0.1:8001"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "a placeholder with no setting" in result.stderr, result.stderr
    assert not (tmp_path / "out" / "nginx.conf").exists()


def test_the_environment_overrides_a_setting_and_empty_leaves_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("NGINX_PORT", "9100")
    assert nginxconf.settings()["NGINX_PORT"] == "9100"
    assert nginxconf.settings(NGINX_PORT="")["NGINX_PORT"] == DEFAULTS["NGINX_PORT"]
    assert "listen 9100 backlog=4096;" in rendered(tmp_path)


@pytest.mark.parametrize("name,value", [
    ("NGINX_PORT", "0"), ("NGINX_PORT", "65536"), ("NGINX_CLIENT_IN_FLIGHT", "many"),
    ("NGINX_WORKER_PROCESSES", "two"), ("NGINX_LISTEN_ADDR", "127.0.0.1; evil"),
    ("NGINX_EXTRA_ROUTE", "predict"), ("NGINX_EXTRA_ROUTE", "/a;b"), ("NGINX_EXTRA_ROUTE", "/a/"),
    ("NGINX_ANSWER", "it's"), ("NGINX_STATUS_CLIENTS", "all;"),
])
def test_a_bad_setting_stops_the_renderer_with_its_name(name, value):
    with pytest.raises(SystemExit, match=name):
        nginxconf.settings(**{name: value})


def test_addresses_ipv6_in_brackets_and_unspecified_reached_on_loopback():
    for addr, listen, url in [("", "9000", "127.0.0.1"), ("0.0.0.0", "0.0.0.0:9000", "127.0.0.1"),
                              ("::", "[::]:9000", "[::1]"), ("::1", "[::1]:9000", "[::1]"),
                              ("127.0.0.2", "127.0.0.2:9000", "127.0.0.2")]:
        got = nginxconf.settings(NGINX_LISTEN_ADDR=addr, NGINX_PORT=9000)
        assert (got["NGINX_LISTEN"], got["NGINX_URL"]) == (listen, f"http://{url}:9000"), addr


def test_admission_bounds_and_body_limit_stand_where_they_act_and_in_the_error_texts(tmp_path):
    conf = rendered(tmp_path, NGINX_CLIENT_IN_FLIGHT=10, NGINX_CLIENT_BATCHES=2, NGINX_WORKER_IN_FLIGHT=7,
                    NGINX_MAX_BODY_BYTES=65536)
    assert conf.count("limit_conn per_client 10;") == 1 and "limit_conn per_client_batch 2;" in conf
    assert "server 127.0.0.1:8001 max_conns=7 " in conf
    assert "client_max_body_size 65536;" in conf and "client_body_buffer_size 65536;" in conf
    assert "from this address (10, of them 2 batches);" in conf
    assert '"request body exceeds 64 KiB"' in conf
    conf = rendered(tmp_path)
    assert "from this address (64, of them 1 batch);" in conf and '"request body exceeds 1 MiB"' in conf


def test_the_load_tests_settings(tmp_path):
    """The Rust peer's route beside ours, the processes, nginx answering itself (floors.py)."""
    conf = rendered(tmp_path, NGINX_EXTRA_ROUTE="/predict", NGINX_WORKER_PROCESSES=1,
                    NGINX_ANSWER='{"3 star":0.42}')
    assert "location = /predict { include route.conf; }" in conf
    assert "worker_processes 1;" in conf
    route = (tmp_path / "route.conf").read_text()
    assert "return 200 '{\"3 star\":0.42}';" in route and "proxy_pass" not in route
    assert "proxy_pass http://workers/v1/predict;" in conf  # batches still go to the workers


def test_status_clients_and_workers_one_line_each(tmp_path):
    conf = rendered(tmp_path, ["127.0.0.1:8001", "unix:/run/workers/a.sock"],
                    NGINX_STATUS_CLIENTS="10.0.0.0/8 ::1")
    geo = re.search(r"geo \$status_client \{(.*?)\}", conf, re.S)[1]
    assert re.findall(r"^ +(\S+) 1;$", geo, re.M) == ["10.0.0.0/8", "::1"]
    assert re.findall(r"^ +server (\S+) ", conf, re.M) == ["127.0.0.1:8001", "unix:/run/workers/a.sock"]
    assert 'default "127.0.0.1:8001 unix:/run/workers/a.sock";' in conf


@pytest.mark.e2e  # nginx itself
@pytest.mark.parametrize("overrides", [
    {}, {"NGINX_LISTEN_ADDR": "::1", "NGINX_STATUS_ADDR": "127.0.0.1"},
    {"NGINX_EXTRA_ROUTE": "/predict", "NGINX_WORKER_PROCESSES": "1"}, {"NGINX_ANSWER": '{"3 star":0.42}'},
], ids=["defaults", "addresses", "rust peer", "answer itself"])
def test_nginx_accepts_what_is_rendered(tmp_path, overrides):
    nginxconf.render(tmp_path, ["127.0.0.1:8001", "unix:/run/workers/a.sock"], **overrides)
    (tmp_path / "tmp").mkdir()
    result = subprocess.run(["nginx", "-t", "-q", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf"),
                             "-e", "stderr"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_workers_body_limit_is_nginxs():
    """app/config.py's MAX_BODY_BYTES default and nginx's limit: a body nginx
    passes on is one the worker takes, and both 413s speak of the same size."""
    assert int(DEFAULTS["NGINX_MAX_BODY_BYTES"]) == Limits.max_body_bytes


# Files that carry a port of nginx's settings, and where.
CARRIERS = [
    ("docker/worker.Dockerfile", r"\bPORT=(\d+)", "WORKER_PORT"),
    ("docker/rollout.sh", r'echo "\$ip:(\d+)"', "WORKER_PORT"),
    ("docker/rollout.sh", r"http://127\.0\.0\.1:(\d+)/metrics", "NGINX_STATUS_PORT"),
    ("Makefile", r"http://127\.0\.0\.1:(\d+)/readyz", "NGINX_PORT"),
    ("tests/e2e/traffic.py", r'BASE = "http://127\.0\.0\.1:(\d+)"', "NGINX_PORT"),
]


@pytest.mark.parametrize("path,pattern,name", CARRIERS, ids=[f"{p} {n}" for p, _, n in CARRIERS])
def test_the_ports_other_files_carry_are_the_settings(path, pattern, name):
    found = re.findall(pattern, (ROOT / path).read_text())
    assert found and set(found) == {DEFAULTS[name]}, (path, found)


def test_swarms_ports_are_the_settings():
    """docker/stacktools/swarm.py puts the workers on TCP and publishes nginx's port."""
    config = {"services": {
        "worker": {"image": "w", "environment": {"HOST": "unix:/run/workers/"}},
        "nginx": {"image": "n", "environment": {"WORKER_SOCKETS": "/run/workers"}},
    }}
    services = swarm.stack(config)["services"]
    assert services["worker"]["environment"]["PORT"] == DEFAULTS["WORKER_PORT"]
    assert [(p["target"], p["published"]) for p in services["nginx"]["ports"]] == [(int(DEFAULTS["NGINX_PORT"]),) * 2]


@pytest.mark.e2e  # Docker: the nginx image
def test_the_container_follows_workers_found_by_name():
    """By name (WORKER_HOST: Swarm, the load test's Rust peer): a second address
    under the workers' name is rendered and reloaded, and the status page lists
    it once nginx routes to it, as `make rollout` waits for. The container has
    its own network, and runs as root only to add the address to /etc/hosts."""
    run("make", "images")
    name = f"reviewrating-nginx-dns-{os.getpid()}"
    run("docker", "run", "--detach", "--rm", "--name", name, "--user", "0", "--add-host", "workers:127.0.0.1",
        "--env", "WORKER_HOST=workers", "reviewrating-nginx:latest")
    try:
        def workers() -> str:
            page = run("docker", "exec", name, "curl", "-sS", "-m", "2", f"{DEFAULTS['NGINX_STATUS_URL']}/metrics",
                       check=False).stdout
            return "".join(re.findall(r"^nginx_upstream_workers (\d+)$", page, re.M))

        wait_for(lambda: workers() == "1", 30, "nginx's status page", interval=0.5)
        run("docker", "exec", name, "sh", "-c", "echo '127.0.0.2 workers' >> /etc/hosts")
        wait_for(lambda: workers() == "2", 15, "nginx to route to the second address", interval=0.5)
    finally:
        run("docker", "rm", "--force", name, check=False)
