"""Generators side by side against the running local stack (`make local-up`):
each one's CPU per request (user + sys from /usr/bin/time, over the requests it
reports), the server's (nginx + workers, /proc/PID/stat), achieved rate and
p50/p90/p99, the generators alternated within each round.

    .venv/bin/python -m loadtest.compare_generators --out DIR \\
        --gen new=loadtest/bin/wrk2 --gen old=/tmp/old-wrk2 --gen real=/tmp/wrk2/wrk \\
        --rates 3000,6000,8000 --rounds 2
    ... --stall --rates 2000   # workers SIGSTOPped 1 s at 10 s of each run
    .venv/bin/python -m loadtest.compare_generators --out DIR --summary   # DIR/summary.md

A generator named `real` (giltene/wrk2) gets the body through a wrk script
(-s), as it takes no positional body; the others take it positionally.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from loadtest import floors, hdr

ROOT = Path(__file__).resolve().parent.parent

BODY = "text=I+love+this+product.+It+works+great+and+arrived+on+time."
URL = "http://127.0.0.1:9000/inferreview"
TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pids) -> float:
    total = 0
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def run(name, path, rate, args, out: Path, tag, script, workers, nginx):
    cmd = [path, "-t1", "-c64", f"-d{args.duration}s", f"-R{rate}", "-L", URL]
    cmd += ["-s", script] if name == "real" else [BODY]
    tfile = out / f"{name}_R{rate}_{tag}.time"
    server_before = proc_cpu_s(workers + nginx)
    stall = None
    if args.stall:
        def stop():
            time.sleep(10)
            for p in workers:
                os.kill(p, 19)
            time.sleep(1)
            for p in workers:
                os.kill(p, 18)
        stall = threading.Thread(target=stop)
        stall.start()
    proc = subprocess.run(["/usr/bin/time", "-f", "%U %S", "-o", str(tfile), *cmd],
                          capture_output=True, text=True, timeout=args.duration + 60)
    if stall:
        stall.join()
    server_s = proc_cpu_s(workers + nginx) - server_before
    (out / f"{name}_R{rate}_{tag}.txt").write_text(proc.stdout)
    if proc.returncode:
        raise SystemExit(f"{name} failed: {proc.stderr}")
    user, sys_ = (float(x) for x in tfile.read_text().split()[-2:])
    r = hdr.parse(proc.stdout)
    row = {"gen": name, "rate": rate, "run": tag, "requests": r.requests, "achieved": r.requests_per_sec,
           "errors": r.errors, "user_s": user, "sys_s": sys_,
           "gen_us_per_req": round((user + sys_) / r.requests * 1e6, 1),
           "server_us_per_req": round(server_s / r.requests * 1e6, 1),
           "p50_ms": r.percentile(50), "p90_ms": r.percentile(90), "p99_ms": r.percentile(99),
           "p99.9_ms": r.percentile(99.9)}
    print(json.dumps(row), flush=True)
    return row


def summary(out: Path) -> str:
    """Tables of every run in runs.jsonl and stall.jsonl, and the ratios the issue asks for."""
    lines = []
    for kind in ("runs", "stall"):
        f = out / f"{kind}.jsonl"
        if not f.exists():
            continue
        rows = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        lines += [f"## {'Stall: workers SIGSTOPped 1 s at 10 s' if kind == 'stall' else 'Runs'}", "",
                  "| rate | run | generator | achieved | gen CPU us/req | server CPU us/req "
                  "| p50 ms | p90 ms | p99 ms | p99.9 ms | errors |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(rows, key=lambda r: (r["rate"], r["run"], r["gen"])):
            lines.append(f"| {r['rate']} | {r['run']} | {r['gen']} | {r['achieved']:.2f} | {r['gen_us_per_req']} "
                         f"| {r['server_us_per_req']} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['p99_ms']:.2f} "
                         f"| {r['p99.9_ms']:.2f} | {r['errors']} |")
        lines.append("")
        if kind == "runs":
            lines += ["Generator CPU per request, new over old and new over real, per round "
                      "(the generators alternated within each round):", "",
                      "| rate | run | new / old | new / real |", "|---|---|---|---|"]
            by = {(r["rate"], r["run"], r["gen"]): r["gen_us_per_req"] for r in rows}
            for rate, run_, gen in sorted(by):
                if gen != "new":
                    continue
                old, real = by.get((rate, run_, "old")), by.get((rate, run_, "real"))
                new = by[(rate, run_, gen)]
                lines.append(f"| {rate} | {run_} | {new / old:.2f} | {new / real:.2f} |" if old and real else "")
            lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--gen", action="append", default=[], help="name=path")
    ap.add_argument("--rates", default="3000,6000,8000")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--first-round", type=int, default=1)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--stall", action="store_true")
    ap.add_argument("--summary", action="store_true", help="only write DIR/summary.md from the saved runs")
    args = ap.parse_args()
    out = Path(args.out)
    if args.summary:
        (out / "summary.md").write_text(summary(out))
        return
    out.mkdir(parents=True, exist_ok=True)
    gens = [g.split("=", 1) for g in args.gen]
    workers, nginx = floors.product_pids(ROOT / "run")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(f'wrk.method = "POST"\nwrk.body = "{BODY}"\n'
                'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n')
        script = f.name
    rows = []
    for rnd in range(args.first_round, args.first_round + args.rounds):
        order = gens if rnd % 2 else gens[::-1]  # alternate who goes first
        for rate in (int(x) for x in args.rates.split(",")):
            for name, path in order:
                tag = ("stall" if args.stall else "run") + str(rnd)
                rows.append(run(name, path, rate, args, out, tag, script, workers, nginx))
                time.sleep(2)
    with (out / ("stall.jsonl" if args.stall else "runs.jsonl")).open("a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
