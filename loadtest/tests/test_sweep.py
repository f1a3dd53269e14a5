"""Tests of the sweep's per-core mode and its Rust peer's requests (loadtest/sweep.py,
plot.py, cpu.py), on real wrk2 output from ../shared/anchors."""
import json
import urllib.parse
from pathlib import Path

import pytest

from loadtest import cpu, hdr, plot, sweep
from tests.paths import shared_file


@pytest.mark.parametrize("cpuset, n", [("0", 1), ("1", 1), ("0-2", 3), ("0-2,4", 4), ("0,2, 5-6", 4)])
def test_count_cpus(cpuset, n):
    assert sweep.count_cpus(cpuset) == n


@pytest.mark.parametrize("cpuset", ["", "a", "2-1", "0-", "-1"])
def test_count_cpus_refuses_what_is_not_a_cpu_list(cpuset):
    with pytest.raises(SystemExit, match="bad CPU list"):
        sweep.count_cpus(cpuset)


def test_the_product_gets_the_form_body(tmp_path):
    assert sweep.generator_request("http://nginx:9000", sweep.DEFAULT_BODY, tmp_path) == [
        "http://nginx:9000/inferreview", sweep.DEFAULT_BODY]


def test_the_rust_peer_gets_the_same_review_as_json(tmp_path):
    args = sweep.generator_request("http://nginx-rust:9000/predict", sweep.DEFAULT_BODY, tmp_path)
    assert args[0] == "-s" and args[2] == "http://nginx-rust:9000/predict"
    lines = dict(line.split(" = ", 1) for line in Path(args[1]).read_text().splitlines())
    assert lines['wrk.method'] == '"POST"'
    assert lines['wrk.headers["Content-Type"]'] == '"application/json"'
    body = json.loads(json.loads(lines["wrk.body"]))
    assert body == [urllib.parse.parse_qs(sweep.DEFAULT_BODY)["text"][0]]
    assert body[0].startswith("I bought this for my husband")


def test_the_oip_route_gets_the_protocols_json(tmp_path):
    url = "http://127.0.0.1:8001/v2/models/amazon_review_full/infer"
    assert sweep.is_oip(url) and not sweep.is_oip("http://127.0.0.1:8001/v2/models/x/ready")
    args = sweep.generator_request(url, sweep.DEFAULT_BODY, tmp_path)
    assert args[0] == "-s" and args[2] == url
    lines = dict(line.split(" = ", 1) for line in Path(args[1]).read_text().splitlines())
    assert lines['wrk.method'] == '"POST"'
    assert lines['wrk.headers["Content-Type"]'] == '"application/json"'
    body = json.loads(json.loads(lines["wrk.body"]))
    assert body == {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1],
                                "data": [urllib.parse.parse_qs(sweep.DEFAULT_BODY)["text"][0]]}]}


@pytest.mark.parametrize("body", ["title=a", "text=a&text=b", "text=a&k=1", "nonsense"])
def test_the_body_must_be_one_text_field(body):
    with pytest.raises(SystemExit, match="BODY"):
        sweep.review_of(body)


def test_cpu_groups_of_targets_with_dashes_in_their_names():
    groups = cpu.parse_groups("bjoern-workers=a,b bjoern-nginx=c bjoern-direct-workers=a,b "
                              "rust-direct-workers=d")
    assert cpu.parts_of(groups, "bjoern") == {"workers": ["a", "b"], "nginx": ["c"]}
    assert cpu.parts_of(groups, "bjoern-direct") == {"workers": ["a", "b"]}
    assert cpu.parts_of(groups, "rust-direct") == {"workers": ["d"]}
    assert cpu.parts_of(groups, "rust") == {}


def _run(rate, cpu_us, cores, p99_file="R16000-nostall-bjoern-naive.txt"):
    """A saved run: a real wrk2 spectrum with the rate and CPU figures given."""
    res = hdr.parse_file(shared_file("anchors", "wrk2-stall", p99_file))
    res.requests_per_sec = float(rate)
    return {"result": res, "rate": rate, "cpu_us_per_request": cpu_us, "server_cores": cores}


def test_per_core_table():
    # The no-stall anchor's p99 is 4.0 ms (held); the stall anchor's 0.9 s (not held).
    runs = {
        "bjoern": {3000: _run(3000, {"wrk2": 30, "workers": 100, "nginx": 60}, 1),
                   6000: _run(6000, {"wrk2": 30, "workers": 90, "nginx": 50}, 1)},
        "rust-direct": {3000: _run(3000, {"wrk2": 30, "workers": 50}, 1),
                        6000: _run(6000, {"wrk2": 30, "workers": 45}, 1)},
        "granian": {3000: _run(3000, {"wrk2": 30, "workers": 200, "nginx": 60}, 1),
                    6000: _run(6000, {"wrk2": 30, "workers": 200, "nginx": 60}, 1,
                               "R2000-stall1s-run1.txt")},
    }
    text = plot.summary(runs)
    table = text[text.index("Per core"):].splitlines()
    assert "server CPU us/request at 3000 req/s a core" in table[2]
    rows = {line.split(" | ")[0].strip("| "): line for line in table[4:]}
    # server CPU leaves the generator out: workers + nginx
    assert rows["bjoern"] == "| bjoern | 160 | - | 6000 | - |"
    assert rows["rust-direct"] == "| rust-direct | 50 | 0.31 | 6000 | 1.00 |"
    assert rows["granian"] == "| granian | 260 | 1.62 | 3000 | 2.00 |"


def test_no_per_core_table_for_an_unpinned_sweep():
    run = _run(3000, {"wrk2": 30, "workers": 100, "nginx": 60}, None)
    assert "Per core" not in plot.summary({"bjoern": {3000: run}})
