"""What a server runs, composed here: `create_app()` builds it from its
dependencies, `get_app()` from the environment."""

import falcon

from . import resources
from .api import Api
from .classifier import Classifier
from .config import Limits, Settings
from .media import FORM_HANDLER, JSON_HANDLER, json_error_serializer
from .openapi import openapi
from .stats import Stats


def create_app(classifier: Classifier, limits: Limits = Limits(), lifecycle=None,
               stats: Stats | None = None, compiled: bool = True):
    """The WSGI callable a worker serves: the HTTP app in its one wrapper,
    which counts every request in `stats` and, with `lifecycle`
    (app/drain.py), does the drain's per-request part. The tests build their
    clients with it, so they run what production runs. `compiled=False`
    answers every /inferreview in Python (the tests compare the two)."""
    stats = stats if stats is not None else Stats(lifecycle)
    return stats.wrap(create_http_app(classifier, limits, lifecycle, stats, compiled))


def create_http_app(classifier: Classifier, limits: Limits, lifecycle, stats: Stats,
                    compiled: bool = True) -> falcon.App:
    """The Falcon app alone: the routes, the body types, JSON errors. `stats`
    receives the predictions and renders /metrics; requests, statuses and
    latencies reach it only through the wrapper `create_app` adds."""
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
    """`create_app` from the environment's settings: bjoern's worker
    (app/server.py) passes its `lifecycle`; gunicorn and granian in the load
    test run `app.wsgi:get_app()`, without the drain."""
    settings = settings or Settings.from_env()
    classifier = Classifier.load(settings.model_path, settings.manifest_path)
    return create_app(classifier, settings.limits, lifecycle)
