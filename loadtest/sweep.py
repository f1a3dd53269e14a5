"""A constant-throughput latency sweep: every rate against every server.

For each rate in RATES and each target in TARGETS (interleaved, so the
servers share the machine's noise), run the wrk2 generator (loadtest/bin/wrk2:
constant rate, latency from each request's intended send time) and save its
whole output, percentile spectrum included, as RESULTS/<target>/R<rate>.txt,
with the CPU time it cost beside it in R<rate>.json.

    python3 -m loadtest.sweep                      # settings from the environment
    python3 -m loadtest.sweep --rates 2000,4000 --duration 15s --targets bjoern=http://127.0.0.1:9000

Settings (flag, environment variable, default):
  --rates        RATES        sized for the machine: see default_rates()
  --duration     DURATION     20s (wrk2 drops its first 10 s as calibration)
  --connections  CONNECTIONS  64
  --threads      THREADS      1
  --targets      TARGETS      bjoern=http://nginx:9000 gunicorn=http://nginx-gunicorn:9000
                              granian=http://nginx-granian:9000 rust=http://nginx-rust:9000/predict
                              (name=URL, space or comma separated; a URL without a path is
                              the product's API, POST /inferreview with the form body; one
                              ending in /predict is fasttext-serving's, the same review as
                              a JSON list of one text; one ending in /v2/models/NAME/infer
                              is the Open Inference Protocol's, the review as its JSON)
  --server-cpus  SERVER_CPUS  the CPUs the servers are pinned to (`make loadtest PIN=1`),
                              e.g. 0 or 0-2: rates are per core and each run is recorded
                              with the core count, for the summary's per-core table
  --cpu-groups   CPU_GROUPS   name=container-id,... per line or space (see cpu.py); optional
  --results      RESULTS      results
  --body         BODY         a form-encoded review (text=...)

A target that does not answer GET /readyz (fasttext-serving: a POST of one
text) is left out (with a message); a target that cannot hold a rate
(achieved < 90 % of it, or p99 over SATURATED_P99_MS; with --server-cpus, two
rates in a row over HELD_P99_MS) is not driven at higher rates: the sweep
would only measure its queue and lose minutes.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from loadtest import cpu, hdr

HERE = Path(__file__).resolve().parent

DEFAULT_TARGETS = ("bjoern=http://nginx:9000 gunicorn=http://nginx-gunicorn:9000 "
                   "granian=http://nginx-granian:9000 rust=http://nginx-rust:9000/predict")
# fasttext-serving's route (the Rust peer): POST a JSON list of raw texts.
RUST_PATH = "/predict"
# The Open Inference Protocol's infer route (app/oip.py): POST its JSON, one BYTES text.
OIP_INFER = re.compile(r"/v2/models/[^/]+/infer$")
# The seed article's review sentence, form-encoded as its wrk2 runs sent it.
DEFAULT_BODY = "text=" + urllib.request.quote(
    "I bought this for my husband who plays the piano. He is having a wonderful time playing "
    "these old hymns. The music is at times hard to read because we think the book was "
    "published for singing from more than playing from.", safe="")
SATURATED_P99_MS = 1000.0
# Per-core mode: the latency bound a rate must be held at, as the summary counts it.
HELD_P99_MS = 10.0


def default_rates(cores: int, pinned: bool = False) -> list[int]:
    """From well below to past what `cores` cores can serve (about 15k req/s a core
    for the whole path, generator included, on the machine RESULTS.md describes;
    pinned, with the generator on a core of its own, up to 20k a core)."""
    if pinned:
        per_core = [1000, 2000, 3000, 4000, 6000, 8000, 10000, 12000, 15000, 20000]
    else:
        per_core = [1000, 2000, 4000, 6000, 8000, 10000, 12500, 15000]
    return [r * cores for r in per_core]


def count_cpus(cpuset: str) -> int:
    """How many CPUs a cpuset list names: "0" -> 1, "0-2,4" -> 4."""
    n = 0
    for part in cpuset.split(","):
        m = re.fullmatch(r"\s*(\d+)(?:-(\d+))?\s*", part)
        if not m or (m[2] and int(m[2]) < int(m[1])):
            raise SystemExit(f"bad CPU list {cpuset!r}: want e.g. 0 or 0-2,4")
        n += int(m[2] or m[1]) - int(m[1]) + 1
    return n


def is_rust(url: str) -> bool:
    return url.endswith(RUST_PATH)


def is_oip(url: str) -> bool:
    return OIP_INFER.search(url) is not None


def oip_body(text: str) -> str:
    """The protocol's infer request (JSON) for one text."""
    return json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [text]}]})


def review_of(body: str) -> str:
    """The review text in a form body `text=...`."""
    try:
        fields = urllib.parse.parse_qs(body, strict_parsing=True)
    except ValueError:
        fields = {}
    if list(fields) != ["text"] or len(fields["text"]) != 1:
        raise SystemExit(f"BODY must be one form field text=...: {body[:80]!r}")
    return fields["text"][0]


def generator_request(url: str, body: str, workdir: Path) -> list[str]:
    """The generator's URL and request arguments for a target: the form body for
    the product's API; for fasttext-serving's, a wrk script (-s) that posts the
    same review as JSON; for the Open Inference Protocol's infer route
    (/v2/models/NAME/infer), one that posts it as the protocol's JSON."""
    if is_rust(url):
        name, payload = "rust.lua", json.dumps([review_of(body)])
    elif is_oip(url):
        name, payload = "oip.lua", oip_body(review_of(body))
    else:
        return [url + "/inferreview", body]
    script = workdir / name
    script.write_text('wrk.method = "POST"\n'
                      'wrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = {json.dumps(payload)}\n")
    return ["-s", str(script), url]


def parse_targets(text: str) -> dict[str, str]:
    targets = {}
    for item in re.split(r"[\s,]+", text.strip()):
        if not item:
            continue
        name, sep, url = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or not url.startswith("http"):
            raise SystemExit(f"bad target {item!r}: want name=http://host:port")
        targets[name] = url.rstrip("/")
    if not targets:
        raise SystemExit("no targets")
    return targets


def parse_rates(text: str) -> list[int]:
    rates = []
    for item in re.split(r"[\s,]+", text.strip()):
        if item:
            m = re.fullmatch(r"(\d+(?:\.\d+)?)([kK]?)", item)
            if not m:
                raise SystemExit(f"bad rate {item!r}: want e.g. 2000 or 2k")
            rates.append(int(float(m[1]) * (1000 if m[2] else 1)))
    if not rates or min(rates) <= 0:
        raise SystemExit("no rates")
    return sorted(set(rates))


def seconds(duration: str) -> int:
    m = re.fullmatch(r"(\d+)([smh]?)", duration)
    if not m:
        raise SystemExit(f"bad duration {duration!r}: want e.g. 20s or 2m")
    return int(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[m[2]]


def ready(url: str) -> str | None:
    """None when GET url/readyz answers 200 (fasttext-serving, which has no such
    route: a POST of one text; the protocol's infer route: GET its model's
    /ready), else why not."""
    if is_rust(url):
        request = urllib.request.Request(url, data=b'["ready"]',
                                         headers={"Content-Type": "application/json"})
    elif is_oip(url):
        request = urllib.request.Request(url.removesuffix("/infer") + "/ready")
    else:
        request = urllib.request.Request(url + "/readyz")
    try:
        with urllib.request.urlopen(request, timeout=3) as r:
            return None if r.status == 200 else f"HTTP {r.status}"
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))


class Progress:
    """Says every `every` seconds that a long run is still going."""

    def __init__(self, label: str, total_s: int, every: float = 10.0):
        self.label, self.total_s, self.every = label, total_s, every
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._tick, daemon=True)

    def _tick(self):
        start = time.monotonic()
        while not self.done.wait(self.every):
            print(f"      ... {self.label}: {time.monotonic() - start:.0f}/{self.total_s} s",
                  flush=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_one(name: str, url: str, rate: int, args, groups: dict[str, list[str]]) -> dict:
    out_dir = Path(args.results) / name
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [str(HERE / "bin" / "wrk2"), f"-t{args.threads}", f"-c{args.connections}",
           f"-d{args.duration}", f"-R{rate}", "-L", *generator_request(url, args.body, args.workdir)]
    mine = cpu.parts_of(groups, name)
    cpu_before = {part: cpu.usage_s(ids) for part, ids in mine.items()}
    gen_before, wall = children_cpu_s(), time.monotonic()
    total = seconds(args.duration)
    with Progress(f"{name} @ {rate} req/s", total):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=total + 120)
    wall, gen_s = time.monotonic() - wall, children_cpu_s() - gen_before
    (out_dir / f"R{rate}.txt").write_text(proc.stdout)
    if proc.returncode != 0:
        raise SystemExit(f"wrk2 failed ({proc.returncode}) on {name} @ {rate}: {proc.stderr.strip()}")
    res = hdr.parse(proc.stdout)
    # Every response the generator counted, over the whole run, for CPU per request.
    requests_all = res.requests or 0
    info = {
        "target": name, "url": url, "rate": rate, "duration": args.duration,
        "connections": args.connections, "threads": args.threads,
        "achieved": res.requests_per_sec, "errors": res.errors,
        "wall_s": round(wall, 3), "requests": requests_all,
        "cpu_us_per_request": {},
    }
    if args.server_cpus:
        info["server_cpus"] = args.server_cpus
        info["server_cores"] = count_cpus(args.server_cpus)
    if requests_all:
        info["cpu_us_per_request"]["wrk2"] = round(gen_s / requests_all * 1e6, 2)
        for part, ids in mine.items():
            after = cpu.usage_s(ids)
            if after is not None and cpu_before[part] is not None:
                info["cpu_us_per_request"][part] = round(
                    (after - cpu_before[part]) / requests_all * 1e6, 2)
    (out_dir / f"R{rate}.json").write_text(json.dumps(info, indent=1) + "\n")
    return info | {"result": res}


def main(argv=None) -> int:
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default=env("RATES") or None)
    p.add_argument("--duration", default=env("DURATION") or "20s")
    p.add_argument("--connections", type=int, default=int(env("CONNECTIONS") or 64))
    p.add_argument("--threads", type=int, default=int(env("THREADS") or 1))
    p.add_argument("--targets", default=env("TARGETS") or DEFAULT_TARGETS)
    p.add_argument("--cpu-groups", default=env("CPU_GROUPS") or "")
    p.add_argument("--results", default=env("RESULTS") or str(HERE / "results"))
    p.add_argument("--body", default=env("BODY") or DEFAULT_BODY)
    p.add_argument("--server-cpus", default=env("SERVER_CPUS") or "")
    args = p.parse_args(argv)

    if args.server_cpus:
        rates = parse_rates(args.rates) if args.rates else default_rates(count_cpus(args.server_cpus), True)
    else:
        rates = parse_rates(args.rates) if args.rates else default_rates(os.cpu_count() or 1)
    review_of(args.body)
    seconds(args.duration)
    if args.connections < args.threads:
        raise SystemExit("CONNECTIONS must be >= THREADS")
    results = Path(args.results)
    try:
        results.mkdir(parents=True, exist_ok=True)
        probe = results / ".writable"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise SystemExit(
            f"cannot write to {results} as uid {os.getuid()} ({exc.strerror}). From the host, "
            "`make loadtest` sets this up; by hand: mkdir -p loadtest/results && "
            "LOADTEST_USER=$(id -u):$(id -g) docker compose run --rm wrk2 make loadtest") from None
    groups = cpu.parse_groups(args.cpu_groups)
    targets = {}
    for name, url in parse_targets(args.targets).items():
        why = ready(url)
        if why is None:
            targets[name] = url
        else:
            print(f"leaving out {name}: {url}/readyz does not answer ({why})", flush=True)
    if not targets:
        raise SystemExit("no target answers /readyz: is the stack up (make up)?")

    runs = len(rates) * len(targets)
    print(f"sweep: {len(targets)} targets x {len(rates)} rates ({', '.join(map(str, rates))} req/s), "
          f"{args.duration} each, -t{args.threads} -c{args.connections}: "
          f"at most {runs * seconds(args.duration) / 60:.1f} min", flush=True)
    saturated: dict[str, int] = {}
    missed: dict[str, int] = {}  # per-core mode: rates in a row over HELD_P99_MS
    n = 0
    args.workdir = Path(tempfile.mkdtemp(prefix="sweep-"))
    for rate in rates:
        for name, url in targets.items():
            n += 1
            if name in saturated:
                print(f"[{n}/{runs}] {name} @ {rate}: skipped (could not hold {saturated[name]})",
                      flush=True)
                continue
            print(f"[{n}/{runs}] {name} @ {rate} req/s for {args.duration}", flush=True)
            info = run_one(name, url, rate, args, groups)
            res = info.pop("result")
            p99 = res.percentile(99) if res.spectrum else float("inf")
            cpu_text = " ".join(f"{k} {v:g}" for k, v in info["cpu_us_per_request"].items())
            print(f"      achieved {info['achieved'] or 0:.0f} req/s, p50 {res.percentile(50):.2f} ms, "
                  f"p99 {p99:.2f} ms, errors {info['errors']}; CPU us/request: {cpu_text}",
                  flush=True)
            if (info["achieved"] or 0) < 0.9 * rate or p99 > SATURATED_P99_MS:
                saturated[name] = rate
            elif args.server_cpus:
                missed[name] = missed.get(name, 0) + 1 if p99 > HELD_P99_MS else 0
                if missed[name] == 2:
                    saturated[name] = rate
    return 0


if __name__ == "__main__":
    sys.exit(main())
