"""The Open Inference Protocol's infer route under load: Triton's perf_analyzer
beside our generator, at the same fixed rate, against the same server.

    make perf-analyzer        # once: perf_analyzer in loadtest/.perf-analyzer-venv
    .venv/bin/python -m loadtest.perf_analyzer --start-worker 8211 --rate 1000 --duration 10 --rounds 3
    .venv/bin/python -m loadtest.perf_analyzer --url http://127.0.0.1:8001 --pid PID --rate 1000

Runs, `rounds` times and alternated:

- **perf_analyzer** (`-i http --request-rate-range=RATE`, the review as its
  --input-data, binary tensor data as it sends by default) on POST
  /v2/models/MODEL/infer, for about `duration` seconds (its measurement
  windows, --max-trials of them, with no stability demanded: the figures are
  its last three windows');
- **perf_analyzer-json**: the same with `--input-tensor-format=json
  --output-tensor-format=json`, the request our generator sends;
- **wrk2-oip**: our generator (loadtest/bin/wrk2, sweep.py's request for the
  URL: the protocol's JSON, one BYTES text) on the same route at the same rate;
- **wrk2-form**: our generator on POST /inferreview with the form body.

For each: throughput, p50/p99 as the generator reports them, and the server's
CPU (utime + stime from /proc/PID/stat) per request it received (its GET
/metrics worker_requests_total before and after; the client's count for a
server without it). The server is the process PID, or with --start-worker
PORT a product worker (`python -m app`) this starts on the first CPU and
stops at the end; the generators run on the second CPU (taskset).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from stacktools import ready

from loadtest import cpu, hdr, sweep

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".perf-analyzer-venv"
MODEL_NAME = json.loads((ROOT / "models" / "amazon_review_full.json").read_text())["name"]
GENERATORS = ("perf_analyzer", "perf_analyzer-json", "wrk2-oip", "wrk2-form")


def perf_analyzer_command() -> tuple[Path, dict]:
    binary = VENV / "bin" / "perf_analyzer"
    libs = sorted(VENV.glob("lib/python3*/site-packages/nvidia/cuda_runtime/lib"))
    if not binary.exists() or not libs:
        raise SystemExit(f"{binary} is missing: make perf-analyzer")
    return binary, {**os.environ, "LD_LIBRARY_PATH": ":".join(map(str, libs))}


def cpu_s(pid: int) -> float:
    """utime + stime of the server process, in seconds (its threads included)."""
    used = cpu.usage_s([f"pid:{pid}"])
    if used is None:
        raise SystemExit(f"cannot read /proc/{pid}/stat: has the server exited?")
    return used


def served(url: str) -> int | None:
    """The worker's worker_requests_total, or None for a server without /metrics."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=3) as r:
            m = re.search(r"(?m)^worker_requests_total (\d+)", r.read().decode())
    except OSError:
        return None
    return int(m[1]) if m else None


def parse_perf_analyzer(out: str) -> dict:
    """Throughput, request count and latency percentiles (ms) from its Client section."""
    client = out.rsplit("Client:", 1)
    if len(client) != 2:
        # No stable measurement (its windows' throughputs too far apart): the last window's figures.
        passes = re.findall(r"Pass \[\d+\] throughput: ([\d.]+) infer/sec", out)
        return {"requests": 0, "achieved": float(passes[-1]) if passes else None, "p50_ms": None,
                "p99_ms": None, "delayed": None, "unstable": True}
    text = client[1]

    def number(pattern):
        m = re.search(pattern, text)
        return float(m[1]) if m else None

    return {"requests": int(number(r"Request count: (\d+)") or 0),
            "achieved": number(r"Throughput: ([\d.]+) infer/sec"),
            "p50_ms": (number(r"p50 latency: (\d+) usec") or 0) / 1000,
            "p99_ms": (number(r"p99 latency: (\d+) usec") or 0) / 1000,
            "delayed": number(r"([\d.]+)% of the requests were delayed") or 0.0}


def run_perf_analyzer(url: str, model: str, rate: int, duration: int, pin: list[str], workdir: Path,
                      asynchronous: bool = False, tensor_format: str = "binary") -> dict:
    binary, env = perf_analyzer_command()
    data = workdir / "input.json"
    data.write_text(json.dumps({"data": [{"text": {"content": [sweep.review_of(sweep.DEFAULT_BODY)],
                                                   "shape": [1]}}]}))
    windows = 3
    cmd = [*pin, str(binary), "-v", "-m", model, "-u", url.split("://", 1)[-1], "-i", "http",
           f"--request-rate-range={rate}", f"--measurement-interval={duration * 1000 // windows}",
           f"--max-trials={windows}", "--stability-percentage=999", f"--input-data={data}",
           "--max-threads=16", f"--input-tensor-format={tensor_format}",
           f"--output-tensor-format={tensor_format}", *(["--async"] if asynchronous else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration * 4 + 60)
    out = proc.stdout + proc.stderr
    (workdir / "perf_analyzer.txt").write_text(out)
    if "Client:" not in out and "Pass [" not in out:
        raise SystemExit(f"perf_analyzer failed ({proc.returncode}): {' '.join(cmd)}\n{out[-3000:]}")
    return parse_perf_analyzer(out)


def run_wrk2(url: str, rate: int, duration: int, pin: list[str], workdir: Path) -> dict:
    # wrk2 drops its first 10 s as calibration; the run is that much longer.
    cmd = [*pin, str(HERE / "bin" / "wrk2"), "-t1", "-c16", f"-d{duration + 10}s", f"-R{rate}", "-L",
           *sweep.generator_request(url, sweep.DEFAULT_BODY, workdir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    if proc.returncode:
        raise SystemExit(f"wrk2 failed ({proc.returncode}): {proc.stderr.strip()}")
    res = hdr.parse(proc.stdout)
    return {"requests": res.requests or 0, "achieved": res.requests_per_sec, "errors": res.errors,
            "p50_ms": res.percentile(50), "p99_ms": res.percentile(99), "delayed": None}


def measure(generator: str, base: str, model: str, pid: int, rate: int, duration: int, pin: list[str],
            workdir: Path, asynchronous: bool = False) -> dict:
    before_n, before_cpu = served(base), cpu_s(pid)
    if generator.startswith("perf_analyzer"):
        res = run_perf_analyzer(base, model, rate, duration, pin, workdir, asynchronous,
                                "json" if generator.endswith("-json") else "binary")
    elif generator == "wrk2-oip":
        res = run_wrk2(f"{base}/v2/models/{model}/infer", rate, duration, pin, workdir)
    else:
        res = run_wrk2(base, rate, duration, pin, workdir)
    cpu, after_n = cpu_s(pid) - before_cpu, served(base)
    # Every request the server received over the run (perf_analyzer's metadata
    # and warm-up too; less the /metrics read itself), else the client's count.
    n = after_n - before_n - 1 if before_n is not None and after_n is not None else res["requests"]
    return res | {"generator": generator, "rate": rate, "server_requests": n,
                  "server_cpu_us_per_request": cpu / n * 1e6 if n else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="the server, e.g. http://127.0.0.1:8001 (with --pid)")
    p.add_argument("--pid", type=int, help="the server's process, for its CPU time")
    p.add_argument("--start-worker", type=int, metavar="PORT", help="start a product worker on PORT instead")
    p.add_argument("--model", default=MODEL_NAME)
    p.add_argument("--rate", type=int, default=1000)
    p.add_argument("--duration", type=int, default=10, help="seconds measured per run")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--generators", default=",".join(GENERATORS))
    p.add_argument("--out", help="a JSON file for every run's figures")
    p.add_argument("--async", dest="asynchronous", action="store_true",
                   help="perf_analyzer's asynchronous calls (default: synchronous, its own default)")
    args = p.parse_args(argv)
    generators = [g for g in args.generators.split(",") if g]
    if set(generators) - set(GENERATORS):
        raise SystemExit(f"--generators: choose from {', '.join(GENERATORS)}")
    if any(g.startswith("perf_analyzer") for g in generators):
        perf_analyzer_command()
    if any(g.startswith("wrk2") for g in generators) and not os.access(HERE / "bin" / "wrk2", os.X_OK):
        raise SystemExit(f"{HERE / 'bin' / 'wrk2'} is missing: make generator")
    mine = sorted(os.sched_getaffinity(0))
    server_cpu, gen_cpu = str(mine[0]), str(mine[-1])
    pin = ["taskset", "-c", gen_cpu]
    worker = None
    if args.start_worker:
        args.url = f"http://127.0.0.1:{args.start_worker}"
        worker = subprocess.Popen(["taskset", "-c", server_cpu, sys.executable, "-m", "app"], cwd=ROOT,
                                  env={**os.environ, "HOST": "127.0.0.1", "PORT": str(args.start_worker)},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        args.pid = worker.pid
    if not args.url or not args.pid:
        raise SystemExit("give --url and --pid, or --start-worker PORT")
    base = args.url.rstrip("/")
    runs = []
    try:
        ready.wait_until_ready(lambda: sweep.ready(base), 60, process=worker, what=base)
        with tempfile.TemporaryDirectory(prefix="perf-analyzer-") as tmp:
            print(f"{'round':>5} {'generator':18} {'rate':>6} {'achieved':>9} {'p50 ms':>8} {'p99 ms':>8} "
                  f"{'server CPU us/req':>18}", flush=True)
            for rnd in range(1, args.rounds + 1):
                for g in generators:
                    r = measure(g, base, args.model, args.pid, args.rate, args.duration, pin, Path(tmp),
                                args.asynchronous)
                    runs.append(r | {"round": rnd})
                    cpu = r["server_cpu_us_per_request"]
                    p50, p99 = (f"{r[k]:8.2f}" if r[k] is not None else f"{'-':>8}" for k in ("p50_ms", "p99_ms"))
                    print(f"{rnd:5} {g:18} {args.rate:6} {r['achieved'] or 0:9.1f} {p50} {p99} {cpu or 0:18.1f}"
                          + (f"   ({r['delayed']:.0f}% of its requests delayed)" if r.get("delayed") else "")
                          + ("   (no stable measurement: its last window)" if r.get("unstable") else ""),
                          flush=True)
    finally:
        if worker is not None:
            ready.stop(worker)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(runs, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
