"""User-space instructions per request of whole servers, counted by callgrind.

    .venv/bin/python -m loadtest.instructions [--requests-low 2000 --requests-high 6000]
        [--only bare,falcon,product,product-oip,rust,nginx] [--out DIR]

Hardware counters are not to be had here; valgrind's callgrind counts the
instructions a process executes in user space, the same on every run however
busy the machine. Each server runs under
`valgrind --tool=callgrind`, pinned to the first CPU (taskset), twice: once
driven with N_low requests, once with N_high, by a plain socket client outside
valgrind on the second CPU (one keep-alive connection, the same request sent
N times, each response read whole before the next is sent). Then

    instructions per request = (Ir_high - Ir_low) / (N_high - N_low)

so that start-up, the model's load, the readiness probe and the shutdown drop
out. Each server is stopped by SIGTERM (the product's worker drains on it,
app/drain.py; the others exit at once), and callgrind writes its file as the
process ends.

The servers (ports 8201-8208, which nothing else here uses):

- **bare**: bjoern running a bare WSGI function (floors.RAW_WSGI);
- **falcon**: bjoern running Falcon reading the form (floors.FALCON_ONLY);
- **product**: the product's worker (`python -m app`), POST /inferreview;
- **product-oip**: the same worker, POST /v2/models/amazon_review_full/infer
  (the Open Inference Protocol, JSON, one BYTES text);
- **rust**: messense/fasttext-serving, one worker thread, POST /predict
  (loadtest/bin/fasttext-serving; left out, with a message, when missing);
- **nginx**: the product's nginx.conf, rendered as floors.py does, one
  process (`daemon off; master_process off;`), proxying to a product worker
  that runs outside valgrind: only nginx's instructions are counted.

For product and product-oip, where the instructions go: each object's own
instructions (callgrind_annotate, per function, summed by the object the
function is in) and the inclusive count of a few entry points (bjoern's call
of the WSGI app, Falcon's App.__call__, fastText's predict), both as
differences between the two runs per request. Results: instructions.md and
instructions.json in --out (and the callgrind files).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from stacktools import nginxconf, ready

from loadtest import floors, sweep

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODEL = ROOT / "models" / "amazon_review_full.ftz"
MODEL_NAME = json.loads((ROOT / "models" / "amazon_review_full.json").read_text())["name"]
OIP_PATH = f"/v2/models/{MODEL_NAME}/infer"
RUST_BIN = floors.RUST_BIN

PORTS = {"bare": 8201, "falcon": 8202, "product": 8203, "product-oip": 8204, "rust": 8205, "nginx": 8206}
NGINX_STATUS_PORT = 8207
NGINX_UPSTREAM_PORT = 8208  # the product worker nginx proxies to, outside valgrind
SERVERS = tuple(PORTS)
READY_TIMEOUT = 300.0  # Python and the model's load under callgrind: tens of seconds


def http_request(path: str, body: bytes, content_type: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def review() -> str:
    return sweep.review_of(sweep.DEFAULT_BODY)


FORM_REQUEST = http_request("/inferreview", sweep.DEFAULT_BODY.encode(), "application/x-www-form-urlencoded")
OIP_REQUEST = http_request(OIP_PATH, json.dumps(
    {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [review()]}]}).encode(),
    "application/json")
RUST_REQUEST = http_request(sweep.RUST_PATH, json.dumps([review()]).encode(), "application/json")


@dataclass
class Server:
    name: str
    command: list[str]  # what runs under valgrind
    env: dict
    port: int
    ready_url: str  # as sweep.ready() probes it
    request: bytes
    workdir: Path | None = None
    breakdown: bool = False
    helper: list[str] = field(default_factory=list)  # started outside valgrind first (nginx's worker)


def python_env(**extra) -> dict:
    # PYTHONHASHSEED: the same dict layouts, so the same instructions, on every run.
    return {**os.environ, "PYTHONHASHSEED": "0", **extra}


def servers(workdir: Path, rust: Path) -> dict[str, Server]:
    py = sys.executable
    product_env = python_env(HOST="127.0.0.1", DRAIN_QUIET="0.2")
    out = {
        "bare": Server("bare", [py, "-c", floors.RAW_WSGI, str(PORTS["bare"])], python_env(),
                       PORTS["bare"], f"http://127.0.0.1:{PORTS['bare']}", FORM_REQUEST),
        "falcon": Server("falcon", [py, "-c", floors.FALCON_ONLY, str(PORTS["falcon"])], python_env(),
                         PORTS["falcon"], f"http://127.0.0.1:{PORTS['falcon']}", FORM_REQUEST),
        "product": Server("product", [py, "-m", "app"], product_env | {"PORT": str(PORTS["product"])},
                          PORTS["product"], f"http://127.0.0.1:{PORTS['product']}", FORM_REQUEST,
                          breakdown=True),
        "product-oip": Server("product-oip", [py, "-m", "app"], product_env | {"PORT": str(PORTS["product-oip"])},
                              PORTS["product-oip"], f"http://127.0.0.1:{PORTS['product-oip']}", OIP_REQUEST,
                              breakdown=True),
        "rust": Server("rust", [str(rust), "--model", str(MODEL), "--address", "127.0.0.1",
                                "--port", str(PORTS["rust"]), "--workers", "1"], dict(os.environ),
                       PORTS["rust"], f"http://127.0.0.1:{PORTS['rust']}{sweep.RUST_PATH}", RUST_REQUEST),
    }
    d = workdir / "nginx"
    (d / "tmp").mkdir(parents=True, exist_ok=True)
    nginxconf.render(d, [f"127.0.0.1:{NGINX_UPSTREAM_PORT}"],
                     **floors.nginx_settings((PORTS["nginx"], NGINX_STATUS_PORT), False, "1"))
    out["nginx"] = Server("nginx", ["nginx", "-p", f"{d}/", "-c", str(d / "nginx.conf"), "-e", "stderr",
                                    "-g", "daemon off; master_process off;"], dict(os.environ),
                          PORTS["nginx"], f"http://127.0.0.1:{PORTS['nginx']}", FORM_REQUEST, workdir=d,
                          helper=[py, "-m", "app"])
    return out


def drive(port: int, request: bytes, n: int, timeout: float = 120.0) -> None:
    """Send `request` `n` times on one keep-alive connection, reading each
    response (status 200, Content-Length) whole before sending the next."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        for i in range(n):
            s.sendall(request)
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError(f"connection closed before response {i + 1} of {n}")
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0]
            if b" 200 " not in status + b" ":
                raise RuntimeError(f"response {i + 1}: {status.decode(errors='replace')}")
            m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
            if not m:
                raise RuntimeError(f"response {i + 1} has no Content-Length: {head[:300]!r}")
            length = int(m[1])
            while len(buf) < length:
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError(f"connection closed in the body of response {i + 1}")
                buf += chunk
            buf = buf[length:]


def cpus() -> tuple[str, str]:
    """The server's CPU and the client's: the first two this process may use."""
    mine = sorted(os.sched_getaffinity(0))
    return str(mine[0]), str(mine[1] if len(mine) > 1 else mine[0])


def total_ir(path: Path) -> int:
    text = path.read_text(errors="replace")
    found = [int(x) for x in re.findall(r"(?m)^(?:summary|totals):\s*(\d+)", text)]
    if not found:
        raise RuntimeError(f"no totals in {path}")
    return max(found)


def stop(proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """SIGTERM, then wait (callgrind writes its file as the process ends);
    SIGKILL only if it will not end."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def count(server: Server, n: int, out: Path, server_cpu: str, client_cpu: str) -> Path:
    """Run `server` under callgrind, drive it with `n` requests, stop it; its callgrind file."""
    base = out / f"callgrind.{server.name}.{n}"
    helper = None
    if server.helper:
        helper = subprocess.Popen(["taskset", "-c", client_cpu, *server.helper], cwd=ROOT,
                                  env=python_env(HOST="127.0.0.1", PORT=str(NGINX_UPSTREAM_PORT)),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = (out / f"{server.name}.{n}.log").open("w")
    proc = None
    try:
        if helper:
            ready.wait_until_ready(lambda: sweep.ready(f"http://127.0.0.1:{NGINX_UPSTREAM_PORT}"), 60,
                                   process=helper, what="nginx's upstream worker")
        proc = subprocess.Popen(
            ["taskset", "-c", server_cpu, "valgrind", "--tool=callgrind", f"--callgrind-out-file={base}.%p",
             *server.command], cwd=ROOT, env=server.env, stdout=log, stderr=log)
        ready.wait_until_ready(lambda: sweep.ready(server.ready_url), READY_TIMEOUT, process=proc,
                               what=f"{server.name} under callgrind")
        os.sched_setaffinity(0, {int(client_cpu)})
        try:
            drive(server.port, server.request, n)
        finally:
            os.sched_setaffinity(0, ALL_CPUS)
        stop(proc)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if helper is not None:
            helper.terminate()
            try:
                helper.wait(15)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait()
        log.close()
    path = Path(f"{base}.{proc.pid}")
    if not path.exists():
        raise RuntimeError(f"{server.name}: callgrind wrote no {path} (see {log.name})")
    return path


ALL_CPUS = os.sched_getaffinity(0)

# callgrind_annotate's lines: "N (pct)  file:function [object]" (the percentage only in newer versions).
ANNOTATE_LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(.*?)(?:\s+\[(.+)\])?\s*$")


def annotate(path: Path, inclusive: bool) -> dict[tuple[str, str], int]:
    """{(function, object): instructions} of every function in a callgrind file."""
    text = subprocess.run(["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}",
                           "--threshold=100", str(path)], capture_output=True, text=True, check=True).stdout
    costs: dict[tuple[str, str], int] = {}
    started = False
    for line in text.splitlines():
        if re.search(r"file:function", line):
            started = True
            continue
        if not started:
            continue
        m = ANNOTATE_LINE.match(line)
        if not m or not m[2]:
            continue
        key = (m[2], m[3] or "?")
        costs[key] = costs.get(key, 0) + int(m[1].replace(",", ""))
    return costs


def object_group(obj: str, function: str) -> str:
    """Which part of the worker an object's (or a function's) own instructions belong to."""
    name = Path(obj).name
    if "bjoern" in name or name.startswith("libev"):
        return "bjoern (+ libev)"
    if "/falcon/" in obj:
        return "Falcon (compiled modules)"
    if "reviewrating_native" in name:
        return "fastText" if "fasttext::" in function else "app/native (our C++ responder)"
    if name.startswith("libpython") or re.fullmatch(r"python3(\.\d+)?", name):
        return "Python interpreter (runs app/ and Falcon's Python)"
    if "ujson" in name:
        return "ujson"
    if name.startswith(("libc.so", "libc-")):
        return "libc (syscall wrappers, malloc, memcpy)"
    if name.startswith(("libstdc++", "libm.so", "libgcc")):
        return "libstdc++/libm (fastText's)"
    return "other (ld.so, other extensions)"


# Entry points whose inclusive count splits the worker: (label, function name pattern).
ENTRIES = [
    ("bjoern's call of the WSGI app (everything the app does)", r"wsgi_call_application"),
    ("Falcon's App.__call__ (inclusive)", r"__pyx_pw_6falcon_3app_3App_\d+__call__$"),
    ("fastText: FastText::predict (inclusive)", r"^fasttext::FastText::predict\("),
    ("fastText: Dictionary::getLine (inclusive)", r"^fasttext::Dictionary::getLine\("),
]


def breakdown(low: Path, high: Path, dn: int) -> dict:
    selfs = [annotate(p, inclusive=False) for p in (low, high)]
    incls = [annotate(p, inclusive=True) for p in (low, high)]
    groups: dict[str, float] = {}
    for key in set(selfs[0]) | set(selfs[1]):
        diff = selfs[1].get(key, 0) - selfs[0].get(key, 0)
        g = object_group(key[1], key[0])
        groups[g] = groups.get(g, 0) + diff / dn
    entries = {}
    for label, pattern in ENTRIES:
        def summed(costs, pattern=pattern):
            return sum(v for (fn, _), v in costs.items() if re.search(pattern, fn.split(":", 1)[-1]))
        entries[label] = (summed(incls[1]) - summed(incls[0])) / dn
    return {"by_object": dict(sorted(groups.items(), key=lambda kv: -kv[1])), "entries": entries}


def write_results(out: Path, results: dict, args) -> None:
    (out / "instructions.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"# User-space instructions per request (callgrind, ({args.requests_high} - "
             f"{args.requests_low} requests) difference, one keep-alive connection)", "",
             "| server | request | instructions/request | Ir low run | Ir high run |", "|---|---|---:|---:|---:|"]
    for name, r in results["servers"].items():
        lines.append(f"| {name} | {r['request']} | {r['per_request']:,.0f} | {r['ir_low']:,} | {r['ir_high']:,} |")
    for name, r in results["servers"].items():
        if "breakdown" not in r:
            continue
        lines += ["", f"## {name}: where the instructions go (per request)", "",
                  "| part (own instructions, by object) | instructions/request | share |", "|---|---:|---:|"]
        for g, v in r["breakdown"]["by_object"].items():
            lines.append(f"| {g} | {v:,.0f} | {v / r['per_request']:.1%} |")
        lines += ["", "| entry point (inclusive) | instructions/request | share |", "|---|---:|---:|"]
        for g, v in r["breakdown"]["entries"].items():
            lines.append(f"| {g} | {v:,.0f} | {v / r['per_request']:.1%} |")
    (out / "instructions.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests-low", type=int, default=2000)
    p.add_argument("--requests-high", type=int, default=6000)
    p.add_argument("--only", default=",".join(SERVERS), help="comma-separated: " + ",".join(SERVERS))
    p.add_argument("--out", default=str(HERE / "report" / "instructions"))
    p.add_argument("--rust", type=Path, default=RUST_BIN)
    args = p.parse_args(argv)
    if not 0 < args.requests_low < args.requests_high:
        raise SystemExit("want 0 < --requests-low < --requests-high")
    names = [n for n in re.split(r"[\s,]+", args.only) if n]
    unknown = set(names) - set(SERVERS)
    if unknown:
        raise SystemExit(f"unknown servers {sorted(unknown)}: choose from {', '.join(SERVERS)}")
    for tool in ("valgrind", "callgrind_annotate", "taskset"):
        if not any(os.access(Path(d) / tool, os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep)):
            raise SystemExit(f"{tool} is missing: docker/bootstrap/ensure-packages.sh test")
    if "rust" in names and not os.access(args.rust, os.X_OK):
        print(f"leaving out rust: {args.rust} is missing (make rust-peer)", flush=True)
        names.remove("rust")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    server_cpu, client_cpu = cpus()
    results: dict = {"requests_low": args.requests_low, "requests_high": args.requests_high,
                     "server_cpu": server_cpu, "client_cpu": client_cpu, "servers": {}}
    dn = args.requests_high - args.requests_low
    with tempfile.TemporaryDirectory(prefix="instructions-") as tmp:
        table = servers(Path(tmp), args.rust)
        for name in names:
            server = table[name]
            started = time.monotonic()
            files = [count(server, n, out, server_cpu, client_cpu) for n in (args.requests_low, args.requests_high)]
            irs = [total_ir(f) for f in files]
            r = {"request": server.request.split(b" ", 2)[1].decode(), "ir_low": irs[0], "ir_high": irs[1],
                 "per_request": (irs[1] - irs[0]) / dn, "files": [f.name for f in files]}
            if server.breakdown:
                r["breakdown"] = breakdown(files[0], files[1], dn)
            results["servers"][name] = r
            print(f"{name:12} {r['request']:40} {r['per_request']:12,.0f} instructions/request "
                  f"({time.monotonic() - started:.0f} s)", flush=True)
            write_results(out, results, args)
    with contextlib.suppress(OSError):
        print(f"results: {out / 'instructions.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
