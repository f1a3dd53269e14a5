"""Tests of loadtest/hdr.py on real wrk2 output (../shared/anchors) and of the
generator loadtest/bin/wrk2 (loadtest/generator, built by `make generator`) in
short live runs against a local HTTP server."""
import itertools
import math
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from loadtest import hdr
from tests.paths import ROOT, shared_file
from tests.reference import STALL_PERCENTILES_MS

HERE = ROOT / "loadtest"

SAMPLES = HERE / "samples"
GEN = HERE / "bin" / "wrk2"


@pytest.fixture(scope="module")
def gen():
    """The generator, built (or found up to date) by the project's Makefile."""
    subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "generator"], check=True, timeout=900)
    return str(GEN)


def STALL(name):  # noqa: N802 - reads like the directory it stands for
    return shared_file("anchors", "wrk2-stall", name)


def SEED(name):  # noqa: N802
    return shared_file("anchors", "seed-latency", name)


def check_spectrum(r: hdr.Wrk2Result):
    """Invariants of any HdrHistogram percentile spectrum."""
    assert len(r.spectrum) > 20
    first, last = r.spectrum[0], r.spectrum[-1]
    assert first.percentile == 0.0 and first.total_count >= 1 and first.inverse == 1.0
    assert last.percentile == 1.0 and math.isinf(last.inverse)
    assert last.total_count == r.total_count
    for a, b in itertools.pairwise(r.spectrum):
        assert b.value_ms >= a.value_ms
        assert b.percentile >= a.percentile
        assert b.total_count >= a.total_count
    for p in r.spectrum[:-1]:  # percentiles are printed to 6 decimals: +-5e-7
        assert p.inverse == pytest.approx(1 / (1 - p.percentile), abs=0.01 + 6e-7 * p.inverse**2)
    assert r.buckets == 27 and r.sub_buckets == 2048
    assert r.mean_ms is not None and r.stddev_ms is not None
    # Max is the lowest value of the top bucket; the last line its highest.
    assert r.max_ms <= last.value_ms < r.max_ms * 1.001 + 0.001


@pytest.mark.parametrize("name", ["R2000-stall1s-run1.txt", "R2000-stall1s-run2.txt"])
def test_stall_anchor(name):
    r = hdr.parse_file(STALL(name))
    check_spectrum(r)
    assert (r.duration, r.url) == ("20s", "http://127.0.0.1:9000/inferreview")
    assert (r.threads, r.connections) == (1, 64)
    assert len(r.calibration) == 1 and r.calibration[0][1] == 10
    assert r.requests == 39716 and r.runtime_s == 20.0
    assert r.requests_per_sec in (1985.69, 1985.68)
    assert r.transfer_per_sec == pytest.approx(354.87 * 1024, rel=1e-3)
    assert r.errors == 0 and r.non_2xx_3xx == 0
    assert r.total_count in (20016, 19994)
    assert sorted(r.summary_percentiles) == [50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 99.999, 100.0]
    for p, want in STALL_PERCENTILES_MS.items():
        assert r.summary_percentiles[p] == pytest.approx(want, rel=0.05)
        assert r.percentile(p) == pytest.approx(want, rel=0.05)
    assert r.latency_stats["max_ms"] == pytest.approx(1010)
    assert r.latency_stats["avg_ms"] == pytest.approx(r.mean_ms, abs=0.01)


def test_stall_anchor_exact_lines():
    r = hdr.parse_file(STALL("R2000-stall1s-run1.txt"))
    assert r.spectrum[0] == hdr.SpectrumPoint(0.156, 0.0, 1, 1.0)
    assert r.spectrum[5] == hdr.SpectrumPoint(1.098, 0.5, 10011, 2.0)
    assert (r.mean_ms, r.stddev_ms, r.max_ms) == (55.934, 184.258, 1006.592)
    # rank 10008 of 20016 lies in the bucket printed on the 50% line: exact
    assert r.percentile(50, interpolate=False) == 1.098
    assert r.percentile(100) == 1007.103
    assert r.percentile(0) == 0.156


def test_nostall_anchor():
    r = hdr.parse_file(STALL("R16000-nostall-bjoern-naive.txt"))
    check_spectrum(r)
    assert r.requests == 317490 and r.requests_per_sec == 15873.66
    assert r.summary_percentiles[99.0] == pytest.approx(4.04)
    assert r.percentile(99) == pytest.approx(4.04, rel=0.02)
    assert r.latency_stats["stdev_ms"] == pytest.approx(0.83567)


@pytest.mark.parametrize("name", ["5000", "10000", "15000", "20000", "25000", "bjoern", "gunicorn"])
def test_seed_latency_anchors(name):
    """Spectrum-only files (no header or totals; some lack a final newline)."""
    r = hdr.parse_file(SEED(name))
    check_spectrum(r)
    assert r.requests is None and r.requests_per_sec is None and r.errors == 0
    assert r.percentile(50) <= r.percentile(99) <= r.percentile(100)


def test_seed_values():
    r = hdr.parse_file(SEED("5000"))
    assert r.total_count == 97473 and r.mean_ms == 2.018
    assert r.percentile(99.9) == pytest.approx(5.3, rel=0.01)
    g = hdr.parse_file(SEED("gunicorn"))
    assert g.total_count == 157072 and g.percentile(100) == 28999.679


def test_errors_and_units():
    text = """Running 1m test @ http://127.0.0.1:9000/x
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   835.67us  1.20ms   1.50s    91.00%
    Req/Sec     1.00k   10.00     1.10k    50.00%
  Latency Distribution (HdrHistogram - Recorded Latency)
 50.000%  835.00us
 99.000%    1.50s
100.000%    2.00m

  Detailed Percentile spectrum:
       Value   Percentile   TotalCount 1/(1-Percentile)

       0.100     0.000000            1         1.00
       0.900     0.500000            5         2.00
  120000.000     1.000000           10          inf
#[Mean    =        1.000, StdDeviation   =        1.000]
#[Max     =   119996.416, Total count    =           10]
#[Buckets =           27, SubBuckets     =         2048]
----------------------------------------------------------
  60000 requests in 1.00m, 10.50MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 57
Requests/sec:   1000.00
Transfer/sec:    179.20KB
"""
    r = hdr.parse(text)
    assert r.duration == "1m" and (r.threads, r.connections) == (2, 8)
    assert r.socket_errors == {"connect": 1, "read": 2, "write": 3, "timeout": 4}
    assert r.non_2xx_3xx == 57 and r.errors == 67
    assert r.summary_percentiles == {50.0: 0.835, 99.0: 1500.0, 100.0: 120000.0}
    assert r.latency_stats["avg_ms"] == pytest.approx(0.83567)
    assert r.runtime_s == 60.0 and r.requests == 60000
    assert r.bytes_read == pytest.approx(10.5 * 2**20)
    assert r.transfer_per_sec == pytest.approx(179.2 * 1024)
    assert [p.total_count for p in r.spectrum] == [1, 5, 10]
    assert r.percentile(50, interpolate=False) == 0.9


def test_no_spectrum():
    r = hdr.parse("Requests/sec:   12.00\n")
    assert r.requests_per_sec == 12.0 and r.spectrum == [] and r.total_count is None
    with pytest.raises(ValueError):
        r.percentile(50)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the service
    wbufsize = -1                   # one write per response (no Nagle/delayed-ACK stalls)
    disable_nagle_algorithm = True
    seen: ClassVar[list] = []       # (method, content type, body) of each request

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Handler.seen.append((self.command, self.headers.get("Content-Type"), body))
        body = b'{"5 star": 0.9}' if self.path == "/ok" else b"{}"
        self.send_response(200 if self.path == "/ok" else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.e2e  # the generator, built with cargo
@pytest.mark.parametrize("path,threads,conns,rate", [("/ok", 1, 4, 200), ("/fail", 1, 4, 200),
                                                     ("/ok", 2, 16, 400)])
def test_live_generator(gen, path, threads, conns, rate):
    """3 s at a constant rate against a local server: wrk2-format output, the
    rate held (by every thread's event loop), the form POST sent, non-2xx counted."""
    server = _serve()
    _Handler.seen = []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}{path}"
        out = subprocess.run(
            [gen, f"-t{threads}", f"-c{conns}", "-d3s", f"-R{rate}", "-L", url, "text=hello+world"],
            capture_output=True, text=True, timeout=30, check=True).stdout
    finally:
        server.shutdown()
        server.server_close()
    r = hdr.parse(out)
    check_spectrum(r)
    assert (r.threads, r.connections, r.duration) == (threads, conns, "3s")
    assert r.requests_per_sec == pytest.approx(rate, rel=0.03)
    assert r.total_count == r.requests
    assert set(_Handler.seen) == {("POST", "application/x-www-form-urlencoded", b"text=hello+world")}
    # the server saw the counted requests, plus at most one in flight per connection at the end
    assert r.requests <= len(_Handler.seen) <= r.requests + conns
    if path == "/ok":
        assert r.errors == 0
    else:
        assert r.non_2xx_3xx == r.requests


@pytest.mark.e2e  # the generator, built with cargo
def test_static_wrk_script(gen, tmp_path):
    """-s reads the static wrk scripts of ../shared/tools/percore (method, body,
    headers) and refuses anything else with a clear error."""
    server = _serve()
    _Handler.seen = []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/ok"
        script = shared_file("tools", "percore", "post-json.lua")
        out = subprocess.run([gen, "-t1", "-c2", "-d1s", "-R50", "-s", str(script), url],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        bad = tmp_path / "dynamic.lua"
        bad.write_text('request = function() return wrk.format("GET", "/") end\n')
        refused = subprocess.run([gen, "-t1", "-c1", "-d1s", "-R10", "-s", str(bad), url],
                                 capture_output=True, text=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert hdr.parse(out).requests_per_sec == pytest.approx(50, rel=0.05)
    assert set(_Handler.seen) == {
        ("POST", "application/json", b'["I love this product. It works great and arrived on time."]')}
    assert refused.returncode != 0 and "dynamic.lua: line 1" in refused.stderr
    assert "only wrk.method, wrk.body" in refused.stderr


@pytest.mark.e2e  # the generator, built with cargo
def test_report_matches_hdrhistogram_c(gen):
    """The generator's histogram and report code, fed fixed values (WRK2_SELFTEST),
    print exactly the saved report samples/selftest-expected.txt (wrk2's
    print format, checked against HdrHistogram by test_selftest_matches_hdrh)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/ok"
        env = dict(os.environ, WRK2_SELFTEST=str(SAMPLES / "selftest-values.txt"))
        out = subprocess.run([gen, "-t1", "-c1", "-d1s", "-R10", "-L", url],
                             capture_output=True, text=True, timeout=30, check=True, env=env).stdout
    finally:
        server.shutdown()
        server.server_close()
    lines = out.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("    Latency"))
    j = next(k for k, line in enumerate(lines) if line.startswith("#[Buckets"))
    got = [lines[i], *lines[i + 2:j + 1]]  # without the Req/Sec line
    assert got == (SAMPLES / "selftest-expected.txt").read_text().splitlines()


def test_selftest_matches_hdrh():
    """The saved report of the self-test values agrees with an independent
    HdrHistogram (the `hdrhistogram` package, same 1 us..24 h, 3 digits):
    every spectrum line's TotalCount, the mean, the deviation and wrk2's
    summary percentiles."""
    from hdrh.histogram import HdrHistogram

    values = [int(v) for v in (SAMPLES / "selftest-values.txt").read_text().split()]
    h = HdrHistogram(1, 24 * 3600 * 1_000_000, 3)
    for v in values:
        h.record_value(v)
    r = hdr.parse_file(SAMPLES / "selftest-expected.txt")
    check_spectrum(r)
    assert r.total_count == h.get_total_count() == len(values)
    assert r.mean_ms == pytest.approx(h.get_mean_value() / 1000, abs=0.001)
    assert r.stddev_ms == pytest.approx(h.get_stddev() / 1000, abs=0.001)
    top = sorted(h.get_highest_equivalent_value(v) for v in values)
    for point in r.spectrum:
        at_or_below = sum(1 for t in top if t <= round(point.value_ms * 1000))
        assert point.total_count == at_or_below, point
    for p, ms in r.summary_percentiles.items():
        assert ms == pytest.approx(h.get_value_at_percentile(p) / 1000, rel=0.005), p
