"""The container path against the local stack: flat-out capacity, alternated.

    .venv/bin/python -m loadtest.container_path --rounds 2 \
        local compose=docker-compose.yml before=/tmp/old-compose.yml [before-nsenter=/tmp/old-compose.yml]

Each round starts every stack in turn on :9000 (`make local-up`, or
`docker compose -f FILE up --wait`), drives it flat out with Debian's `wrk`
(closed loop, `-t1 -c64`, the POST of tools/percore/post.lua) from the host,
and stops it again, so machine noise falls on all of them alike. A name
ending in `-nsenter` runs the same wrk inside nginx's network namespace
(`nsenter -t PID -n`), which skips the published port's proxy. CPU per
request: the workers' and nginx's cgroups (containers) or /proc/PID/stat
(processes), plus every docker-proxy process, and wrk's own.

Needs root (nsenter, /proc of other users), Docker Compose, `wrk` and the
images (`make images`). Targets 127.0.0.1 only.
"""

import argparse
import os
import re
import subprocess
import time
from pathlib import Path

from loadtest import cpu

ROOT = Path(__file__).resolve().parent.parent

LUA = ROOT.parent / "shared" / "tools" / "percore" / "post.lua"
URL = "http://127.0.0.1:9000/inferreview"
ENV = {**os.environ, "WORKERS": "2"}


def sh(*cmd, check=True, **kw):
    return subprocess.run(cmd, cwd=ROOT, env=ENV, check=check, capture_output=True, text=True, **kw)


def descendants(pid: int) -> list[int]:
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out[1:]


def proxies() -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().split(b"\0")[0].endswith(b"docker-proxy"):
                found.append("pid:" + cmdline.parent.name)
        except OSError:
            pass
    return found


class Local:
    def up(self):
        sh("make", "local-up", "WORKERS=2")
        pid = int((ROOT / "run" / "supervisord.pid").read_text())
        groups = {"workers": [], "nginx": []}
        for p in descendants(pid):
            name = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0]
            groups["nginx" if name.endswith(b"nginx") or b"nginx:" in name else "workers"].append(f"pid:{p}")
        return groups

    def down(self):
        sh("make", "local-down", check=False)


class Compose:
    def __init__(self, file):
        self.cmd = ["docker", "compose", "-f", file, "--project-directory", str(ROOT)]

    def up(self):
        sh(*self.cmd, "up", "--detach", "--wait", timeout=300)
        ids = {s: sh(*self.cmd, "ps", "-q", "--no-trunc", s).stdout.split() for s in ("worker", "nginx")}
        return {"workers": ids["worker"], "nginx": ids["nginx"], "proxy": proxies()}

    def nginx_pid(self):
        cid = sh(*self.cmd, "ps", "-q", "nginx").stdout.split()[0]
        return sh("docker", "inspect", "-f", "{{.State.Pid}}", cid).stdout.strip()

    def down(self):
        sh(*self.cmd, "down", check=False, timeout=300)


def wrk(seconds, prefix=()):
    before = os.times()
    out = subprocess.run([*prefix, "wrk", "-t1", "-c64", f"-d{seconds}s", "-s", str(LUA), URL],
                         check=True, capture_output=True, text=True).stdout
    after = os.times()
    spent = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rate = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    return requests, rate, spent, errors.group(0) if errors else ""


def busy_s():
    """CPU seconds the whole machine spent busy (everything but idle and iowait), all cores."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / cpu._TICKS


def measure(groups, seconds, prefix=()):
    wrk(2, prefix)  # warm: keep-alive connections, caches
    before = {k: cpu.usage_s(v) for k, v in groups.items()}
    machine, t = busy_s(), time.monotonic()
    requests, rate, wrk_s, errors = wrk(seconds, prefix)
    machine, t = busy_s() - machine, time.monotonic() - t
    after = {k: cpu.usage_s(v) for k, v in groups.items()}
    us = {k: (after[k] - before[k]) / requests * 1e6 for k in groups if before[k] is not None and after[k] is not None}
    us["wrk"] = wrk_s / requests * 1e6
    # What the stack and wrk did not use of the machine: other processes, and idle.
    us["machine busy, cores"] = machine / t
    return rate, us, errors


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stacks", nargs="+", help="local, or NAME=COMPOSE_FILE (NAME-nsenter: also inside nginx's netns)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=int, default=8)
    args = p.parse_args()
    results = []
    for r in range(1, args.rounds + 1):
        for spec in args.stacks:
            name, _, file = spec.partition("=")
            stack = Local() if name == "local" else Compose(file)
            try:
                groups = stack.up()
                runs = [(name, ())]
                if name.endswith("-nsenter"):
                    runs = [(name[:-8], ()), (name, ("nsenter", "-t", stack.nginx_pid(), "-n"))]
                for label, prefix in runs:
                    rate, us, errors = measure(groups, args.seconds, prefix)
                    parts = " ".join(f"{k} {v:.1f}" for k, v in us.items())
                    line = f"round {r} {label:16s} {rate:9.0f} req/s  CPU us/request: {parts} {errors}"
                    print(line, flush=True)
                    results.append((label, rate, us))
            finally:
                stack.down()
    print("\nmean over rounds:")
    for label in dict.fromkeys(name for name, _, _ in results):
        rates = [rate for name, rate, _ in results if name == label]
        print(f"  {label:16s} {sum(rates) / len(rates):9.0f} req/s  ({', '.join(f'{x:.0f}' for x in rates)})")


if __name__ == "__main__":
    main()
