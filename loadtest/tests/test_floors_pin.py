"""End to end, short: `floors.py --pin --rounds 2 --only ...`, no stack needed.
The chosen targets' stacks start pinned (the others do not), two rounds in
alternated order land in round-1/ and round-2/, the rounds' summary is written,
and nothing is left running. No latency is asserted (one shared core decides it)."""

import json
import os
import socket
import subprocess
import sys

import pytest

from loadtest.floors import RUST_BIN
from tests.paths import ROOT

pytestmark = pytest.mark.e2e  # nginx, the generator and the Rust peer (cargo)

ONLY = ["product", "product-minimal", "product-direct", "rust-direct", "bare-direct"]
RATE = 500
# every port floors.py --pin may open: the stacks' nginx and status ports, the first worker's
PORTS = {"falcon": (9006, 9007, 8111), "bare": (9002, 9003, 8101), "return": (9004, 9005),
         "product": (9008, 9009, 8121), "rust": (9010, 9011, 8131), "product-minimal": (9012, 8141)}


def _open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def pinned(tmp_path_factory):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("--pin needs 2 CPUs")
    for tool in (ROOT / "loadtest" / "bin" / "wrk2", RUST_BIN):
        assert os.access(tool, os.X_OK), f"{tool} missing: make generator rust-peer"
    busy = [p for ports in PORTS.values() for p in ports if _open(p)]
    assert not busy, f"ports in use before the run: {busy}"
    results = tmp_path_factory.mktemp("floors-pin")
    proc = subprocess.run([sys.executable, "-m", "loadtest.floors", "--pin", "--results", str(results),
                           "--rounds", "2", "--rates", str(RATE), "--duration", "2s", "--only", ",".join(ONLY)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return results, proc.stdout


def test_two_rounds_of_the_chosen_targets_only(pinned):
    results, _ = pinned
    cores = len(os.sched_getaffinity(0)) - 1
    direct = {t for t in ONLY if t.endswith("-direct")}
    expected = set(ONLY) if cores == 1 else set(ONLY) - direct  # -direct: one worker only
    for k in (1, 2):
        assert {d.name for d in (results / f"round-{k}").iterdir() if d.is_dir()} == expected
        for target in expected:
            info = json.loads((results / f"round-{k}" / target / f"R{RATE}.json").read_text())
            assert info["server_cores"] == cores and info["errors"] == 0, info
            parts = {"wrk2", "workers"} | (set() if target in direct else {"nginx"})
            assert set(info["cpu_us_per_request"]) == parts, info


def test_the_rounds_alternate_the_order(pinned):
    _, out = pinned
    orders = [line.split(": ", 1)[1].split(", ") for line in out.splitlines() if line.startswith("round ")]
    assert len(orders) == 2 and orders[1] == orders[0][::-1], orders


def test_the_rounds_summary(pinned):
    results, _ = pinned
    data = json.loads((results / "rounds.json").read_text())
    assert data["rounds"] == [1, 2]
    at = data["rates"][str(RATE)]
    assert all(t["rounds"] == 2 and t["server_cpu_us"]["n"] == 2 for t in at["targets"].values()), at
    expected = ["product / product-minimal"] + (
        ["product-direct / rust-direct", "product-direct / bare-direct"] if data["server_cores"] == 1 else [])
    assert sorted(at["ratios"]) == sorted(expected), at["ratios"]
    summary = (results / "summary.md").read_text()
    assert "| product / product-minimal | 2 |" in summary, summary
    assert (results / "round-1" / "summary.md").is_file() and (results / "round-2" / "summary.md").is_file()


def test_nothing_is_left_running(pinned):
    still = [p for ports in PORTS.values() for p in ports if _open(p)]
    assert not still, f"ports still open after floors.py: {still}"
