"""User-space instructions per request of whole servers, counted by callgrind.

    .venv/bin/python -m loadtest.instructions [--requests-low 2000 --requests-high 6000]
        [--only bare,falcon,product,product-oip,rust,nginx,nginx-rust] [--out DIR]

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
  that runs outside valgrind: only nginx's instructions are counted;
- **nginx-rust**: the same nginx.conf in front of fasttext-serving (its
  /predict route, as floors.py's `rust` stack), the same way.

For product and product-oip, where the instructions go: each object's own
instructions (callgrind_annotate, per function, summed by the object the
function is in) and the inclusive count of a few entry points (bjoern's call
of the WSGI app, Falcon's App.__call__, fastText's predict), both as
differences between the two runs per request. Results: instructions.md and
instructions.json in --out (with --keep, callgrind's files and logs too).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
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

PORTS = {"bare": 8201, "falcon": 8202, "product": 8203, "product-oip": 8204, "rust": 8205, "nginx": 8206,
         "nginx-rust": 8209}
NGINX_STATUS_PORT = 8207
NGINX_UPSTREAM_PORT = 8208  # the worker nginx proxies to (ours, or the Rust one), outside valgrind
SERVERS = tuple(PORTS)
READY_TIMEOUT = 300.0  # Python and the model's load under callgrind: tens of seconds


def http_request(path: str, body: bytes, content_type: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def review() -> str:
    return sweep.review_of(sweep.DEFAULT_BODY)


FORM_REQUEST = http_request("/inferreview", sweep.DEFAULT_BODY.encode(), "application/x-www-form-urlencoded")
OIP_REQUEST = http_request(OIP_PATH, sweep.oip_body(review()).encode(), "application/json")
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
    helper_path: str = ""  # where the helper answers sweep.ready()'s probe


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
        "rust": Server("rust", rust_command(rust, PORTS["rust"]), dict(os.environ), PORTS["rust"],
                       f"http://127.0.0.1:{PORTS['rust']}{sweep.RUST_PATH}", RUST_REQUEST),
    }
    out["nginx"] = nginx_server(workdir, "nginx", FORM_REQUEST, [py, "-m", "app"])
    # The same nginx.conf in front of fasttext-serving (its /predict route, as
    # floors.py's `rust` stack): what nginx spends for the other server's answers.
    out["nginx-rust"] = nginx_server(workdir, "nginx-rust", RUST_REQUEST,
                                     rust_command(rust, NGINX_UPSTREAM_PORT), sweep.RUST_PATH)
    return out


def rust_command(rust: Path, port: int) -> list[str]:
    return [str(rust), "--model", str(MODEL), "--address", "127.0.0.1", "--port", str(port), "--workers", "1"]


def nginx_server(workdir: Path, name: str, request: bytes, helper: list[str], path: str = "") -> Server:
    """The product's nginx.conf, rendered as floors.py does, one process without
    master, in front of `helper` (run outside valgrind) whose route is `path`."""
    d = workdir / name
    (d / "tmp").mkdir(parents=True, exist_ok=True)
    nginxconf.render(d, [f"127.0.0.1:{NGINX_UPSTREAM_PORT}"],
                     **floors.nginx_settings((PORTS[name], NGINX_STATUS_PORT), False, "1", path))
    return Server(name, ["nginx", "-p", f"{d}/", "-c", str(d / "nginx.conf"), "-e", "stderr",
                         "-g", "daemon off; master_process off;"], dict(os.environ),
                  PORTS[name], f"http://127.0.0.1:{PORTS[name]}{path}", request, workdir=d,
                  helper=helper, helper_path=path)


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


def count(server: Server, n: int, out: Path, server_cpu: str, client_cpu: str) -> Path:
    """Run `server` under callgrind, drive it with `n` requests, stop it; its callgrind file."""
    base = out / f"callgrind.{server.name}.{n}"
    for stale in out.glob(f"{base.name}.*"):
        stale.unlink()
    helper = None
    if server.helper:
        helper = subprocess.Popen(["taskset", "-c", client_cpu, *server.helper], cwd=ROOT,
                                  env=python_env(HOST="127.0.0.1", PORT=str(NGINX_UPSTREAM_PORT)),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = (out / f"{server.name}.{n}.log").open("w")
    proc = None
    try:
        if helper:
            upstream = f"http://127.0.0.1:{NGINX_UPSTREAM_PORT}{server.helper_path}"
            ready.wait_until_ready(lambda: sweep.ready(upstream), 60, process=helper, what="nginx's upstream worker")
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
        ready.stop(proc, timeout=120.0)  # callgrind writes its file as the process ends
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if helper is not None:
            ready.stop(helper)
        log.close()
    path = Path(f"{base}.{proc.pid}")
    if not path.exists():
        raise RuntimeError(f"{server.name}: callgrind wrote no {path} (see {log.name})")
    return path


ALL_CPUS = os.sched_getaffinity(0)

FASTTEXT = "fasttext::"


def costs(path: Path) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """From a callgrind file: each (function, object)'s own instructions, and each
    function's inclusive ones (its own plus those of the calls it made; a
    recursive function's are counted more than once), and under the name
    FASTTEXT the inclusive cost of every call into fastText's C++ from outside
    it (fastText's whole share, libstdc++ included). Read from the file itself
    (callgrind's format: ob=/fn= then cost lines; calls= then the call's
    inclusive cost), as callgrind_annotate does, names decompressed."""
    names: dict[str, dict[str, str]] = {"ob": {}, "fn": {}, "cob": {}, "cfn": {}}
    own: dict[tuple[str, str], int] = {}
    inclusive: dict[str, int] = {}
    ob = fn = cfn = "?"
    in_call = False
    into_fasttext = 0
    for line in path.read_text(errors="replace").splitlines():
        if not line:
            continue
        head = line[0]
        if head.isdigit() or head in "+-*":
            cost = line.split()
            if len(cost) < 2:
                continue
            ir = int(cost[1])
            if in_call:  # the inclusive cost of the call the line before named
                inclusive[fn] = inclusive.get(fn, 0) + ir
                if cfn.startswith(FASTTEXT) and not fn.startswith(FASTTEXT):
                    into_fasttext += ir
                in_call = False
            else:
                own[(fn, ob)] = own.get((fn, ob), 0) + ir
                inclusive[fn] = inclusive.get(fn, 0) + ir
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "calls":
            in_call = True
            continue
        if key in ("ob", "fn", "cob", "cfn"):
            m = re.fullmatch(r"\((\d+)\)(?: (.*))?", value)
            table = names["ob" if key in ("ob", "cob") else "fn"]
            if not m:
                name = value
            elif m[2]:
                name = table[m[1]] = m[2]
            else:
                name = table.get(m[1], "?")
            if key == "ob":
                ob = name
            elif key == "fn":
                fn = name
            elif key == "cfn":
                cfn = name
    inclusive[FASTTEXT] = into_fasttext
    return own, inclusive


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
APP_CALL = "the WSGI app: bjoern's wsgi_call_application, inclusive"
FASTTEXT_CALLS = "fastText: every call into fasttext:: from outside it, inclusive"
ENTRIES = [
    (APP_CALL, r"^wsgi_call_application$"),
    (FASTTEXT_CALLS, rf"^{FASTTEXT}$"),
    ("  of which Dictionary::getLine (the text to word ids)", r"^fasttext::Dictionary::getLine\("),
    ("  of which FastText::predict (the model)", r"^fasttext::FastText::predict\("),
    ("Falcon's App.__call__ (only if Falcon is compiled)", r"__pyx_pw_6falcon_3app_3App_\d+__call__$"),
]


def breakdown(low: Path, high: Path, dn: int) -> dict:
    both = [costs(p) for p in (low, high)]
    selfs, incls = [b[0] for b in both], [b[1] for b in both]
    groups: dict[str, float] = {}
    for key in set(selfs[0]) | set(selfs[1]):
        diff = selfs[1].get(key, 0) - selfs[0].get(key, 0)
        g = object_group(key[1], key[0])
        groups[g] = groups.get(g, 0) + diff / dn
    entries = {}
    for label, pattern in ENTRIES:
        def summed(inclusive, pattern=pattern):
            return sum(v for fn, v in inclusive.items() if re.search(pattern, fn))
        entries[label] = (summed(incls[1]) - summed(incls[0])) / dn
    return {"by_object": dict(sorted(groups.items(), key=lambda kv: -kv[1])), "entries": entries}


NATIVE = "app/native (our C++ responder)"


def split(per_request: float, b: dict) -> dict[str, float]:
    """The worker's parts, from the inclusive counts: bjoern, Falcon and app/'s
    Python, our compiled responder, fastText."""
    app, fasttext = b["entries"][APP_CALL], b["entries"][FASTTEXT_CALLS]
    native = b["by_object"].get(NATIVE, 0.0)
    return {
        "bjoern: outside the app call (HTTP parsing, the libev loop, environ and response objects, "
        "syscall wrappers)": per_request - app,
        "Falcon and app/'s Python: the rest of the app call (the interpreter, ujson, libc)": app - fasttext - native,
        "app/native: our compiled responder's own (normalisation, form and JSON; pybind's wrappers)": native,
        "fastText: every call into it (its C++ and the libstdc++ it calls)": fasttext,
    }


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
                  "| part (from the inclusive counts) | instructions/request | share |", "|---|---:|---:|"]
        for g, v in split(r["per_request"], r["breakdown"]).items():
            lines.append(f"| {g} | {v:,.0f} | {v / r['per_request']:.1%} |")
        lines += ["", "| own instructions, by object | instructions/request | share |", "|---|---:|---:|"]
        for g, v in r["breakdown"]["by_object"].items():
            if round(v):
                lines.append(f"| {g} | {v:,.0f} | {v / r['per_request']:.1%} |")
        lines += ["", "| entry point (inclusive) | instructions/request | share |", "|---|---:|---:|"]
        for g, v in r["breakdown"]["entries"].items():
            if round(v):
                lines.append(f"| {g} | {v:,.0f} | {v / r['per_request']:.1%} |")
    servers = results["servers"]
    if "falcon" in servers and "bare" in servers:
        lines += ["", "Falcon here is pure Python (the venv's wheel has no compiled module), so its "
                  "instructions are among the interpreter's; on its own, reading a form POST and answering "
                  f"JSON, it costs {servers['falcon']['per_request'] - servers['bare']['per_request']:,.0f} "
                  "a request above bare bjoern (falcon - bare)."]
    (out / "instructions.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests-low", type=int, default=2000)
    p.add_argument("--requests-high", type=int, default=6000)
    p.add_argument("--only", default=",".join(SERVERS), help="comma-separated: " + ",".join(SERVERS))
    p.add_argument("--out", default=str(HERE / "report" / "instructions" / "servers"))
    p.add_argument("--keep", action="store_true", help="keep callgrind's files and logs in OUT/callgrind")
    p.add_argument("--rust", type=Path, default=RUST_BIN)
    args = p.parse_args(argv)
    if not 0 < args.requests_low < args.requests_high:
        raise SystemExit("want 0 < --requests-low < --requests-high")
    names = [n for n in re.split(r"[\s,]+", args.only) if n]
    unknown = set(names) - set(SERVERS)
    if unknown:
        raise SystemExit(f"unknown servers {sorted(unknown)}: choose from {', '.join(SERVERS)}")
    for tool in ("valgrind", "callgrind_annotate", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: docker/bootstrap/ensure-packages.sh test")
    if {"rust", "nginx-rust"} & set(names) and not os.access(args.rust, os.X_OK):
        print(f"leaving out rust and nginx-rust: {args.rust} is missing (make rust-peer)", flush=True)
        names = [n for n in names if n not in ("rust", "nginx-rust")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    server_cpu, client_cpu = cpus()
    results: dict = {"requests_low": args.requests_low, "requests_high": args.requests_high,
                     "server_cpu": server_cpu, "client_cpu": client_cpu, "servers": {}}
    # --only adds to (or redoes) the servers of an earlier run with the same counts.
    with contextlib.suppress(OSError, ValueError):
        earlier = json.loads((out / "instructions.json").read_text())
        if (earlier["requests_low"], earlier["requests_high"]) == (args.requests_low, args.requests_high):
            results["servers"] = {k: v for k, v in earlier["servers"].items() if k not in names}
    dn = args.requests_high - args.requests_low
    with tempfile.TemporaryDirectory(prefix="instructions-") as tmp:
        table = servers(Path(tmp), args.rust)
        raw = out / "callgrind" if args.keep else Path(tmp) / "callgrind"
        raw.mkdir(exist_ok=True)
        for name in names:
            server = table[name]
            started = time.monotonic()
            files = [count(server, n, raw, server_cpu, client_cpu) for n in (args.requests_low, args.requests_high)]
            irs = [total_ir(f) for f in files]
            r = {"request": server.request.split(b" ", 2)[1].decode(), "ir_low": irs[0], "ir_high": irs[1],
                 "per_request": (irs[1] - irs[0]) / dn, "files": [f.name for f in files]}
            if server.breakdown:
                r["breakdown"] = breakdown(files[0], files[1], dn)
            results["servers"][name] = r
            print(f"{name:12} {r['request']:40} {r['per_request']:12,.0f} instructions/request "
                  f"({time.monotonic() - started:.0f} s)", flush=True)
            write_results(out, results, args)
    print(f"results: {out / 'instructions.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
