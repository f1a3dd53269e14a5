"""The Falcon application: `create_app()` builds it, `get_app()` builds it from the environment."""

import falcon

from . import resources
from .api import Api
from .classifier import Classifier
from .config import Limits, Settings
from .media import FORM_HANDLER, JSON_HANDLER, json_error_serializer
from .openapi import openapi
from .stats import Stats


def create_app(classifier: Classifier, limits: Limits = Limits(), lifecycle=None,
               stats: Stats | None = None, compiled: bool = True) -> falcon.App:
    """The Falcon app. `stats` receives the predictions and renders /metrics;
    requests, statuses and latencies reach it only through `stats.wrap(app)`,
    as `get_app()` returns it. `compiled=False` answers every /inferreview in
    Python (the tests compare the two)."""
    stats = stats if stats is not None else Stats(lifecycle)
    stats.model_sha256 = classifier.sha256
    api = Api(limits, classifier.labels)  # what the resources enforce and /openapi.json shows
    app = falcon.App()
    # Only the body types the API speaks: anything else is a 415 from Falcon.
    app.req_options.media_handlers = falcon.media.Handlers(
        {falcon.MEDIA_JSON: JSON_HANDLER, falcon.MEDIA_URLENCODED: FORM_HANDLER}
    )
    app.resp_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: JSON_HANDLER})
    app.set_error_serializer(json_error_serializer)

    app.add_route("/inferreview", resources.InferReview(classifier, api, stats, compiled))
    app.add_route("/v1/predict", resources.Predict(classifier, api, stats))
    app.add_route("/v1/model", resources.ModelInfo(classifier))
    app.add_route("/healthz", resources.Health())
    app.add_route("/readyz", resources.Ready(classifier, lifecycle))
    app.add_route("/metrics", resources.Metrics(stats))
    app.add_route("/openapi.json", resources.OpenAPI(openapi(api)))
    return app


def get_app(settings: Settings | None = None, lifecycle=None):
    """The WSGI callable a server runs (bjoern here; gunicorn and granian in
    the load test): the app from the environment's settings in its one
    wrapper, which counts for /metrics and, with `lifecycle` (app/drain.py),
    does the drain's per-request part."""
    settings = settings or Settings.from_env()
    classifier = Classifier.load(settings.model_path, settings.manifest_path)
    stats = Stats(lifecycle)
    return stats.wrap(create_app(classifier, settings.limits, lifecycle, stats))
