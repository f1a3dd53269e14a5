"""Where a worker's time goes, one request at a time, without network or server.

    .venv/bin/python -m loadtest.microbench [--n 20000] [--repeat 5] [--model PATH]

Calls the WSGI app in-process with the load test's request (POST
/inferreview, form body) and, beside it, each part of that path alone
(form parsing, normalisation, fastText, JSON encoding, Falcon on a GET), and
prints the best of `repeat` rounds in µs per call. The Python side of a
request only: the kernel's share (sockets, wake-ups) shows in the load test.
Run it before and after a change, in one go, on the same machine; the tests
run it briefly to keep it working, never to time it.

    .venv/bin/python -m loadtest.microbench --instructions [--only K]

counts instead the CPU instructions each part costs per call, under
valgrind's callgrind (apt-get install valgrind): the same count on every run,
whatever else the machine is doing, so a change's effect shows even on a
noisy machine. Each part runs in its own process twice (--calls-low and
--calls-high calls); the difference, over the difference in calls, leaves
out start-up and the model's load. Slow: ~30 s a part.

    .venv/bin/python -m loadtest.microbench --cache-sweep

times fastText's predict after sweeping 0, 1, 4 and 32 MiB of other memory
before each call (median of 1 500): what the model costs when, as in a
server, other processes have run on the core since the last request.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

from loadtest.sweep import DEFAULT_BODY

ROOT = Path(__file__).resolve().parent.parent

BODY = DEFAULT_BODY.encode()
FORM = "application/x-www-form-urlencoded"


def environ(method: str, path: str, body: bytes = b"", content_type: str = FORM) -> dict:
    return {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "bench",
        "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "CONTENT_TYPE": content_type if body else "",
        "CONTENT_LENGTH": str(len(body)) if body else "", "HTTP_HOST": "bench",
    }


def wsgi_call(app, method, path, body=b"", content_type=FORM):
    status = []
    env = environ(method, path, body, content_type)

    def start_response(s, headers, exc_info=None):
        status.append(s)

    def call():
        env["wsgi.input"] = io.BytesIO(body)
        out = b"".join(app(env, start_response))
        return out

    return call, status


def best_us(fn, n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t) / n * 1e6)
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--model", default=str(ROOT / "models" / "amazon_review_full.ftz"))
    p.add_argument("--instructions", action="store_true",
                   help="count instructions per call under callgrind instead of timing")
    p.add_argument("--only", type=int, help="only the part of this index (0 = the first)")
    p.add_argument("--calls-low", type=int, default=200)
    p.add_argument("--calls-high", type=int, default=1200)
    p.add_argument("--cache-sweep", action="store_true",
                   help="fastText's predict after evicting the caches, 0 to 32 MiB")
    p.add_argument("--run-part", type=int, help=argparse.SUPPRESS)  # the process callgrind counts
    args = p.parse_args(argv)

    from app.classifier import Classifier
    from app.config import Limits
    from app.drain import no_drain
    from app.media import StrictFormHandler, dumps
    from app.resources import compiled_inferreview
    from app.stats import Stats
    from app.wsgi import create_app, create_http_app

    classifier = Classifier.load(args.model)
    # The Falcon app alone, and beside it what a worker serves (create_app: in
    # its wrapper, which answers the plain POST before Falcon).
    stats = Stats()
    app = create_http_app(classifier, Limits(), no_drain(), stats,
                          compiled_inferreview(classifier, Limits().max_text_chars, stats))
    form = StrictFormHandler()
    text = parse_qs(BODY.decode())["text"][0]
    normalized = classifier.normalize(text)

    counted_post, _ = wsgi_call(create_app(classifier), "POST", "/inferreview", BODY)
    post, post_status = wsgi_call(app, "POST", "/inferreview", BODY)
    python_post, _ = wsgi_call(create_http_app(classifier, Limits(), no_drain(), Stats()),
                               "POST", "/inferreview", BODY)
    respond = compiled_inferreview(classifier, 20_000).respond
    assert respond(BODY) is not None
    health, health_status = wsgi_call(app, "GET", "/healthz")
    # The same review on the Open Inference Protocol's route, as a worker serves it.
    infer_body = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [text]}]})
    infer, infer_status = wsgi_call(create_app(classifier), "POST", f"/v2/models/{classifier.name}/infer",
                                    infer_body.encode(), "application/json")
    post(), health(), infer()
    assert all(s[-1].startswith("200") for s in (post_status, health_status, infer_status)), \
        (post_status, health_status, infer_status)

    parts = [
        ("POST /inferreview through the Falcon app", post),
        ("  as a worker serves it (the wrapper, before Falcon)", counted_post),
        ("  form parsing (the app's handler)", lambda: form.deserialize_body(BODY)),
        ("  form parsing (the standard library's parse_qs)",
         lambda: parse_qs(BODY.decode("ascii"), keep_blank_values=True)),
        ("  normalisation", lambda: classifier.normalize(text)),
        ("  fastText predict (normalised text)", lambda: classifier._model.predict(normalized, 1, 0.0)),
        ("  Classifier.predict (normalise + predict)", lambda: classifier.predict(text)),
        ("  JSON encoding (ujson)", lambda: dumps({"5 star": 0.8846760988235474})),
        ("GET /healthz through the WSGI app (Falcon's floor)", health),
        ("POST /inferreview, all in Python (compiled=False)", python_post),
        ("  the compiled call alone (form body -> JSON body)", lambda: respond(BODY)),
        ("POST /v2/models/{name}/infer, JSON, one text", infer),
    ]
    if args.cache_sweep:
        for mib in (0, 1, 4, 32):
            print(f"predict after sweeping {mib:2d} MiB: median "
                  f"{predict_after_sweep(classifier, normalized, mib):6.1f} us", flush=True)
        return 0
    if args.run_part is not None:
        fn = parts[args.run_part][1]
        for _ in range(args.n):
            fn()
        return 0
    chosen = [(i, *parts[i]) for i in ([args.only] if args.only is not None else range(len(parts)))]
    if args.instructions:
        print(f"{'part':52} {'instructions/call':>17}   "
              f"(callgrind, {args.calls_high} - {args.calls_low} calls)")
        for i, name, _ in chosen:
            low, high = (instructions(args.model, i, n) for n in (args.calls_low, args.calls_high))
            print(f"{name:52} {(high - low) / (args.calls_high - args.calls_low):17,.0f}", flush=True)
        return 0
    print(f"{'part':52} {'us/call':>9}   (best of {args.repeat} x {args.n})")
    for _, name, fn in chosen:
        print(f"{name:52} {best_us(fn, args.n, args.repeat):9.2f}", flush=True)
    return 0


def predict_after_sweep(classifier, text: str, mib: int, calls: int = 1500) -> float:
    """Median µs of one predict, each after writing a byte per cache line of `mib` MiB."""
    buffer = bytearray(mib << 20)
    ones = b"\1" * (len(buffer) // 64)
    predict, clock, took = classifier._model.predict, time.perf_counter, []
    for _ in range(calls):
        if mib:
            buffer[::64] = ones
        start = clock()
        predict(text, 1, 0.0)
        took.append(clock() - start)
    return statistics.median(took) * 1e6


def instructions(model: str, part: int, calls: int) -> int:
    """Instructions callgrind counts in a process that calls `part` `calls` times."""
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m", "loadtest.microbench",
         "--model", model, "--run-part", str(part), "--n", str(calls)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"})  # the same dict layouts on every run
    stderr = proc.communicate()[1]
    # callgrind prints "==PID== Collected : N" for this process and for the
    # model's probe, a forked child: the count wanted is this process's.
    count = re.search(rf"=={proc.pid}== Collected : (\d+)", stderr)
    if proc.returncode or not count:
        raise SystemExit(f"callgrind failed ({proc.returncode}):\n{stderr[-2000:]}")
    return int(count[1])


if __name__ == "__main__":
    sys.exit(main())
