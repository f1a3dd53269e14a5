"""loadtest/floors.py beside the product's local stack (make local-up): its
extra servers come and go and leave the product's stack as it was."""

import socket
import subprocess
import sys

import pytest
import requests

from tests.e2e.stacks import WORKERS
from tests.e2e.traffic import BASE
from tests.paths import ROOT

pytestmark = pytest.mark.e2e  # the local stack


@pytest.fixture(scope="module", autouse=True)
def _the_local_stack(local_stack):
    """The product's local stack (conftest), up for every test here."""
    return local_stack


def test_floors_ceiling_measures_each_layer_and_leaves_nothing_running(tmp_path):
    """loadtest/floors.py beside the local stack: the bare and Falcon-only workers
    and the two extra nginx start, wrk drives each layer flat out, and all of
    them are gone afterwards (the product's stack stays up)."""
    ports = (9002, 9004, 9006, 8101, 8102, 8111, 8112)
    proc = subprocess.run([sys.executable, "-m", "loadtest.floors", "--ceiling",
                           "--results", str(tmp_path), "--duration", "2s", "--rounds", "1",
                           "--workers", str(WORKERS)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split("|") for line in (tmp_path / "ceiling.md").read_text().splitlines()
            if line.startswith("| 1 |")]
    rates = {row[2].strip(): float(row[3]) for row in rows}
    assert set(rates) == {"product", "falcon", "bare", "return"}, rates
    assert all(rate > 100 for rate in rates.values()), rates
    for row in rows:  # CPU read for the generator and for each layer's processes
        parts = dict(part.strip().rsplit(" ", 1) for part in row[4].split(","))
        assert "wrk" in parts and "nginx" in parts, row
        assert ("workers" in parts) == (row[2].strip() != "return"), row
    for port in ports:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open after floors.py"
    assert requests.get(f"{BASE}/readyz", timeout=5).status_code == 200
