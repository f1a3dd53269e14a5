"""What a worker counts for GET /metrics: requests by status, latency, labels.

Kept in plain ints and lists, updated in the WSGI call itself: a worker is
one single-threaded process, so no lock is needed, and a metrics library's
machinery (registries, locks, label objects) would cost more per request than
the few additions here (see loadtest/microbench.py for the figure).
"""

import time
from bisect import bisect_left

# Seconds; the worker's own time for a request (nginx and the network excluded).
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Stats:
    def __init__(self):
        self.by_status: dict[str, int] = {}
        self.bucket_counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last is +Inf
        self.latency_sum = 0.0
        self.predictions: dict[str, int] = {}
        # Callables giving {label: n} counted outside `predicted` (the compiled
        # /inferreview counts in C), added in when /metrics is read.
        self.counted_elsewhere: list = []

    def predicted(self, label: str) -> None:
        self.predictions[label] = self.predictions.get(label, 0) + 1

    def wrap(self, app):
        """The WSGI app, counting each response's status and the time it took."""
        by_status, buckets = self.by_status, self.bucket_counts
        clock = time.perf_counter

        def counted_app(environ, start_response):
            start = clock()
            seen = []

            def counting_start_response(status, headers, exc_info=None):
                seen.append(status[:3])
                return start_response(status, headers, exc_info)

            body = app(environ, counting_start_response)
            took = clock() - start
            code = seen[-1] if seen else "000"
            by_status[code] = by_status.get(code, 0) + 1
            buckets[bisect_left(LATENCY_BUCKETS, took)] += 1
            self.latency_sum += took
            return body

        return counted_app

    def all_predictions(self) -> dict[str, int]:
        counts = dict(self.predictions)
        for source in self.counted_elsewhere:
            for label, n in source().items():
                counts[label] = counts.get(label, 0) + n
        return counts

    def prometheus(self) -> list[str]:
        lines = [
            "# HELP worker_http_requests_total Responses this worker sent, by status.",
            "# TYPE worker_http_requests_total counter",
            *(f'worker_http_requests_total{{code="{code}"}} {n}' for code, n in sorted(self.by_status.items())),
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
        return lines
