"""loadtest/perf_analyzer.py: perf_analyzer's report is read, and end to end
(where `make perf-analyzer` has installed it) one short run of it and of our
generator against a worker it starts. No figure is asserted beyond being there."""

import json

import pytest

from loadtest import perf_analyzer

REPORT = """\
Request Rate: 500 inference requests per seconds
  Pass [1] throughput: 499.542 infer/sec. Avg latency: 2466 usec (std 6600 usec).
  Client:
    Request count: 3604
    [WARNING] Perf Analyzer was not able to keep up with the desired request rate. 20.17% of the requests were delayed.
    Throughput: 499.72 infer/sec
    p50 latency: 1431 usec
    p99 latency: 20797 usec
"""


def test_the_client_section_is_read():
    assert perf_analyzer.parse_perf_analyzer(REPORT) == {
        "requests": 3604, "achieved": 499.72, "p50_ms": 1.431, "p99_ms": 20.797, "delayed": 20.17}


def test_without_a_stable_measurement_the_last_window_is_kept():
    out = ("  Pass [1] throughput: 526.366 infer/sec. Avg latency: 29978 usec\n"
           "  Pass [2] throughput: 6153.81 infer/sec. Avg latency: 2594 usec\nFailed to obtain stable measurement.\n")
    r = perf_analyzer.parse_perf_analyzer(out)
    assert r["achieved"] == 6153.81 and r["unstable"] and r["p99_ms"] is None


@pytest.mark.e2e  # ~25 s; make test installs perf_analyzer (make perf-analyzer) first
def test_perf_analyzer_and_wrk2_drive_a_worker(tmp_path, capsys):
    out = tmp_path / "runs.json"
    assert perf_analyzer.main(["--start-worker", "8212", "--rate", "200", "--duration", "3", "--rounds", "1",
                               "--generators", "perf_analyzer,wrk2-oip", "--out", str(out)]) == 0
    runs = json.loads(out.read_text())
    assert [r["generator"] for r in runs] == ["perf_analyzer", "wrk2-oip"]
    for r in runs:
        assert r["achieved"] > 0 and r["server_requests"] > 0 and r["server_cpu_us_per_request"] > 0, r
