"""Parse wrk2 ``-L`` output (giltene/wrk2, or loadtest/bin/wrk2) into data.

Reads the "Detailed Percentile spectrum" block (HdrHistogram's classic text:
Value / Percentile / TotalCount / 1/(1-Percentile), values in ms) with its
``#[Mean ...]`` footer, and, when present, the header, the calibration lines,
the summary percentile lines, the request totals, ``Socket errors``,
``Non-2xx or 3xx responses`` and ``Requests/sec``. Files that hold only the
spectrum (shared/anchors/seed-latency/) parse too; missing parts are None/0.

    >>> r = parse_file("R2000-stall1s-run1.txt")
    >>> r.percentile(99.0), r.requests_per_sec, r.errors
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SpectrumPoint", "Wrk2Result", "parse", "parse_file", "to_ms"]

_TIME_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_BINARY_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
_METRIC_UNITS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+|inf|nan)"
_RE_SPECTRUM = re.compile(rf"^\s*({_NUM})\s+({_NUM})\s+(\d+)\s+({_NUM})\s*$", re.I)
_RE_FOOT_MEAN = re.compile(rf"^#\[Mean\s*=\s*({_NUM}),\s*StdDeviation\s*=\s*({_NUM})\]", re.I)
_RE_FOOT_MAX = re.compile(rf"^#\[Max\s*=\s*({_NUM}),\s*Total count\s*=\s*(\d+)\]")
_RE_FOOT_BUCKETS = re.compile(r"^#\[Buckets\s*=\s*(\d+),\s*SubBuckets\s*=\s*(\d+)\]")
_RE_RUNNING = re.compile(r"^Running (\S+) test @ (\S+)")
_RE_THREADS = re.compile(r"^\s*(\d+) threads and (\d+) connections")
_RE_CALIB = re.compile(r"^\s*Thread calibration: mean lat\.: ([\d.]+)ms, rate sampling interval: (\d+)ms")
_RE_SUMMARY_PCT = re.compile(r"^\s*(\d+\.\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$")
_RE_REQUESTS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)([KMGTP]?)B read")
_RE_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_RE_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_RE_RPS = re.compile(rf"^Requests/sec:\s*({_NUM})")
_RE_TPS = re.compile(r"^Transfer/sec:\s*([\d.]+)([KMGTP]?)B")
_RE_STATS = re.compile(r"^\s*(Latency|Req/Sec)\s+([\d.]+)(\w*)\s+([\d.]+)(\w*)\s+([\d.]+)(\w*)\s+([\d.]+)%")


def to_ms(number: str | float, unit: str) -> float:
    """A wrk time ("917.50", "ms") in milliseconds."""
    return float(number) * _TIME_UNITS_MS[unit]


@dataclass(frozen=True)
class SpectrumPoint:
    value_ms: float      # highest value equivalent to the bucket reached, ms
    percentile: float    # 0.0 .. 1.0 (a fraction, as printed)
    total_count: int     # samples at or below value_ms
    inverse: float       # 1/(1-percentile); inf on the 100% line


@dataclass
class Wrk2Result:
    spectrum: list[SpectrumPoint] = field(default_factory=list)
    mean_ms: float | None = None          # footer of the spectrum
    stddev_ms: float | None = None
    max_ms: float | None = None
    total_count: int | None = None        # samples in the histogram
    buckets: int | None = None
    sub_buckets: int | None = None
    duration: str | None = None           # "20s", from "Running 20s test @ URL"
    url: str | None = None
    threads: int | None = None
    connections: int | None = None
    calibration: list[tuple[float, int]] = field(default_factory=list)  # (mean ms, interval ms)
    latency_stats: dict | None = None     # Thread Stats "Latency": avg/stdev/max ms, within %
    summary_percentiles: dict[float, float] = field(default_factory=dict)  # 99.0 -> ms
    requests: int | None = None           # "N requests in T, B read"
    runtime_s: float | None = None
    bytes_read: float | None = None       # approximate: printed with 2 decimals
    requests_per_sec: float | None = None
    transfer_per_sec: float | None = None  # bytes/s, approximate
    socket_errors: dict[str, int] = field(
        default_factory=lambda: {"connect": 0, "read": 0, "write": 0, "timeout": 0})
    non_2xx_3xx: int = 0

    @property
    def errors(self) -> int:
        """All errors: socket errors plus non-2xx/3xx responses."""
        return sum(self.socket_errors.values()) + self.non_2xx_3xx

    def percentile(self, p: float, interpolate: bool = True) -> float:
        """Latency (ms) at percentile p (0..100), read off the spectrum.

        The rank wanted is HdrHistogram's: max(1, round(p/100 * total)). The
        first spectrum line whose TotalCount reaches it bounds the answer from
        above (exact when the histogram bucket holding that rank was printed);
        with interpolate, the value is interpolated linearly on TotalCount from
        the line before (wrk2's own summary lines, when printed, are in
        summary_percentiles)."""
        if not self.spectrum:
            raise ValueError("no percentile spectrum in this output")
        total = self.spectrum[-1].total_count
        want = max(1, math.floor(min(p, 100.0) / 100.0 * total + 0.5))
        prev = None
        for point in self.spectrum:
            if point.total_count >= want:
                if not interpolate or prev is None or point.total_count == prev.total_count:
                    return point.value_ms
                frac = (want - prev.total_count) / (point.total_count - prev.total_count)
                return prev.value_ms + frac * (point.value_ms - prev.value_ms)
            prev = point
        return self.spectrum[-1].value_ms


def _num(s: str) -> float:
    return float(s)  # float() reads "inf"/"nan" too


def parse(text: str) -> Wrk2Result:
    """Parse the text of one wrk2 run (stdout)."""
    r = Wrk2Result()
    in_spectrum = False
    for raw in text.splitlines():
        line = raw.rstrip()
        if "Detailed Percentile spectrum" in line:
            in_spectrum = True
            continue
        if in_spectrum:
            m = _RE_SPECTRUM.match(line)
            if m:
                r.spectrum.append(SpectrumPoint(_num(m[1]), _num(m[2]), int(m[3]), _num(m[4])))
                continue
            if not line.strip() or ("Value" in line and "Percentile" in line):
                continue
            in_spectrum = False  # fall through: footer or the lines after it
        if m := _RE_FOOT_MEAN.match(line):
            r.mean_ms, r.stddev_ms = _num(m[1]), _num(m[2])
        elif m := _RE_FOOT_MAX.match(line):
            r.max_ms, r.total_count = _num(m[1]), int(m[2])
        elif m := _RE_FOOT_BUCKETS.match(line):
            r.buckets, r.sub_buckets = int(m[1]), int(m[2])
        elif m := _RE_RUNNING.match(line):
            r.duration, r.url = m[1], m[2]
        elif m := _RE_THREADS.match(line):
            r.threads, r.connections = int(m[1]), int(m[2])
        elif m := _RE_CALIB.match(line):
            r.calibration.append((float(m[1]), int(m[2])))
        elif m := _RE_STATS.match(line):
            if m[1] == "Latency":
                r.latency_stats = {
                    "avg_ms": to_ms(m[2], m[3] or "us"), "stdev_ms": to_ms(m[4], m[5] or "us"),
                    "max_ms": to_ms(m[6], m[7] or "us"), "within_stdev_pct": float(m[8])}
        elif m := _RE_SUMMARY_PCT.match(line):
            r.summary_percentiles[float(m[1])] = to_ms(m[2], m[3])
        elif m := _RE_REQUESTS.match(line):
            r.requests = int(m[1])
            r.runtime_s = to_ms(m[2], m[3]) / 1e3
            r.bytes_read = float(m[4]) * _BINARY_UNITS[m[5]]
        elif m := _RE_SOCKET.search(line):
            r.socket_errors = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()), strict=True))
        elif m := _RE_NON2XX.search(line):
            r.non_2xx_3xx = int(m[1])
        elif m := _RE_RPS.match(line):
            r.requests_per_sec = _num(m[1])
        elif m := _RE_TPS.match(line):
            r.transfer_per_sec = float(m[1]) * _BINARY_UNITS[m[2]]
    if r.total_count is None and r.spectrum:
        r.total_count = r.spectrum[-1].total_count
    return r


def parse_file(path: str | Path) -> Wrk2Result:
    return parse(Path(path).read_text())


if __name__ == "__main__":  # python -m loadtest.hdr FILE...: one summary line per file
    import sys

    for name in sys.argv[1:]:
        res = parse_file(name)
        pct = " ".join(f"p{p:g}={res.percentile(p):.3f}ms" for p in (50, 90, 99, 99.9)) \
            if res.spectrum else "no spectrum"
        rate = "" if res.requests_per_sec is None else f" rate={res.requests_per_sec:.2f}/s"
        print(f"{name}: n={res.total_count} {pct}{rate} errors={res.errors}")
