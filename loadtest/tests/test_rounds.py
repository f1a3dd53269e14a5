"""loadtest/rounds.py (and plot.py over round-K/ directories): medians, spread
and ratios from synthetic rounds, written as sweep.py writes a run: the
generator's -L output in <target>/R<rate>.txt, its figures in R<rate>.json."""

import json

import pytest

from loadtest import plot, rounds
from loadtest.floors import plan, round_order, select

WRK2_OUT = """\
Running 2s test @ {url}/inferreview
  1 threads and 64 connections
  Thread calibration: mean lat.: 1.000ms, rate sampling interval: 10ms
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.00ms    0.50ms   {max:.2f}ms   90.00%
    Req/Sec   {rate}.00    10.00   {rate}.00     90.00%
  Latency Distribution (HdrHistogram - Recorded Latency)
 50.000%    1.00ms
 99.000%    {p99:.2f}ms

  Detailed Percentile spectrum:
       Value   Percentile   TotalCount 1/(1-Percentile)

       0.500     0.000000            1         1.00
       1.000     0.500000           50         2.00
{p99:12.3f}     0.990000           99       100.00
{max:12.3f}     1.000000          100          inf
#[Mean    =        1.000, StdDeviation   =        0.500]
#[Max     =       {max:.3f}, Total count    =          100]
#[Buckets =           27, SubBuckets     =         2048]
----------------------------------------------------------
  {requests} requests in 2.00s, 1.00MB read
{errors}Requests/sec: {achieved:.2f}
Transfer/sec:    500.00KB
"""


def write_run(results, target, rate, *, p99, workers, nginx=None, achieved=None, errors=0, cores=1):
    """One run as sweep.run_one saves it."""
    achieved = rate if achieved is None else achieved
    d = results / target
    d.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{9008 if nginx is not None else 8121}"
    (d / f"R{rate}.txt").write_text(WRK2_OUT.format(
        url=url, rate=rate, p99=p99, max=p99 * 2, requests=int(achieved * 2), achieved=achieved,
        errors=f"  Non-2xx or 3xx responses: {errors}\n" if errors else ""))
    cpu = {"wrk2": 20.0, "workers": workers} | ({} if nginx is None else {"nginx": nginx})
    info = {"target": target, "url": url, "rate": rate, "duration": "2s", "connections": 64, "threads": 1,
            "achieved": achieved, "errors": errors, "wall_s": 2.0, "requests": int(achieved * 2),
            "cpu_us_per_request": cpu, "server_cpus": "0" if cores == 1 else f"0-{cores - 1}",
            "server_cores": cores}
    (d / f"R{rate}.json").write_text(json.dumps(info, indent=1) + "\n")


# round: target: (server CPU split as workers, nginx, p99 ms) at 3000 req/s
AT_3000 = {
    1: {"product": (100.0, 50.0, 2.0), "product-minimal": (100.0, 25.0, 1.5), "rust": (40.0, 35.0, 1.0),
        "product-direct": (80.0, None, 1.0), "rust-direct": (40.0, None, 0.5), "bare-direct": (20.0, None, 0.5)},
    2: {"product": (110.0, 50.0, 4.0), "product-minimal": (100.0, 28.0, 2.0), "rust": (45.0, 35.0, 2.0),
        "product-direct": (90.0, None, 2.0), "rust-direct": (45.0, None, 1.0), "bare-direct": (30.0, None, 1.0)},
    3: {"product": (140.0, 60.0, 20.0), "product-minimal": (130.0, 30.0, 4.0), "rust": (60.0, 40.0, 4.0),
        "product-direct": (120.0, None, 3.0), "rust-direct": (50.0, None, 1.5), "bare-direct": (40.0, None, 3.0)},
}


@pytest.fixture
def three_rounds(tmp_path):
    for k, targets in AT_3000.items():
        for target, (workers, nginx, p99) in targets.items():
            write_run(tmp_path / f"round-{k}", target, 3000, p99=p99, workers=workers, nginx=nginx)
    # 6000 req/s: product-direct held it in round 1 only, fell behind in round 2 and
    # was not driven in round 3; rust-direct held it in every round
    write_run(tmp_path / "round-1", "product-direct", 6000, p99=8.0, workers=70.0)
    write_run(tmp_path / "round-2", "product-direct", 6000, p99=900.0, workers=70.0, achieved=5000)
    for k in AT_3000:
        write_run(tmp_path / f"round-{k}", "rust-direct", 6000, p99=2.0, workers=40.0)
    return tmp_path


def test_each_targets_median_min_and_max_over_the_rounds(three_rounds):
    data = rounds.summarize(rounds.load(three_rounds))
    assert data["rounds"] == [1, 2, 3] and data["server_cores"] == 1
    product = data["rates"]["3000"]["targets"]["product"]
    assert product["rounds"] == 3 and product["kept_up"] == 3
    # server CPU: workers + nginx, the generator left out: 150, 160, 200
    assert product["server_cpu_us"] == {"median": 160.0, "min": 150.0, "max": 200.0, "n": 3,
                                        "per_round": {"1": 150.0, "2": 160.0, "3": 200.0}}
    assert product["p99_ms"] == {"median": 4.0, "min": 2.0, "max": 20.0, "n": 3,
                                 "per_round": {"1": 2.0, "2": 4.0, "3": 20.0}}
    two = data["rates"]["6000"]["targets"]["product-direct"]
    assert two["rounds"] == 2 and two["kept_up"] == 1
    assert two["server_cpu_us"]["median"] == 70.0 and two["p99_ms"]["median"] == 454.0  # (8 + 900) / 2
    assert "product" not in data["rates"]["6000"]["targets"]


def test_ratios_are_medians_of_the_per_round_ratios(three_rounds):
    ratios = rounds.summarize(rounds.load(three_rounds))["rates"]["3000"]["ratios"]
    assert list(ratios) == ["product-direct / rust-direct", "product-direct / bare-direct",
                            "product / rust", "product / product-minimal"]
    # product-direct / rust-direct: 80/40, 90/45, 120/50 = 2, 2, 2.4
    assert ratios["product-direct / rust-direct"]["server_cpu"] == {
        "median": 2.0, "min": 2.0, "max": 2.4, "n": 3, "per_round": {"1": 2.0, "2": 2.0, "3": 2.4}}
    # 80/20, 90/30, 120/40 = 4, 3, 3
    assert ratios["product-direct / bare-direct"]["server_cpu"] == {
        "median": 3.0, "min": 3.0, "max": 4.0, "n": 3, "per_round": {"1": 4.0, "2": 3.0, "3": 3.0}}
    # product / rust: 150/75, 160/80, 200/100 = 2 each
    assert ratios["product / rust"]["server_cpu"]["median"] == 2.0
    assert ratios["product / rust"]["server_cpu"]["max"] == 2.0
    # product / product-minimal: 150/125, 160/128, 200/160 = 1.2, 1.25, 1.25
    assert ratios["product / product-minimal"]["server_cpu"] == {
        "median": 1.25, "min": 1.2, "max": 1.25, "n": 3, "per_round": {"1": 1.2, "2": 1.25, "3": 1.25}}
    # p99 ratios alike: 2/1.5, 4/2, 20/4
    assert ratios["product / product-minimal"]["p99"] == {
        "median": 2.0, "min": 1.3333, "max": 5.0, "n": 3, "per_round": {"1": 1.3333, "2": 2.0, "3": 5.0}}
    # at 6000 only rust-direct and product-direct ran, in two rounds together
    at_6000 = rounds.summarize(rounds.load(three_rounds))["rates"]["6000"]["ratios"]
    assert list(at_6000) == ["product-direct / rust-direct"]
    assert at_6000["product-direct / rust-direct"]["server_cpu"]["per_round"] == {"1": 1.75, "2": 1.75}


def test_the_highest_rate_held_round_by_round(three_rounds):
    held = rounds.summarize(rounds.load(three_rounds))["held"]
    # product-direct: 6000 in round 1; round 2 missed it (achieved 5000), round 3 did not run it
    assert held["product-direct"] == {"per_round": {"1": 6000, "2": 3000, "3": 3000}, "rounds": 3,
                                      "counts": {"6000": 1, "3000": 2}, "none": 0}
    assert held["rust-direct"]["counts"] == {"6000": 3}
    # product's p99 at 3000 was 20 ms in round 3: over 10 ms, no rate held there
    assert held["product"] == {"per_round": {"1": 3000, "2": 3000, "3": None}, "rounds": 3,
                               "counts": {"3000": 2}, "none": 1}


def test_the_markdown_tables(three_rounds):
    text = rounds.markdown(rounds.summarize(rounds.load(three_rounds)))
    assert text.startswith("# Load-test summary: 3 rounds\n")
    assert "## 3000 req/s\n" in text  # one server CPU: a rate is a core's
    assert "| product | 3 | 3 | 160.0 (150.0-200.0) | 4.00 (2.00-20.00) |" in text
    assert "| product / product-minimal | 3 | 1.25 (1.20-1.25) | 2.00 (1.33-5.00) |" in text
    assert "| product-direct | 6000, 3000, 3000 | 6000: 1/3, 3000: 2/3 |" in text
    assert "| product | 3000, 3000, none | 3000: 2/3, none: 1/3 |" in text


def test_plot_writes_each_round_and_the_rounds_summary(three_rounds):
    assert plot.main(["plot", str(three_rounds)]) == 0
    data = json.loads((three_rounds / "rounds.json").read_text())
    assert data == json.loads(json.dumps(rounds.summarize(rounds.load(three_rounds))))
    assert (three_rounds / "summary.md").read_text().startswith("# Load-test summary: 3 rounds")
    for k in AT_3000:  # each round's own summary, as a single sweep's
        summary = (three_rounds / f"round-{k}" / "summary.md").read_text()
        assert summary.startswith("# Load-test summary\n") and "Per core" in summary
        assert (three_rounds / f"round-{k}" / "latency-product.png").is_file()


def test_plot_still_reads_a_single_sweep(tmp_path):
    write_run(tmp_path, "product", 3000, p99=2.0, workers=100.0, nginx=50.0)
    write_run(tmp_path, "rust", 3000, p99=1.0, workers=40.0, nginx=35.0)
    assert plot.main(["plot", str(tmp_path)]) == 0
    summary = (tmp_path / "summary.md").read_text()
    assert "| product | 150.0 | - | 3000 | - |" in summary and "| rust | 75.0 | 0.50 | 3000 | 1.00 |" in summary
    assert not (tmp_path / "rounds.json").exists()


def test_rounds_alternate_the_targets_order():
    names = ["product", "rust", "bare-direct"]
    assert [round_order(names, k)[0] for k in (1, 2, 3, 4)] == ["product", "bare-direct", "product", "bare-direct"]
    assert round_order(names, 2) == ["bare-direct", "rust", "product"]


def test_only_selects_targets_and_the_stacks_behind_them():
    from loadtest.floors import FLOORS, PINNED
    available = plan(FLOORS | PINNED, direct=True)
    assert "product-minimal" in available and "product-minimal-direct" not in available
    assert "return-direct" not in available  # nginx answers itself: no workers
    chosen = select(available, "rust-direct, product-direct,bare-direct")
    assert chosen == {"bare-direct": "bare", "product-direct": "product", "rust-direct": "rust"}
    assert select(available, "") == available
    with pytest.raises(SystemExit, match="no target nope"):
        select(available, "product,nope")


def test_floors_refuses_before_starting_anything(tmp_path):
    from loadtest import floors
    (tmp_path / "round-1").mkdir()  # an earlier measurement's rounds: plot.py would mix them in
    with pytest.raises(SystemExit, match="holds rounds already"):
        floors.main(["--results", str(tmp_path), "--rounds", "2", "--only", "bare"])
    with pytest.raises(SystemExit, match="no target nope"):
        floors.main(["--results", str(tmp_path / "new"), "--only", "bare,nope"])
    with pytest.raises(SystemExit, match="1 or more"):
        floors.main(["--results", str(tmp_path / "new"), "--rounds", "0"])


def test_the_minimal_proxy_config(tmp_path):
    """product-minimal's nginx: one server, one location to the workers with
    keepalive, and nothing of the product's (limits, maps, error pages, IDs);
    nginx -t accepts it (no server is started)."""
    import shutil
    import subprocess

    from loadtest import floors
    conf = floors.minimal_conf(9012, ["127.0.0.1:8141", "127.0.0.1:8142"], "1")
    assert "listen 127.0.0.1:9012 backlog=4096;" in conf and "worker_processes 1;" in conf
    assert "server 127.0.0.1:8141;\n        server 127.0.0.1:8142;\n" in conf
    assert "keepalive 64;" in conf and "proxy_pass http://workers;" in conf
    body = "\n".join(line for line in conf.splitlines() if not line.lstrip().startswith("#"))
    for product_only in ("limit_conn", "map ", "error_page", "request_id", "add_header", "access_log /"):
        assert product_only not in body, product_only
    assert body.count("location") == 1 and body.count("server {") == 1
    if shutil.which("nginx"):
        (tmp_path / "tmp").mkdir()
        (tmp_path / "nginx.conf").write_text(conf)
        done = subprocess.run(["nginx", "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf"),
                               "-e", "stderr"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_rates_a_core_on_more_server_cpus(tmp_path):
    for k in (1, 2):
        write_run(tmp_path / f"round-{k}", "product", 6000, p99=2.0, workers=100.0, nginx=50.0, cores=2)
    text = rounds.markdown(rounds.summarize(rounds.load(tmp_path)))
    assert "## 6000 req/s (3000 a core)" in text and "| product | 6000, 6000 | 6000 (3000 a core): 2/2 |" in text
    write_run(tmp_path / "round-3", "product", 6000, p99=2.0, workers=100.0, nginx=50.0)
    with pytest.raises(SystemExit, match="different core counts"):
        rounds.summarize(rounds.load(tmp_path))
