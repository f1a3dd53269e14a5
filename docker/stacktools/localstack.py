"""The whole topology without Docker: N bjoern workers and nginx on :9000 under supervisord.

    python -m stacktools.localstack up [--workers N]   # start in the background, return once ready
    python -m stacktools.localstack down               # stop everything
    python -m stacktools.localstack status

`make local-up` / `make local-down` call this. Runtime files (generated
configs, sockets, pid files, logs) go to `run/` (RUN_DIR). Workers listen on
127.0.0.1:8001, 8002, ... (WORKER_BASE_PORT); the settings in app/config.py
(MODEL_PATH, MAX_BODY_BYTES, ...) pass through the environment to them.
nginx's configuration is nginx/render.sh's (stacktools.nginxconf), with its
settings (nginx/settings.env, the environment) but for the addresses: :9000
on 127.0.0.1 unless PUBLISH_ADDR says otherwise (as in Compose:
PUBLISH_ADDR=0.0.0.0 to serve other machines), the status port on 127.0.0.1 only.
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from app.config import PROJECT_ROOT, Settings
from stacktools import nginxconf
from stacktools.ready import NotReady, wait_for, wait_until_ready

READY_TIMEOUT = 60.0


def run_dir() -> Path:
    return Path(os.environ.get("RUN_DIR") or PROJECT_ROOT / "run").resolve()


def _nginx() -> str:
    found = os.environ.get("NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(found).exists():
        raise SystemExit("nginx not found: install it (Debian: apt-get install nginx-light) or set NGINX=")
    return found


def nginx_addresses(publish_addr: str | None = None) -> dict[str, str]:
    """The local stack's own nginx settings: the public port on publish_addr
    (PUBLISH_ADDR, 127.0.0.1 unless told), the status port on loopback only."""
    return {"NGINX_LISTEN_ADDR": publish_addr or os.environ.get("PUBLISH_ADDR") or "127.0.0.1",
            "NGINX_STATUS_ADDR": "127.0.0.1"}


def supervisorctl_command(*args: str) -> list[str]:
    """supervisorctl on the running local stack (its status, pid, restart, ...)."""
    return [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(run_dir() / "supervisord.conf"), *args]


def _supervisord_pid() -> int | None:
    try:
        pid = int((run_dir() / "supervisord.pid").read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _supervisord_conf(run: Path, workers: int, base_port: int, nginx: str, shutdown_timeout: float,
                      addresses: list[str]) -> str:
    nginx_dir = run / "nginx"
    status_env = ",".join(f'{name}="{value}"' for name, value in nginx_addresses().items())
    return f"""\
[supervisord]
logfile={run}/logs/supervisord.log
pidfile={run}/supervisord.pid
directory={PROJECT_ROOT}
childlogdir={run}/logs

[unix_http_server]
file={run}/supervisor.sock

[supervisorctl]
serverurl=unix://{run}/supervisor.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:worker]
command={sys.executable} -m app
process_name=worker-%(process_num)d
numprocs={workers}
numprocs_start={base_port}
environment=HOST="127.0.0.1",PORT="%(process_num)d"
autorestart=true
startsecs=1
stopsignal=TERM
stopwaitsecs={int(shutdown_timeout) + 5}
redirect_stderr=true
stdout_logfile={run}/logs/worker-%(process_num)d.log

[program:nginx]
command={nginx} -p {nginx_dir}/ -c {nginx_dir}/nginx.conf -e stderr -g "daemon off;"
autorestart=true
startsecs=1
stopsignal=QUIT
redirect_stderr=true
stdout_logfile={run}/logs/nginx.log

; The service's one metrics page, nginx's status port's /metrics: every worker's
; counters and nginx's, rewritten every 2 s.
[program:metrics]
command={PROJECT_ROOT}/nginx/service-metrics.sh --every 2 --out {nginx_dir}/status/metrics {" ".join(addresses)}
environment={status_env}
autorestart=true
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={run}/logs/metrics.log
"""


def up(workers: int) -> int:
    run = run_dir()
    if _supervisord_pid():
        print(f"already up (supervisord pid {_supervisord_pid()}); `make local-down` first", file=sys.stderr)
        return 1
    settings = Settings.from_env()
    if not settings.model_path.is_file():
        print(f"model {settings.model_path} is missing: run `make model`", file=sys.stderr)
        return 1
    base_port = int(os.environ.get("WORKER_BASE_PORT", "8001"))
    nginx = _nginx()

    nginx_dir = run / "nginx"
    (nginx_dir / "tmp").mkdir(parents=True, exist_ok=True)
    (nginx_dir / "status").mkdir(exist_ok=True)
    (run / "logs").mkdir(exist_ok=True)
    addresses = [f"127.0.0.1:{base_port + i}" for i in range(workers)]
    nginxconf.render(nginx_dir, addresses, **nginx_addresses())
    nginx_settings = nginxconf.settings(**nginx_addresses())
    check = subprocess.run(
        [nginx, "-t", "-q", "-p", f"{nginx_dir}/", "-c", str(nginx_dir / "nginx.conf"), "-e", "stderr"],
        capture_output=True, text=True,
    )
    if check.returncode:
        print(f"nginx rejects the config:\n{check.stderr}", file=sys.stderr)
        return 1
    conf = run / "supervisord.conf"
    conf.write_text(_supervisord_conf(run, workers, base_port, nginx, settings.shutdown_timeout, addresses))
    subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)], check=True)

    # nginx's /readyz: a worker answered through it.
    urls = [f"http://{a}/readyz" for a in addresses] + [f"{nginx_settings['NGINX_URL']}/readyz"]
    try:
        wait_until_ready(urls, READY_TIMEOUT, interval=0.2)
    except NotReady as exc:
        print(f"{exc}; logs in {run}/logs. Status:", file=sys.stderr)
        subprocess.run(supervisorctl_command("status"))
        for log in sorted((run / "logs").glob("*.log")):
            print(f"--- {log.name} (tail)", file=sys.stderr)
            print("\n".join(log.read_text(errors="replace").splitlines()[-10:]), file=sys.stderr)
        down()
        return 1
    print(f"up: {workers} workers behind nginx on http://{nginx_settings['NGINX_LISTEN']} (logs in {run}/logs)")
    return 0


def down() -> int:
    pid = _supervisord_pid()
    if pid is None:
        print("not running")
        return 0
    # supervisord sends each program its stopsignal and waits for it to exit.
    subprocess.run(supervisorctl_command("shutdown"), stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: _supervisord_pid() is None, 60, f"supervisord {pid} to stop")
    except NotReady as exc:
        print(exc, file=sys.stderr)
        return 1
    print("down")
    return 0


def status() -> int:
    if _supervisord_pid() is None:
        print("not running")
        return 3
    return subprocess.run(supervisorctl_command("status")).returncode


def default_workers() -> int:
    return len(os.sched_getaffinity(0))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacktools.localstack", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up_parser = sub.add_parser("up")
    up_parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS") or default_workers()))
    sub.add_parser("down")
    sub.add_parser("status")
    args = parser.parse_args(argv)
    if args.command == "up":
        if args.workers < 1:
            parser.error("--workers must be at least 1")
        return up(args.workers)
    return down() if args.command == "down" else status()


if __name__ == "__main__":
    sys.exit(main())
