"""loadtest/instructions.py: whole servers' instructions per request under
callgrind. The reading of callgrind's files is checked on a small one written
here; end to end, a short run of two servers (no count is asserted beyond
being positive: the figures come from running it by hand)."""

import json
import socket
from pathlib import Path

import pytest

from loadtest import instructions

# callgrind's format with name compression: main calls f twice (inclusive 30),
# f calls fastText's predict (inclusive 12), which calls libstdc++.
CALLGRIND = """\
version: 1
creator: callgrind-3.19.0
events: Ir
summary: 88

ob=(1) /usr/lib/libc.so.6
fl=(1) main.c
fn=(1) main
0 10
cob=(2) /site-packages/reviewrating_native.cpython-311-x86_64-linux-gnu.so
cfn=(2) f
calls=2 0
0 30
fn=(3) other
0 48
ob=(2)
fn=(2)
0 18
cfn=(4) fasttext::FastText::predict(int) const
calls=1 0
0 12
fn=(4)
0 7
cob=(3) /usr/lib/libstdc++.so.6
cfn=(5) std::sort
calls=1 0
0 5
ob=(3)
fn=(5)
0 5
totals: 88
"""


def test_costs_reads_own_and_inclusive_counts(tmp_path):
    path = tmp_path / "callgrind.out"
    path.write_text(CALLGRIND)
    own, inclusive = instructions.costs(path)
    assert sum(own.values()) == instructions.total_ir(path) == 88
    assert own[("f", "/site-packages/reviewrating_native.cpython-311-x86_64-linux-gnu.so")] == 18
    assert own[("std::sort", "/usr/lib/libstdc++.so.6")] == 5
    assert inclusive["main"] == 40 and inclusive["f"] == 30
    assert inclusive[instructions.FASTTEXT] == 12  # the one call into fastText, not its own call out


def test_objects_are_grouped_into_the_workers_parts():
    group = instructions.object_group
    assert group("/x/_bjoern.cpython-311-x86_64-linux-gnu.so", "ev_run").startswith("bjoern")
    assert group("/x/reviewrating_native.cpython-311.so", "fasttext::Dictionary::getLine") == "fastText"
    assert group("/x/reviewrating_native.cpython-311.so", "respond").startswith("app/native")
    assert group("/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0", "x").startswith("Python")
    assert group("/usr/lib/x86_64-linux-gnu/libc.so.6", "memcpy").startswith("libc")


def test_the_requests_are_whole_http_requests():
    for request in (instructions.FORM_REQUEST, instructions.OIP_REQUEST, instructions.RUST_REQUEST):
        head, _, body = request.partition(b"\r\n\r\n")
        assert f"Content-Length: {len(body)}".encode() in head
    body = json.loads(instructions.OIP_REQUEST.partition(b"\r\n\r\n")[2])
    assert body["inputs"][0]["datatype"] == "BYTES" and body["inputs"][0]["shape"] == [1]
    assert instructions.OIP_REQUEST.startswith(b"POST /v2/models/amazon_review_full/infer ")


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def our_children() -> list[int]:
    import os
    text = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text()
    return [int(c) for c in text.split()]


@pytest.mark.e2e  # valgrind, ~90 s
def test_instructions_runs_the_servers_and_leaves_nothing_behind(tmp_path, capsys):
    before = our_children()
    assert instructions.main(["--only", "bare,nginx,nginx-rust", "--requests-low", "50", "--requests-high", "150",
                              "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "instructions.json").read_text())
    assert set(results["servers"]) == {"bare", "nginx", "nginx-rust"}
    for name, r in results["servers"].items():
        assert r["ir_high"] > r["ir_low"] > 0 and r["per_request"] > 0, (name, r)
    table = (tmp_path / "instructions.md").read_text()
    assert "| bare |" in table and "| nginx |" in table and "| nginx-rust |" in table
    ports = (*instructions.PORTS.values(), instructions.NGINX_UPSTREAM_PORT)
    assert all(refused(p) for p in ports)
    assert our_children() == before
    assert not list(tmp_path.glob("callgrind.*")) and not (tmp_path / "callgrind").exists()
