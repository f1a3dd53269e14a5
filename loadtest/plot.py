"""Pictures and a summary table from a sweep's saved spectra (sweep.py).

    python3 -m loadtest.plot [RESULTS]            # default: loadtest/results

RESULTS may instead hold one sweep a round, RESULTS/round-K/ (floors.py
--pin --rounds N): then each round gets its own pictures and summary.md as
below, and RESULTS gets rounds.json and a summary.md of the rounds' medians,
spread and ratios (rounds.py).

Writes into RESULTS:
  latency-<target>.png   latency by percentile, one line per rate
  compare-R<rate>.png    every target at one rate (bjoern vs gunicorn vs granian)
  summary.md             rate asked/achieved, p50/p90/p99/p99.9/max, errors,
                         CPU per request, and side by side: the highest rate
                         each target kept up with, the highest at p99 <=
                         HELD_P99_MS, worker CPU per request at a common rate,
                         with ratios to the first target (bjoern); for a
                         pinned sweep (`make loadtest PIN=1`), a per-core table:
                         server CPU per request and the highest rate held
                         at p99 <= HELD_P99_MS, per core

The percentile axis is 1/(1-p) on a log scale, as HdrHistogram plots are drawn,
so the tail (99 %, 99.9 %, ...) gets as much room as the median.
"""
from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.ticker import FixedLocator, FuncFormatter

from loadtest import hdr
from loadtest.sweep import HELD_P99_MS

HERE = Path(__file__).resolve().parent

# The product first (ratios are to it), then what a user might pick instead.
ORDER = ["bjoern", "bjoern-direct", "product", "product-direct", "product-minimal", "rust", "rust-direct",
         "gunicorn", "granian"]
PER_CORE_RATE = 3000  # the per-core table compares CPU at this rate a core, where all keep up


def load(results: Path) -> dict[str, dict[int, dict]]:
    """{target: {rate: {"result": Wrk2Result, **info}}} for every saved run."""
    runs: dict[str, dict[int, dict]] = {}
    for txt in sorted(results.glob("*/R*.txt")):
        m = re.fullmatch(r"R(\d+)\.txt", txt.name)
        if not m:
            continue
        res = hdr.parse_file(txt)
        if not res.spectrum:
            continue
        info_file = txt.with_suffix(".json")
        info = json.loads(info_file.read_text()) if info_file.is_file() else {}
        runs.setdefault(txt.parent.name, {})[int(m[1])] = {"result": res, **info}
    return dict(sorted(runs.items(), key=lambda kv: (ORDER.index(kv[0]) if kv[0] in ORDER
                                                     else len(ORDER), kv[0])))


def _axes(title: str):
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [1, 2, 10, 100, 1000, 10000, 100000]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda x, _: f"{100 * (1 - 1 / x):.{max(0, round(math.log10(x)) - 2)}f}%"))
    ax.xaxis.set_minor_locator(FixedLocator([]))
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.4)
    return fig, ax


def _curve(ax, res: hdr.Wrk2Result, label: str, **kw):
    pts = [p for p in res.spectrum if p.percentile < 1.0]
    xs = [1 / (1 - p.percentile) for p in pts]
    ys = [max(p.value_ms, 1e-3) for p in pts]
    ax.plot(xs, ys, label=label, linewidth=1.4, **kw)


def _settings(runs: dict[str, dict[int, dict]]) -> str:
    any_run = next(iter(next(iter(runs.values())).values()))
    res = any_run["result"]
    return f"wrk2 -t{res.threads} -c{res.connections} -d{res.duration}, corrected for coordinated omission"


def _save(fig, ax, path: Path) -> Path:
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot(results: Path, runs: dict[str, dict[int, dict]]) -> list[Path]:
    made = []
    settings = _settings(runs)
    for target, by_rate in runs.items():
        fig, ax = _axes(f"{target}: latency by percentile\n{settings}")
        for rate, run in sorted(by_rate.items()):
            _curve(ax, run["result"], f"{rate} req/s (achieved {run['result'].requests_per_sec or 0:.0f})")
        made.append(_save(fig, ax, results / f"latency-{target}.png"))
    rates = sorted({r for by_rate in runs.values() for r in by_rate})
    for rate in rates:
        here = {t: by_rate[rate] for t, by_rate in runs.items() if rate in by_rate}
        if len(here) < 2:
            continue
        fig, ax = _axes(f"{' vs '.join(here)} at {rate} req/s\n{settings}")
        for target, run in here.items():
            _curve(ax, run["result"], f"{target} (achieved {run['result'].requests_per_sec or 0:.0f})")
        made.append(_save(fig, ax, results / f"compare-R{rate}.png"))
    return made


def _kept_up(run: dict, rate: int) -> bool:
    res = run["result"]
    return (res.requests_per_sec or 0) >= 0.99 * rate and res.errors == 0


def held(by_rate: dict[int, dict], p99_ms: float | None = HELD_P99_MS) -> int | None:
    """The highest rate kept up with (achieved >= 99 % of it, no errors) and,
    unless p99_ms is None, with p99 <= p99_ms."""
    ok = [r for r, run in by_rate.items() if _kept_up(run, r)
          and (p99_ms is None or run["result"].percentile(99) <= p99_ms)]
    return max(ok) if ok else None


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def summary(runs: dict[str, dict[int, dict]]) -> str:
    lines = ["# Load-test summary\n", f"{_settings(runs)}.\n",
             "| target | rate asked | achieved | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms "
             "| errors | CPU us/request |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    rates = sorted({r for by_rate in runs.values() for r in by_rate})
    for rate in rates:
        for target, by_rate in runs.items():
            if rate not in by_rate:
                continue
            run, res = by_rate[rate], by_rate[rate]["result"]
            cpu = ", ".join(f"{k} {v:g}" for k, v in run.get("cpu_us_per_request", {}).items()) or "-"
            lines.append(
                f"| {target} | {rate} | {res.requests_per_sec or 0:.0f} | {res.percentile(50):.2f} "
                f"| {res.percentile(90):.2f} | {res.percentile(99):.2f} | {res.percentile(99.9):.2f} "
                f"| {res.spectrum[-1].value_ms:.2f} | {res.errors} | {cpu} |")
    first_name = next(iter(runs))
    first = runs[first_name]
    # The rate every target kept up with, to compare CPU at the same load.
    common = [r for r in rates if all(r in b and _kept_up(b[r], r) for b in runs.values())]
    at = max(common) if common else None
    lines += ["", "Side by side (ratios: the first target's figure over the other's, "
              "or the other's CPU over the first's; above 1 means the first is better):", "",
              f"| target | highest rate kept up (achieved >= 99 %, no errors) | ratio "
              f"| highest rate at p99 <= {HELD_P99_MS:g} ms | ratio "
              f"| worker CPU us/request at {at or '-'} req/s | ratio |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    def worker_cpu(by_rate):
        return by_rate[at].get("cpu_us_per_request", {}).get("workers") if at else None
    for target, by_rate in runs.items():
        k, h, c = held(by_rate, None), held(by_rate), worker_cpu(by_rate)
        same = target == first_name
        lines.append(
            f"| {target} | {k or 'none'} | {'-' if same else _ratio(held(first, None), k)} "
            f"| {h or 'none'} | {'-' if same else _ratio(held(first), h)} "
            f"| {c if c is not None else '-'} | {'-' if same else _ratio(c, worker_cpu(first))} |")
    cores = {run.get("server_cores") for by_rate in runs.values() for run in by_rate.values()}
    if cores == {None}:
        return "\n".join(lines) + "\n"
    if len(cores) != 1 or None in cores:
        raise SystemExit(f"runs pinned to different core counts ({cores}): one sweep's results a directory")
    return "\n".join(lines + per_core(runs, cores.pop())) + "\n"


def server_cpu(run: dict) -> float | None:
    """CPU per request of the server side (workers and nginx), the generator left out."""
    parts = {k: v for k, v in run.get("cpu_us_per_request", {}).items() if k != "wrk2"}
    return round(sum(parts.values()), 1) if parts else None


def per_core(runs: dict[str, dict[int, dict]], cores: int) -> list[str]:
    """What one core buys each target: servers pinned to `cores` CPUs, the generator apart."""
    rates = sorted({r for by_rate in runs.values() for r in by_rate})
    common = [r for r in rates if all(r in b and _kept_up(b[r], r) for b in runs.values())]
    at = PER_CORE_RATE * cores if PER_CORE_RATE * cores in common else max(common, default=None)
    first_name = next(iter(runs))
    first = runs[first_name]
    def cpu_at(by_rate):
        return server_cpu(by_rate[at]) if at else None
    def per(rate):
        return rate / cores if rate else None
    lines = ["", f"Per core (the servers pinned to {cores} CPU{'s' if cores > 1 else ''}, the generator "
             "to the others; ratios as above):", "",
             f"| target | server CPU us/request at {f'{per(at):g}' if at else '-'} req/s a core | ratio "
             f"| highest rate a core at p99 <= {HELD_P99_MS:g} ms | ratio |",
             "|---|---:|---:|---:|---:|"]
    for target, by_rate in runs.items():
        c, h = cpu_at(by_rate), per(held(by_rate))
        same = target == first_name
        lines.append(f"| {target} | {c if c is not None else '-'} | {'-' if same else _ratio(c, cpu_at(first))} "
                     f"| {f'{h:g}' if h else 'none'} | {'-' if same else _ratio(per(held(first)), h)} |")
    return lines


def main(argv: list[str]) -> int:
    results = Path(argv[1]) if len(argv) > 1 else HERE / "results"
    from loadtest import rounds  # it imports this module
    if rounds.round_dirs(results):
        by_round = rounds.load(results)
        if not by_round:
            print(f"no saved runs under {results}/round-K/<target>/R<rate>.txt", file=sys.stderr)
            return 1
        for k in by_round:
            main([argv[0], str(results / f"round-{k}")])
        for path in rounds.write(results, by_round):
            print(f"wrote {path}")
        return 0
    runs = load(results)
    if not runs:
        print(f"no saved runs under {results}/<target>/R<rate>.txt: run the sweep first", file=sys.stderr)
        return 1
    made = plot(results, runs)
    (results / "summary.md").write_text(summary(runs))
    for path in [*made, results / "summary.md"]:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
