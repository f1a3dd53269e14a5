"""The worker micro-benchmark (loadtest/microbench.py) keeps running: a few
calls of each part with the real model. No timing is asserted here; the
figures come from running it by hand and from the load test."""

import pytest

from loadtest import microbench
from tests.paths import REAL_MODEL


def test_microbench_runs_every_part(capsys):
    assert microbench.main(["--n", "20", "--repeat", "1", "--model", str(REAL_MODEL)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("part")
    figures = {line[:52].strip(): float(line[52:]) for line in lines[1:]}
    assert len(figures) == 12 and all(v > 0 for v in figures.values()), figures
    assert "POST /inferreview through the Falcon app" in figures


@pytest.mark.e2e  # valgrind, ~30 s
def test_microbench_counts_instructions_under_callgrind(capsys):
    """--instructions runs a part under valgrind's callgrind at two call counts;
    the per-call count must be positive and plausible (ujson encoding a small
    dict: thousands of instructions, not millions)."""
    assert microbench.main(["--instructions", "--only", "7", "--calls-low", "10", "--calls-high", "60",
                            "--model", str(REAL_MODEL)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].strip().startswith("JSON encoding"), lines
    per_call = int(lines[1][52:].replace(",", ""))
    assert 500 < per_call < 200_000, lines


def test_microbench_cache_sweep_prints_each_size(capsys):
    assert microbench.main(["--cache-sweep", "--model", str(REAL_MODEL)]) == 0
    lines = capsys.readouterr().out.splitlines()
    sizes = [int(line.split("sweeping")[1].split("MiB")[0]) for line in lines]
    medians = [float(line.split("median")[1].split("us")[0]) for line in lines]
    assert sizes == [0, 1, 4, 32] and all(m > 0 for m in medians), lines
