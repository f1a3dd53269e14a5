"""The floors under the product's cost: what nginx and bjoern cost with no app at all.

Beside the running local stack (`make local-up`: nginx :9000 -> the real
workers), this starts, from the same nginx config (nginx/render.sh, with these
stacks' ports and processes as settings) and the same nginx and bjoern binaries:

- **falcon**: nginx on :9006 -> N bjoern processes running a Falcon app that
  reads the form with the product's handler and answers a constant JSON of
  the real answer's size (127.0.0.1:8111, ...): the product without the
  model, normalisation, limits and counters;
- **bare**: nginx on :9002 -> N bjoern processes running a bare WSGI function
  that reads the body and answers that JSON (127.0.0.1:8101, ...): the
  architecture's floor, nginx + bjoern + TCP with no framework at all;
- **return**: nginx on :9004 answering that JSON itself (`return 200`), the
  nginx floor: the client side of the proxy, with no upstream;

then runs sweep.py over all four at each rate, interleaved, with the CPU of
each one's nginx and workers read from /proc, writes the plots and
summary.md, and stops what it started.

    .venv/bin/python -m loadtest.floors --results loadtest/report/floors --rates 8000,12000,16000,20000

With --ceiling, no sweep: plain `wrk` (no rate, no latency bound, its cheapest
mode: a static request and no Lua per request) drives each target as fast as
it can, ROUNDS times interleaved, and ceiling.md gets the requests per second
each reached and their CPU per request. No rate can be held above that
ceiling, whatever the latency allowed.

The product's processes are found from `run/` (the local stack's runtime
directory, RUN_DIR).

With --pin, what one core buys, and no local stack needed: every server (each
nginx, one process a server CPU; each worker, one a server CPU) is pinned to
every CPU but the last, the generator to the last (`taskset`), and the stacks
are the three floors, **product** (the product's own workers, `python -m app`,
behind nginx :9008), **product-minimal** (the same program on workers of its
own, 127.0.0.1:8141, ..., behind nginx :9012 with a minimal proxy config,
loadtest/nginx-minimal.conf.template: the product's nginx.conf against the
least nginx in front of the same worker) and **rust**
(messense/fasttext-serving, one thread a process, `--rust`, default
loadtest/bin/fasttext-serving, behind nginx :9010, POST /predict with the
review as JSON). With one server CPU, each stack's worker is also driven
directly (`<stack>-direct`, no nginx; not product-minimal's, which
product-direct is).

One sweep misleads on a noisy machine, so --pin runs ROUNDS sweeps (--rounds,
default 5), each over every target at every rate, into RESULTS/round-K/, the
targets' order reversed every other round so that none always runs first.
plot.py then writes each round's pictures and summary.md, and RESULTS gets
rounds.json and a summary.md of the rounds (rounds.py): per rate, each
target's server CPU per request and p99 as median (min-max), the ratios issue
20 asks about (product-direct / rust-direct, product-direct / bare-direct,
product / rust, product / product-minimal) as medians of per-round ratios, and
the highest rate each held at p99 <= 10 ms, round by round.

    .venv/bin/python -m loadtest.floors --pin --results loadtest/report/percore --rates 3000,6000,12000

--only NAMES (a comma list of targets, any mode) measures just those and
starts only the stacks behind them:

    .venv/bin/python -m loadtest.floors --pin --results DIR --only product-direct,rust-direct,bare-direct

Without --pin a sweep is one run into RESULTS, unless --rounds says how many.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stacktools import localstack, nginxconf, ready

from loadtest import cpu, hdr, sweep

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# A worker's answer to the sweep's review, byte for byte the same length.
ANSWER = b'{"3 star":0.421944260597229}'

RAW_WSGI = f"""
import sys, bjoern
ANSWER = {ANSWER!r}
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(ANSWER)))]
def app(environ, start_response):
    environ["wsgi.input"].read()
    start_response("200 OK", HEADERS)
    return [ANSWER]
bjoern.run(app, "127.0.0.1", int(sys.argv[1]))
"""

# The same answer from a Falcon resource that reads the form as the product
# does, then answers a constant: the framework's share without the model.
FALCON_ONLY = """
import sys, bjoern, falcon
from app.media import FORM_HANDLER, JSON_HANDLER
def constant(req, resp):
    if req.content_length:
        req.get_media()
    resp.media = {"3 star": 0.421944260597229}
app = falcon.App()
app.req_options.media_handlers = falcon.media.Handlers(
    {falcon.MEDIA_JSON: JSON_HANDLER, falcon.MEDIA_URLENCODED: FORM_HANDLER})
app.resp_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: JSON_HANDLER})
app.add_sink(constant, "/")
bjoern.run(app, "127.0.0.1", int(sys.argv[1]))
"""

# name: (nginx port, its status port, the workers' first port, their program or
# None for nginx answering itself)
FLOORS = {
    "falcon": (9006, 9007, 8111, FALCON_ONLY),
    "bare": (9002, 9003, 8101, RAW_WSGI),
    "return": (9004, 9005, None, None),
}
# --pin's own stacks, started like the floors: the product, and the Rust peer
# (its program is a command; PORT is the worker's port).
PINNED = {
    "product": (9008, 9009, 8121, ["-m", "app"]),
    # The product's workers behind a minimal proxy (MINIMAL_CONF), no status port;
    # next to the product, so that the two run one after the other at each rate.
    "product-minimal": (9012, None, 8141, ["-m", "app"]),
    "rust": (9010, 9011, 8131, None),
}
# Stacks whose workers are not also driven directly: product-minimal's run the
# product's program, which product-direct measures already.
NO_DIRECT = {"product-minimal"}
MINIMAL_CONF = HERE / "nginx-minimal.conf.template"
RUST_BIN = ROOT / "loadtest" / "bin" / "fasttext-serving"
# The sweep's rounds with --pin unless --rounds says otherwise; --ceiling's rounds of wrk.
PIN_ROUNDS, CEILING_ROUNDS = 5, 2


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(c) for c in text.split()]


def nginx_pids(pid_file: Path) -> list[int]:
    master = int(pid_file.read_text())
    return [master, *children(master)]


def pid_ids(pids) -> list[str]:
    """Processes as cpu.py names them."""
    return [f"pid:{p}" for p in pids]


def nginx_settings(ports: tuple[int, int], answer_itself: bool, processes: str = "auto",
                   extra_route: str = "") -> dict[str, str]:
    """A stack's nginx: `ports` on loopback only, `processes` of it, `extra_route`
    public too (the Rust peer's), answering ANSWER itself on / if `answer_itself`."""
    return {"NGINX_PORT": str(ports[0]), "NGINX_STATUS_PORT": str(ports[1]),
            "NGINX_LISTEN_ADDR": "127.0.0.1", "NGINX_STATUS_ADDR": "127.0.0.1",
            "NGINX_WORKER_PROCESSES": str(processes), "NGINX_EXTRA_ROUTE": extra_route,
            "NGINX_ANSWER": ANSWER.decode() if answer_itself else ""}


def start_nginx(workdir: Path, name: str, ports: tuple[int, int], upstreams: list[str],
                answer_itself: bool, pin: list[str], processes: str) -> Path:
    d = workdir / name
    (d / "tmp").mkdir(parents=True)
    nginxconf.render(d, upstreams, **nginx_settings(ports, answer_itself, processes,
                                                     sweep.RUST_PATH if name == "rust" else ""))
    subprocess.run([*pin, "nginx", "-p", f"{d}/", "-c", str(d / "nginx.conf"), "-e", "stderr"], check=True)
    return d / "nginx.pid"


def minimal_conf(port: int, upstreams: list[str], processes: str) -> str:
    """MINIMAL_CONF filled in: nginx on 127.0.0.1:`port` proxying everything to
    `upstreams`, with the product's upstream keepalive (nginx/settings.env)."""
    keepalive = nginxconf.settings()["NGINX_UPSTREAM_KEEPALIVE"]
    return string.Template(MINIMAL_CONF.read_text()).substitute(
        processes=processes, listen=f"127.0.0.1:{port}", keepalive=keepalive,
        servers="\n".join(f"        server {u};" for u in upstreams))


def start_minimal_nginx(workdir: Path, name: str, port: int, upstreams: list[str],
                        pin: list[str], processes: str) -> Path:
    """nginx from MINIMAL_CONF: one location proxying everything to `upstreams`."""
    d = workdir / name
    (d / "tmp").mkdir(parents=True)
    (d / "nginx.conf").write_text(minimal_conf(port, upstreams, processes))
    subprocess.run([*pin, "nginx", "-p", f"{d}/", "-c", str(d / "nginx.conf"), "-e", "stderr"], check=True)
    return d / "nginx.pid"


def plan(stacks: dict, direct: bool) -> dict[str, str]:
    """Every target the stacks give, each with its stack: the stack's nginx
    (`name`) and, when `direct`, its workers without nginx (`name-direct`)."""
    targets = {}
    for name, (_, _, base_port, _) in stacks.items():
        targets[name] = name
        if direct and base_port is not None and name not in NO_DIRECT:
            targets[f"{name}-direct"] = name
    return targets


def select(available: dict[str, str], only: str) -> dict[str, str]:
    """The targets `only` names (comma list; empty: all of them), in `available`'s order."""
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SystemExit(f"--only: no target {', '.join(unknown)}; the targets: {', '.join(available)}")
    return {t: s for t, s in available.items() if not names or t in names}


def round_order(targets: list[str], k: int) -> list[str]:
    """Round k's (from 1) order of the targets: as given in odd rounds, reversed
    in even ones, so no target always runs first (or last) at a rate."""
    return list(targets) if k % 2 else list(reversed(targets))


def wait_ready(url: str, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    """Until `url` answers as sweep.ready() asks (GET /readyz; fasttext-serving: a POST)."""
    try:
        ready.wait_until_ready(lambda: sweep.ready(url), timeout, process=proc, what=url)
    except ready.NotReady as exc:
        died = proc is not None and proc.poll() is not None
        raise SystemExit(f"{exc}" + (f"; is bjoern importable by {sys.executable}? (make install, "
                                     "then .venv/bin/python)" if died else "")) from None


def ceiling(results: Path, workdir: Path, targets: dict[str, str], groups: dict[str, list[str]],
            duration: int, rounds: int, body: str, pin: list[str]) -> None:
    """Each target driven flat out by wrk, interleaved; a table of what each reached."""
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        f"wrk.body = {json.dumps(body)}\n")
    rows = ["| round | target | requests/s | CPU us/request |", "|---:|---|---:|---|"]
    for rnd in range(1, rounds + 1):
        for name, url in targets.items():
            mine = cpu.parts_of(groups, name)
            before = {part: cpu.usage_s(ids) for part, ids in mine.items()}
            gen_before = sweep.children_cpu_s()
            request = (sweep.generator_request(url, body, workdir) if sweep.is_rust(url)
                       else ["-s", str(script), url + "/inferreview"])
            out = subprocess.run([*pin, "wrk", "-t2", "-c64", f"-d{duration}s", *request],
                                 capture_output=True, text=True, check=True).stdout
            costs = {"wrk": sweep.children_cpu_s() - gen_before} | {
                part: cpu.usage_s(ids) - before[part] for part, ids in mine.items()}
            res = hdr.parse(out)
            if res.errors or not res.requests:
                raise SystemExit(f"{name}: wrk saw errors or no request:\n{out}")
            per = ", ".join(f"{k} {v / res.requests * 1e6:.1f}" for k, v in costs.items())
            rows.append(f"| {rnd} | {name} | {res.requests_per_sec:.0f} | {per} |")
            print(rows[-1], flush=True)
    (results / "ceiling.md").write_text(
        f"# Ceiling: `wrk -t2 -c64 -d{duration}s`, flat out, POST of the sweep's review\n\n"
        + "\n".join(rows) + "\n")


def product_pids(run: Path) -> tuple[list[int], list[int]]:
    """The local stack's workers and nginx processes."""
    try:
        supervisord = int((run / "supervisord.pid").read_text())
    except OSError:
        raise SystemExit(f"the local stack is not up ({run}): run `make local-up` first") from None
    # nginx by its pid file, not by a name in the command line: the project's
    # own path (a checkout named after nginx) would match that too.
    try:
        nginx = nginx_pids(run / "nginx" / "nginx.pid")
    except (OSError, ValueError):
        nginx = []
    workers = [pid for pid in children(supervisord) if pid not in nginx
               and b"app" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    if not workers or not nginx:
        raise SystemExit(f"no workers or no nginx under supervisord {supervisord}")
    return workers, nginx


def worker_command(name: str, program, port: int, rust: Path) -> tuple[list[str], dict]:
    """How to start one worker of a stack on `port`, and its environment."""
    if name == "rust":
        return [str(rust), "--model", str(ROOT / "models" / "amazon_review_full.ftz"),
                "--address", "127.0.0.1", "--port", str(port), "--workers", "1"], dict(os.environ)
    if isinstance(program, list):  # the product: its settings come from the environment
        return [sys.executable, *program], {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    return [sys.executable, "-c", program, str(port)], dict(os.environ)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", required=True)
    p.add_argument("--rates", default="8000,12000,16000,20000")
    p.add_argument("--duration", default="20s")
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--ceiling", action="store_true", help="wrk flat out instead of the sweep")
    p.add_argument("--rounds", type=int, default=None,
                   help=f"--ceiling: rounds of wrk (default {CEILING_ROUNDS}); the sweep: alternated rounds, "
                        f"each in RESULTS/round-K (default {PIN_ROUNDS} with --pin, else one sweep in RESULTS)")
    p.add_argument("--only", default="", help="comma list of the targets to measure (default: all)")
    p.add_argument("--pin", action="store_true",
                   help="servers on every CPU but the last, the generator on the last; own product and rust stacks")
    p.add_argument("--rust", type=Path, default=RUST_BIN, help="fasttext-serving's binary, for --pin")
    args = p.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (
        CEILING_ROUNDS if args.ceiling else PIN_ROUNDS if args.pin else None)
    if rounds is not None and rounds < 1:
        raise SystemExit("--rounds must be 1 or more")
    if rounds is not None and not args.ceiling and Path(args.results).is_dir() and any(
            Path(args.results).glob("round-*")):
        # plot.py summarizes every round-K/ it finds: an earlier measurement's would mix in
        raise SystemExit(f"{args.results} holds rounds already (round-K/): give an empty or new directory")

    started: list[subprocess.Popen] = []
    nginx_pid_files: list[Path] = []
    groups: dict[str, list[str]] = {}
    targets: dict[str, str] = {}
    stacks = dict(FLOORS)
    server_pin, gen_pin, processes, server_cpus = [], [], "auto", ""
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise SystemExit("--pin needs 2 CPUs or more: one for the generator")
        server_cpus = ",".join(map(str, cpus[:-1]))
        server_pin, gen_pin = ["taskset", "-c", server_cpus], ["taskset", "-c", str(cpus[-1])]
        args.workers = processes = len(cpus) - 1
        stacks |= PINNED
        wanted = select(plan(stacks, args.workers == 1), args.only)
        if "rust" in wanted.values() and not os.access(args.rust, os.X_OK):
            raise SystemExit(f"{args.rust} is missing: make rust-peer (or --rust PATH)")
    else:
        wanted = select({"product": "product"} | plan(stacks, False), args.only)
        if "product" in wanted:
            run = Path(os.environ.get("RUN_DIR") or ROOT / "run").resolve()
            product_workers, product_nginx = product_pids(run)
            groups = {"product-workers": pid_ids(product_workers), "product-nginx": pid_ids(product_nginx)}
            targets["product"] = nginxconf.settings(**localstack.nginx_addresses())["NGINX_URL"]
    with tempfile.TemporaryDirectory(prefix="floors-") as tmp:
        workdir = Path(tmp)
        try:
            for name, (port, status_port, base_port, program) in stacks.items():
                if name not in wanted.values():
                    continue  # nobody measures it
                path = sweep.RUST_PATH if name == "rust" else ""
                upstreams = ["127.0.0.1:1"]  # nginx needs one; `return` never uses it
                if base_port is not None:
                    workers = []
                    for wport in range(base_port, base_port + args.workers):
                        cmd, env = worker_command(name, program, wport, args.rust)
                        workers.append(subprocess.Popen([*server_pin, *cmd], env=env, cwd=ROOT))
                        started.append(workers[-1])
                        wait_ready(f"http://127.0.0.1:{wport}{path}", workers[-1])
                    upstreams = [f"127.0.0.1:{w}" for w in range(base_port, base_port + args.workers)]
                    groups[f"{name}-workers"] = pid_ids(w.pid for w in workers)
                    if f"{name}-direct" in wanted:
                        groups[f"{name}-direct-workers"] = groups[f"{name}-workers"]
                        targets[f"{name}-direct"] = f"http://127.0.0.1:{base_port}{path}"
                if name not in wanted:
                    continue  # only its workers are measured
                if name in NO_DIRECT:  # product-minimal
                    nginx_pid_files.append(start_minimal_nginx(workdir, name, port, upstreams, server_pin,
                                                               processes))
                else:
                    nginx_pid_files.append(start_nginx(workdir, name, (port, status_port), upstreams,
                                                       base_port is None, server_pin, processes))
                wait_ready(f"http://127.0.0.1:{port}{path}")
                groups[f"{name}-nginx"] = pid_ids(nginx_pids(nginx_pid_files[-1]))
                targets[name] = f"http://127.0.0.1:{port}{path}"
            targets = {t: targets[t] for t in wanted}  # in the plan's order
            if args.ceiling:
                results = Path(args.results)
                results.mkdir(parents=True, exist_ok=True)
                ceiling(results, workdir, targets, groups, sweep.seconds(args.duration), rounds,
                        sweep.DEFAULT_BODY, gen_pin)
                return 0
            cpu_groups = " ".join(f"{g}=" + ",".join(ids) for g, ids in groups.items())

            def run_sweep(results: str, order: list[str]) -> None:
                subprocess.run([*gen_pin, sys.executable, "-m", "loadtest.sweep", "--results", results,
                                "--rates", args.rates, "--duration", args.duration,
                                "--targets", " ".join(f"{n}={targets[n]}" for n in order),
                                "--cpu-groups", cpu_groups, "--server-cpus", server_cpus],
                               check=True, cwd=ROOT)
            if rounds is None:
                run_sweep(args.results, list(targets))
            else:
                for k in range(1, rounds + 1):
                    order = round_order(list(targets), k)
                    print(f"round {k}/{rounds}: {', '.join(order)}", flush=True)
                    run_sweep(str(Path(args.results) / f"round-{k}"), order)
            subprocess.run([sys.executable, "-m", "loadtest.plot", args.results], check=True, cwd=ROOT)
        finally:
            for pid_file in nginx_pid_files:
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(pid_file.read_text()), signal.SIGQUIT)
            for w in started:
                w.kill()
                w.wait()
            time.sleep(0.5)  # nginx's graceful quit, before its directory goes
    return 0


if __name__ == "__main__":
    sys.exit(main())
