"""What a server runs, composed here: `create_app()` builds it from its
dependencies (the model, the limits, the drain, the counters), `get_app()`
from the environment."""

import io
import time
from bisect import bisect_left

import falcon

from . import oip, resources
from .api import Api
from .classifier import Classifier
from .config import Limits, Settings
from .drain import Lifecycle, no_drain
from .media import FORM_HANDLER, JSON_HANDLER, json_error_serializer
from .openapi import openapi
from .stats import LATENCY_BUCKETS, Stats


def create_app(classifier: Classifier, limits: Limits = Limits(), lifecycle: Lifecycle | None = None,
               stats: Stats | None = None, compiled: bool = True):
    """The WSGI callable a worker serves: the HTTP app in its one wrapper.
    `lifecycle` is the drain (app/drain.py; bjoern's worker passes its own,
    anything else gets `no_drain()`), `stats` the counters behind /metrics.
    The tests build their clients with it, so they run what production
    runs. `compiled=False` answers every /inferreview in Python (the tests
    compare the two)."""
    lifecycle = lifecycle if lifecycle is not None else no_drain()
    stats = stats if stats is not None else Stats()
    native = resources.compiled_inferreview(classifier, limits.max_text_chars, stats) if compiled else None
    app = create_http_app(classifier, limits, lifecycle, stats, native)
    return wrap(app, stats, lifecycle, native.respond if native else None, limits.max_body_bytes)


def create_http_app(classifier: Classifier, limits: Limits, lifecycle: Lifecycle, stats: Stats,
                    native=None) -> falcon.App:
    """The Falcon app alone: the routes, the body types, JSON errors. `stats`
    receives the predictions and renders /metrics; requests, statuses and
    latencies reach it only through the wrapper `create_app` adds. `native`
    is the compiled /inferreview (resources.compiled_inferreview), or None:
    every /inferreview answered in Python."""
    api = Api(limits, classifier.labels)  # what the resources enforce and /openapi.json shows
    app = falcon.App()
    # Only the body types the API speaks: anything else is a 415 from Falcon.
    app.req_options.media_handlers = falcon.media.Handlers(
        {falcon.MEDIA_JSON: JSON_HANDLER, falcon.MEDIA_URLENCODED: FORM_HANDLER}
    )
    app.resp_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: JSON_HANDLER})
    app.set_error_serializer(json_error_serializer)

    app.add_route("/inferreview", resources.InferReview(classifier, api, stats, native))
    app.add_route("/v1/predict", resources.Predict(classifier, api, stats))
    app.add_route("/v1/model", resources.ModelInfo(classifier))
    app.add_route("/healthz", resources.Health())
    app.add_route("/readyz", resources.Ready(classifier, lifecycle))
    app.add_route("/metrics", resources.Metrics(stats, lifecycle, classifier.sha256))
    app.add_route("/openapi.json", resources.OpenAPI(openapi(api)))
    oip.add_routes(app, classifier, api, stats)
    return app


# The plain POST /inferreview, as the wrapper answers it before Falcon (`wrap`).
_FORM, _OK, _JSON = falcon.MEDIA_URLENCODED, falcon.HTTP_200, falcon.MEDIA_JSON


def wrap(app, stats: Stats, lifecycle: Lifecycle, respond=None, max_body_bytes: int = 0):
    """`app` with each request counted in `stats` by status and time, and
    the drain's part in `lifecycle`: the requests in flight, when the last
    one ended, `Connection: close` while draining. One function layer for
    both, since it is on every request's path.

    With `respond` (the compiled /inferreview), the plain POST /inferreview
    (that exact path and form content type, no query string, a declared
    length within `max_body_bytes`) is answered here, before Falcon builds a
    Request and a Response for it, with the status and headers Falcon gives
    `resp.data` (tests/test_compiled.py compares the two paths); a body the
    responder declines goes on to Falcon, already read."""
    by_status, buckets = stats.by_status, stats.bucket_counts
    clock = time.monotonic
    headers_by_length: dict[int, list] = {}  # the answers are a few lengths: their headers made once

    def worker_app(environ, start_response):
        lifecycle.in_flight += 1
        start = clock()
        answered = "000"  # the status line, once the app has given one
        closing = lifecycle.draining
        try:
            if lifecycle.sigint_pending:
                lifecycle.take_sigint()
            if (respond is not None and environ["PATH_INFO"] == "/inferreview"
                    and environ["REQUEST_METHOD"] == "POST" and environ.get("CONTENT_TYPE") == _FORM
                    and not environ.get("QUERY_STRING")):
                length = environ.get("CONTENT_LENGTH", "")
                if length.isdigit() and length.isascii() and 0 < (n := int(length)) <= max_body_bytes:
                    body = environ["wsgi.input"].read(n)
                    try:
                        answer = respond(body)
                    except Exception:  # noqa: BLE001 - Falcon answers it, as a JSON error if it must
                        answer = None
                    if answer is not None:
                        headers = headers_by_length.get(len(answer))
                        if headers is None:
                            headers = headers_by_length[len(answer)] = [
                                ("content-length", str(len(answer))), ("content-type", _JSON)]
                        if closing:
                            headers = [*headers, ("Connection", "close")]
                        answered = _OK
                        start_response(_OK, headers)
                        return [answer]
                    environ["wsgi.input"] = io.BytesIO(body)

            def counting_start_response(status, headers, exc_info=None):
                nonlocal answered
                answered = status
                if closing:
                    # nginx drops this connection instead of sending it another request. bjoern
                    # still appends its own `Connection: Keep-Alive` (it decides from the request
                    # alone); nginx reads any `close` as close, and the worker's exit ends the rest.
                    headers = [*headers, ("Connection", "close")]
                return start_response(status, headers, exc_info)

            return app(environ, counting_start_response)
        finally:
            # The body is made; bjoern writes it once this returns, before its loop runs again.
            end = clock()
            took = end - start
            by_status[answered] = by_status.get(answered, 0) + 1
            buckets[bisect_left(LATENCY_BUCKETS, took)] += 1
            stats.latency_sum += took
            lifecycle.last_request = end
            lifecycle.in_flight -= 1

    return worker_app


def get_app(settings: Settings | None = None, lifecycle: Lifecycle | None = None):
    """`create_app` from the environment's settings: bjoern's worker
    (app/server.py) passes its `lifecycle`; gunicorn and granian in the load
    test run `app.wsgi:get_app()`, without the drain."""
    settings = settings or Settings.from_env()
    classifier = Classifier.load(settings.model_path, settings.manifest_path)
    return create_app(classifier, settings.limits, lifecycle)
