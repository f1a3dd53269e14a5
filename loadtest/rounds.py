"""Medians and spread over a sweep's alternated rounds (floors.py --pin --rounds N).

One sweep results directory a round, RESULTS/round-K/ (K from 1), each as
sweep.py writes it (<target>/R<rate>.txt and .json). From them, for each rate:

- each target's server CPU per request (workers and nginx, the generator left
  out) and p99, as the median and the min-max over the rounds that ran it,
  and in how many of them it kept up (achieved >= 99 %, no errors);
- the ratios of RATIOS (issue 20's), each the median (min-max) of the
  per-round ratios, over the rounds that ran both targets at that rate;

and each target's highest rate held at p99 <= HELD_P99_MS, round by round,
with in how many rounds each was the highest. summarize() gives them as
data (rounds.json), markdown() as summary.md's tables; plot.py calls both
when RESULTS holds round-K/ directories.

    python3 -m loadtest.plot RESULTS      # RESULTS/round-1/, round-2/, ...
"""
from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

from loadtest import plot
from loadtest.sweep import HELD_P99_MS

ROUND_DIR = re.compile(r"round-(\d+)")
# (numerator, denominator): what issue 20 asks. The product's workers alone
# against the Rust peer's and the bare WSGI floor's; behind nginx, against the
# Rust peer's stack and against the same workers behind a minimal nginx.
RATIOS = [("product-direct", "rust-direct"), ("product-direct", "bare-direct"),
          ("product", "rust"), ("product", "product-minimal")]


def round_dirs(results: Path) -> dict[int, Path]:
    """RESULTS/round-K directories by K, in order."""
    found = {int(m[1]): d for d in results.iterdir() if d.is_dir() and (m := ROUND_DIR.fullmatch(d.name))}
    return dict(sorted(found.items()))


def load(results: Path) -> dict[int, dict[str, dict[int, dict]]]:
    """{round: plot.load(round-K)} for every round directory with saved runs."""
    return {k: runs for k, d in round_dirs(results).items() if (runs := plot.load(d))}


def server_cpu_us(run: dict) -> float | None:
    """Server CPU per request (every part but the generator's), unrounded."""
    parts = [v for k, v in run.get("cpu_us_per_request", {}).items() if k != "wrk2"]
    return sum(parts) if parts else None


def p99_ms(run: dict) -> float | None:
    res = run["result"]
    return res.percentile(99) if res.spectrum else None


def spread(per_round: dict[int, float | None], digits: int = 3) -> dict | None:
    """The median, min and max of the values present, and each round's."""
    values = [v for v in per_round.values() if v is not None]
    if not values:
        return None
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "n": len(values),
            "per_round": {str(k): (None if v is None else round(v, digits)) for k, v in per_round.items()}}


def _targets(rounds: dict[int, dict]) -> list[str]:
    """Every target of any round, in plot.py's order."""
    names = {t for runs in rounds.values() for t in runs}
    return sorted(names, key=lambda t: (plot.ORDER.index(t) if t in plot.ORDER else len(plot.ORDER), t))


def summarize(rounds: dict[int, dict[str, dict[int, dict]]]) -> dict:
    """The rounds' figures (rounds.json): see the module's docstring."""
    targets = _targets(rounds)
    cores = {run.get("server_cores") for runs in rounds.values() for by_rate in runs.values()
             for run in by_rate.values()}
    if len(cores) != 1:
        raise SystemExit(f"rounds pinned to different core counts ({cores}): one measurement a directory")
    rates = sorted({r for runs in rounds.values() for by_rate in runs.values() for r in by_rate})
    out: dict = {"rounds": list(rounds), "settings": plot._settings(next(iter(rounds.values()))),
                 "server_cores": cores.pop(), "held_p99_ms": HELD_P99_MS,
                 "targets": targets, "rates": {}, "held": {}}
    for rate in rates:
        def run_of(k: int, target: str, rate: int = rate) -> dict | None:
            return rounds[k].get(target, {}).get(rate)
        at: dict = {"targets": {}, "ratios": {}}
        for t in targets:
            ran = {k: run for k in rounds if (run := run_of(k, t))}
            if not ran:
                continue
            at["targets"][t] = {
                "rounds": len(ran),
                "kept_up": sum(plot._kept_up(run, rate) for run in ran.values()),
                "server_cpu_us": spread({k: server_cpu_us(run) for k, run in ran.items()}),
                "p99_ms": spread({k: p99_ms(run) for k, run in ran.items()})}
        for num, den in RATIOS:
            both = {k: (a, b) for k in rounds if (a := run_of(k, num)) and (b := run_of(k, den))}
            if not both:
                continue
            ratio = {}
            for what, of in (("server_cpu", server_cpu_us), ("p99", p99_ms)):
                per = {k: (of(a) / of(b) if of(a) is not None and of(b) else None) for k, (a, b) in both.items()}
                ratio[what] = spread(per, 4)
            at["ratios"][f"{num} / {den}"] = ratio
        out["rates"][str(rate)] = at
    for t in targets:
        per = {k: plot.held(runs[t]) for k, runs in rounds.items() if t in runs}  # None: held none
        counts: dict[str, int] = {}
        for h in sorted((h for h in per.values() if h), reverse=True):
            counts[str(h)] = counts.get(str(h), 0) + 1
        out["held"][t] = {"per_round": {str(k): h for k, h in per.items()}, "rounds": len(per),
                          "counts": counts, "none": sum(not h for h in per.values())}
    return out


def _cell(s: dict | None, fmt: str = ".1f") -> str:
    if not s:
        return "-"
    return f"{s['median']:{fmt}} ({s['min']:{fmt}}-{s['max']:{fmt}})"


def markdown(data: dict) -> str:
    """summary.md's tables for the rounds."""
    n, cores = len(data["rounds"]), data["server_cores"]
    per_core = f", per core: the servers pinned to {cores} CPU{'s' if cores != 1 else ''}" if cores else ""
    lines = [f"# Load-test summary: {n} round{'s' if n != 1 else ''}\n",
             f"Each round a sweep over every target at every rate (RESULTS/round-K/, its own summary.md "
             f"there), the targets' order reversed every other round{per_core}. Figures: median "
             "(min-max) over the rounds; a ratio is the median (min-max) of the per-round ratios. "
             "Server CPU: the workers' and nginx's, the generator's left out.\n",
             f"{data['settings']}.\n"]
    for rate, at in data["rates"].items():
        head = f"## {rate} req/s" + (f" ({int(rate) / cores:g} a core)" if cores and cores > 1 else "")
        lines += [head, "", "| target | rounds | kept up | server CPU us/request | p99 ms |",
                  "|---|---:|---:|---:|---:|"]
        for t, f in at["targets"].items():
            lines.append(f"| {t} | {f['rounds']} | {f['kept_up']} | {_cell(f['server_cpu_us'])} "
                         f"| {_cell(f['p99_ms'], '.2f')} |")
        if at["ratios"]:
            lines += ["", "| ratio | rounds | server CPU us/request | p99 |", "|---|---:|---:|---:|"]
            for name, r in at["ratios"].items():
                rounds = max((s["n"] for s in r.values() if s), default=0)
                lines.append(f"| {name} | {rounds} | {_cell(r['server_cpu'], '.2f')} | {_cell(r['p99'], '.2f')} |")
        lines.append("")
    lines += [f"## Highest rate held at p99 <= {data['held_p99_ms']:g} ms", "",
              "| target | per round | in how many rounds |", "|---|---|---|"]
    for t, h in data["held"].items():
        per = ", ".join(str(v) if v else "none" for v in h["per_round"].values())
        counts = [f"{rate}{f' ({int(rate) / cores:g} a core)' if cores and cores > 1 else ''}: {c}/{h['rounds']}"
                  for rate, c in h["counts"].items()]
        if h["none"]:
            counts.append(f"none: {h['none']}/{h['rounds']}")
        lines.append(f"| {t} | {per} | {', '.join(counts)} |")
    return "\n".join(lines) + "\n"


def write(results: Path, rounds: dict[int, dict[str, dict[int, dict]]]) -> list[Path]:
    """rounds.json and summary.md in RESULTS."""
    data = summarize(rounds)
    (results / "rounds.json").write_text(json.dumps(data, indent=1) + "\n")
    (results / "summary.md").write_text(markdown(data))
    return [results / "rounds.json", results / "summary.md"]
