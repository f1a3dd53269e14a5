"""Everything a worker counts, and its GET /metrics page: requests, latency, labels.

Kept in plain ints and lists, added to by the one WSGI wrapper (app/wsgi.py)
directly: a worker is one single-threaded process, so no lock is needed, and
a metrics library's machinery (registries, locks, label objects), or even a
method call, would cost more per request than the few additions
(loadtest/RESULTS.md, "Where each microsecond goes").
"""

# Seconds; the worker's own time for a request (nginx and the network excluded).
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Stats:
    """The worker's counters. What the page shows and Stats does not own
    (the requests in flight, draining: the drain's; the model's sha256) is
    given to `page` by the /metrics resource."""

    def __init__(self):
        self.by_status: dict[str, int] = {}  # by status line ("200 OK"): no slicing per request
        self.bucket_counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last is +Inf
        self.latency_sum = 0.0
        self.predictions: dict[str, int] = {}
        # Callables giving {label: n} counted outside `predicted` (the compiled
        # /inferreview counts in C), added in when /metrics is read.
        self.counted_elsewhere: list = []

    def predicted(self, label: str) -> None:
        self.predictions[label] = self.predictions.get(label, 0) + 1

    def received(self, in_flight: int) -> int:
        """Requests received: those answered, and those being answered (a /metrics read counts itself)."""
        return sum(self.by_status.values()) + in_flight

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

    def page(self, *, in_flight: int, draining: bool, model_sha256: str) -> str:
        """The whole /metrics page, in Prometheus text format."""
        lines = [
            "# HELP worker_requests_total Requests this worker process has received.",
            "# TYPE worker_requests_total counter",
            f"worker_requests_total {self.received(in_flight)}",
            "# HELP worker_draining 1 while the worker drains before exiting.",
            "# TYPE worker_draining gauge",
            f"worker_draining {int(draining)}",
            "# HELP worker_model_info The model being served.",
            "# TYPE worker_model_info gauge",
            f'worker_model_info{{sha256="{model_sha256}"}} 1',
            "# HELP worker_http_requests_total Responses this worker sent, by status.",
            "# TYPE worker_http_requests_total counter",
            *(f'worker_http_requests_total{{code="{code}"}} {n}' for code, n in sorted(self.by_code().items())),
            "# HELP worker_request_duration_seconds Time the worker took for a request.",
            "# TYPE worker_request_duration_seconds histogram",
        ]
        running = 0
        for bound, n in zip((*map(repr, LATENCY_BUCKETS), "+Inf"), self.bucket_counts, strict=True):
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
