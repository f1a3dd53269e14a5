"""Soak: a long constant-rate run against the compose stack, watching memory.

    .venv/bin/python -m loadtest.soak [--rate 9800] [--duration 10m] [--out loadtest/results/soak]

Runs the wrk2 container (loadtest/compose.yml, profile loadtest) for
DURATION at RATE (default: 70 % of the highest rate the default stack kept
up with in a sweep; loadtest/RESULTS.md says which) and, meanwhile, reads
every worker container's resident memory (VmRSS of its process, from the
host's /proc) once every SAMPLE seconds. Passes when no
request failed and every worker's RSS stayed within 5 % from minute 2 to the
end. Writes the generator's output, the samples and a verdict (soak.md).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from loadtest import hdr
from loadtest.sweep import DEFAULT_BODY, seconds

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

PROJECT = "reviewrating"
FLAT = 0.05


def workers() -> dict[str, int]:
    """{container name: host PID of its process} for every running worker."""
    ids = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
                          "--filter", "label=com.docker.compose.service=worker"],
                         capture_output=True, text=True, check=True).stdout.split()
    found = {}
    for cid in ids:
        name, pid = subprocess.run(["docker", "inspect", "-f", "{{.Name}} {{.State.Pid}}", cid],
                                   capture_output=True, text=True, check=True).stdout.split()
        found[name.lstrip("/")] = int(pid)
    return found


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=int, default=int(os.environ.get("SOAK_RATE") or 9800))
    p.add_argument("--duration", default=os.environ.get("SOAK_DURATION") or "10m")
    p.add_argument("--sample", type=float, default=float(os.environ.get("SOAK_SAMPLE") or 30))
    p.add_argument("--steady-from", type=float, default=120.0, help="seconds; RSS must be flat from here")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--out", default=str(ROOT / "loadtest" / "results" / "soak"))
    args = p.parse_args(argv)
    total = seconds(args.duration)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    pids = workers()
    if not pids:
        raise SystemExit("no worker container is running: `make up` first")
    print(f"soak: {args.rate} req/s for {args.duration} against nginx:9000, "
          f"{len(pids)} workers; RSS every {args.sample:g} s", flush=True)
    cmd = ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "-f", str(ROOT / "loadtest" / "compose.yml"),
           "--profile", "loadtest", "run", "--rm", "--entrypoint", "/loadtest/bin/wrk2",
           "wrk2", "-t1", f"-c{args.connections}", f"-d{args.duration}", f"-R{args.rate}", "-L",
           "--record-all", "http://nginx:9000/inferreview", DEFAULT_BODY]
    samples: list[dict] = []
    done = threading.Event()

    def sample():
        start = time.monotonic()
        while not done.is_set():
            t = time.monotonic() - start
            samples.append({"t": round(t, 1), **{n: rss_kb(pid) for n, pid in pids.items()}})
            print(f"  {t:5.0f} s  RSS kB: " + "  ".join(f"{n} {samples[-1][n]}" for n in pids), flush=True)
            done.wait(args.sample)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=total + 300)
    finally:
        done.set()
        sampler.join()
    (out / "wrk2.txt").write_text(run.stdout)
    (out / "rss.json").write_text(json.dumps(samples, indent=1) + "\n")
    if run.returncode != 0:
        raise SystemExit(f"the generator failed: {run.stderr[-2000:]}")
    res = hdr.parse(run.stdout)

    steady = [s for s in samples if s["t"] >= args.steady_from]
    verdicts, ok = [], res.errors == 0 and bool(steady)
    for name in pids:
        values = [s[name] for s in steady if s[name] is not None]
        if len(values) < len(steady) or not values:
            verdicts.append(f"| {name} | - | - | - | restarted or gone during the soak |")
            ok = False
            continue
        lo, hi, first = min(values), max(values), values[0]
        spread = (hi - lo) / first
        ok &= spread <= FLAT
        verdicts.append(f"| {name} | {first / 1024:.1f} | {lo / 1024:.1f} \N{EN DASH} {hi / 1024:.1f} | "
                        f"{100 * spread:.2f} % | {'flat' if spread <= FLAT else 'NOT flat'} |")
    report = "\n".join([
        "# Soak", "",
        f"{args.rate} req/s for {args.duration} (`loadtest/bin/wrk2 -t1 -c{args.connections} --record-all`), "
        f"RSS sampled every {args.sample:g} s.", "",
        f"- achieved {res.requests_per_sec} req/s, {res.requests} requests, errors {res.errors}",
        f"- latency p50 {res.percentile(50):.2f} ms, p99 {res.percentile(99):.2f} ms, "
        f"p99.9 {res.percentile(99.9):.2f} ms, max {res.spectrum[-1].value_ms:.2f} ms", "",
        f"| worker | RSS at {args.steady_from:g} s (MB) | range after (MB) | spread | verdict |",
        "|---|---:|---:|---:|---|", *verdicts, "",
        f"**{'PASS' if ok else 'FAIL'}**: zero errors and RSS within {100 * FLAT:g} % "
        f"from {args.steady_from:g} s to the end.", ""])
    (out / "soak.md").write_text(report)
    print(report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
