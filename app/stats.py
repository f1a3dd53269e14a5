"""Everything a worker counts, and its GET /metrics page: requests, latency, labels.

Kept in plain ints and lists, updated in the one WSGI wrapper (`Stats.wrap`)
that also does the drain's per-request part: a worker is one single-threaded
process, so no lock is needed, and a metrics library's machinery (registries,
locks, label objects) would cost more per request than the few additions
here (loadtest/RESULTS.md, "Where each microsecond goes").
"""

import time
from bisect import bisect_left

# Seconds; the worker's own time for a request (nginx and the network excluded).
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class _NoDrain:
    """The lifecycle of an app served without app/drain.py's drain (tests, gunicorn, granian)."""

    draining = False
    sigint_taken = True


class Stats:
    """The worker's counters. `lifecycle` (app/drain.py's, or None) is the
    drain: the wrapper closes connections while it drains, and it reads
    `in_flight` and `last_request` here."""

    def __init__(self, lifecycle=None):
        self.lifecycle = lifecycle
        if lifecycle is not None:
            lifecycle.stats = self  # the drain waits on this object's in_flight and last_request
        self.model_sha256 = ""  # the model served, for worker_model_info (create_app sets it)
        self.by_status: dict[str, int] = {}  # by status line ("200 OK"): no slicing per request
        self.bucket_counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last is +Inf
        self.latency_sum = 0.0
        self.in_flight = 0
        self.last_request = time.monotonic()  # when the last request ended
        self.predictions: dict[str, int] = {}
        # Callables giving {label: n} counted outside `predicted` (the compiled
        # /inferreview counts in C), added in when /metrics is read.
        self.counted_elsewhere: list = []

    def predicted(self, label: str) -> None:
        self.predictions[label] = self.predictions.get(label, 0) + 1

    def wrap(self, app):
        """The WSGI callable a server runs: the app, each request counted by
        status and time, with `Connection: close` while the worker drains.
        One function layer per request: it is on every request's path."""
        stats, lifecycle = self, self.lifecycle or _NoDrain()
        by_status, buckets = self.by_status, self.bucket_counts
        clock = time.monotonic

        def worker_app(environ, start_response):
            stats.in_flight += 1
            start = clock()
            answered = "000"  # the status line, once the app has given one
            closing = lifecycle.draining

            def counting_start_response(status, headers, exc_info=None):
                nonlocal answered
                answered = status
                if closing:
                    # nginx drops this connection instead of sending it another request.
                    headers = [*headers, ("Connection", "close")]
                return start_response(status, headers, exc_info)

            try:
                if not lifecycle.sigint_taken:
                    lifecycle.take_sigint()
                return app(environ, counting_start_response)
            finally:
                # The body is made; bjoern writes it once this returns, before its loop runs again.
                end = clock()
                took = end - start
                by_status[answered] = by_status.get(answered, 0) + 1
                buckets[bisect_left(LATENCY_BUCKETS, took)] += 1
                stats.latency_sum += took
                stats.last_request = end
                stats.in_flight -= 1

        return worker_app

    def received(self) -> int:
        """Requests received: those answered, and those being answered (a /metrics read counts itself)."""
        return sum(self.by_status.values()) + self.in_flight

    def all_predictions(self) -> dict[str, int]:
        counts = dict(self.predictions)
        for source in self.counted_elsewhere:
            for label, n in source().items():
                counts[label] = counts.get(label, 0) + n
        return counts

    def by_code(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for status, n in self.by_status.items():
            counts[status[:3]] = counts.get(status[:3], 0) + n
        return counts

    def page(self) -> str:
        """The whole /metrics page, in Prometheus text format."""
        lines = [
            "# HELP worker_requests_total Requests this worker process has received.",
            "# TYPE worker_requests_total counter",
            f"worker_requests_total {self.received()}",
            "# HELP worker_draining 1 while the worker drains before exiting.",
            "# TYPE worker_draining gauge",
            f"worker_draining {int(bool(self.lifecycle and self.lifecycle.draining))}",
            "# HELP worker_model_info The model being served.",
            "# TYPE worker_model_info gauge",
            f'worker_model_info{{sha256="{self.model_sha256}"}} 1',
            "# HELP worker_http_requests_total Responses this worker sent, by status.",
            "# TYPE worker_http_requests_total counter",
            *(f'worker_http_requests_total{{code="{code}"}} {n}' for code, n in sorted(self.by_code().items())),
            "# HELP worker_request_duration_seconds Time the worker took for a request.",
            "# TYPE worker_request_duration_seconds histogram",
        ]
        running = 0
        for bound, n in zip((*map(repr, LATENCY_BUCKETS), "+Inf"), self.bucket_counts):
            running += n
            lines.append(f'worker_request_duration_seconds_bucket{{le="{bound}"}} {running}')
        lines += [
            f"worker_request_duration_seconds_sum {self.latency_sum:.6f}",
            f"worker_request_duration_seconds_count {running}",
            "# HELP worker_predictions_total Predictions served, by label (batch texts included).",
            "# TYPE worker_predictions_total counter",
            *(f'worker_predictions_total{{label="{label}"}} {n}'
              for label, n in sorted(self.all_predictions().items())),
        ]
        return "\n".join(lines) + "\n"
