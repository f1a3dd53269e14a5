"""The HTTP resources: the seed's /inferreview, the JSON API, health and model info."""

import falcon

from .api import BODY, TEXT, TEXTS, THRESHOLD, TITLE, Api, K
from .classifier import Classifier
from .drain import Lifecycle
from .media import FORM_HANDLER, dumps, strict_query
from .normalize import review_text
from .stats import Stats


def reject_oversized(req: falcon.Request, api: Api) -> int | None:
    """The body's declared length (Falcon parses the header on every read of
    `content_length`, so callers use this), or a 413 if over the limit."""
    length = req.content_length
    if length is not None and length > api.max_body_bytes:
        raise falcon.HTTPContentTooLarge(
            description=f"request body of {length} bytes exceeds {api.max_body_bytes}"
        )
    return length


def _checked_text(value, api: Api, where: str, error=falcon.HTTPBadRequest) -> str:
    """A text the model can take, or the right 4xx saying why not."""
    if not isinstance(value, str):
        raise error(title="Invalid text", description=f"{where} must be a string")
    if len(value) > api.max_text_chars:
        raise falcon.HTTPContentTooLarge(
            description=f"{where} has {len(value)} characters; the limit is {api.max_text_chars}"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise error(title="Invalid text", description=f"{where} is not valid Unicode") from None
    return value


# Characters the model's normalisation may remove or turn into spaces (`"`,
# `;`, `:`, the letters of `<br />`, white space, control characters). A text
# made of nothing else may hold no word at all once normalised.
_MAY_VANISH = '";:<br/>BR' + "".join(map(chr, [*range(0x21), 0x7F]))


def review(item, api: Api, where: str, error, normalize=None) -> str:
    """A text given as a string, or as a review's `title` and `body`; one that
    is empty (api.min_text_chars is 1), or (with `normalize`, the model's)
    normalises to nothing, is refused."""
    if isinstance(item, dict) and (TITLE in item or BODY in item):
        title = _checked_text(item.get(TITLE, ""), api, f"{where}.{TITLE}", error)
        body = _checked_text(item.get(BODY, ""), api, f"{where}.{BODY}", error)
        item = review_text(title, body)
    text = _checked_text(item, api, where, error)
    if not text.strip():
        raise error(title="Missing text", description=f"{where} is empty")
    # Normalised again only when every character is one that may vanish:
    # a usual text stops str.strip at its first letter.
    if normalize is not None and not text.strip(_MAY_VANISH) and not normalize(text).strip():
        raise error(title="Missing text", description=f"{where} holds no word once normalised")
    return text


_SEND_TEXT = f"send a form field or JSON key `{TEXT}`"


def compiled_inferreview(classifier: Classifier, max_chars: int, stats: Stats | None = None):
    """The compiled POST /inferreview for this classifier (Classifier.responder),
    or None: its answers start `{"5 star":` exactly as the Python path's
    `dumps({label: probability})` does. It counts its own predictions,
    which `stats` then adds to /metrics."""
    heads = [dumps({label: 0.5})[:-len("0.5}")] for label in classifier.labels]
    native = classifier.responder(heads, max_chars)
    if native is not None and stats is not None:
        stats.counted_elsewhere.append(
            lambda: {label: n for label, n in zip(classifier.labels, native.counts(), strict=True) if n})
    return native


class InferReview:
    """POST /inferreview: the seed's contract, `text=...` in, `{"5 star": 0.88}` out."""

    def __init__(self, classifier: Classifier, api: Api, stats: Stats, native=None):
        self.classifier = classifier
        self.api = api
        self.stats = stats
        # The plain form body answered in one compiled call (compiled_inferreview):
        # here for what reaches Falcon (the worker's wrapper answers the
        # plainest requests before it), such as a charset in the content type.
        self.respond = native.respond if native else None

    def on_post(self, req: falcon.Request, resp: falcon.Response):
        length = reject_oversized(req, self.api)
        if length:
            if self.respond is not None and req.content_type == falcon.MEDIA_URLENCODED:
                # The declared length, read from the WSGI input itself: no
                # BoundedStream object for the one read this path makes.
                body = req.stream.read(length)
                answer = self.respond(body)
                if answer is not None:
                    resp.data = answer
                    return
                fields = FORM_HANDLER.deserialize_body(body)  # what get_media() would have said
            else:
                fields = req.get_media()
        else:
            # The seed read `text` with get_param(), so a query string works too,
            # read by the form body's strict UTF-8 rules.
            fields = strict_query(req.query_string)
        if not isinstance(fields, dict):
            raise falcon.HTTPBadRequest(title="Missing text", description=_SEND_TEXT)
        if TEXT in fields:
            item = fields[TEXT]
            if isinstance(item, list):  # a form field given more than once
                raise falcon.HTTPBadRequest(title="Invalid text", description=f"give `{TEXT}` once")
            where = TEXT
        elif TITLE in fields or BODY in fields:
            item = {k: fields[k] for k in (TITLE, BODY) if k in fields}
            if any(isinstance(v, list) for v in item.values()):
                raise falcon.HTTPBadRequest(title="Invalid text", description=f"give `{TITLE}` and `{BODY}` once")
            where = "review"
        else:
            raise falcon.HTTPBadRequest(title="Missing text", description=_SEND_TEXT)
        text = review(item, self.api, where, falcon.HTTPBadRequest, self.classifier.normalize)
        label, probability = self.classifier.predict(text, k=1)[0]
        self.stats.predicted(label)
        resp.text = dumps({label: probability})  # JSON by default; skips the media handler lookup


class Predict:
    """POST /v1/predict: a batch of texts, top-k labels above a threshold.

    Body: {"texts": ["...", {"title": "...", "body": "..."}], "k": 1, "threshold": 0.0}
    """

    def __init__(self, classifier: Classifier, api: Api, stats: Stats):
        self.classifier = classifier
        self.api = api
        self.stats = stats
        # What a client hears for each out-of-bounds field, from the same bounds.
        self.k_is = f"`{K}` must be an integer from {api.min_k} to {api.max_k}"
        self.threshold_is = f"`{THRESHOLD}` must be a number from {api.min_threshold} to {api.max_threshold}"

    def on_post(self, req: falcon.Request, resp: falcon.Response):
        api = self.api
        reject_oversized(req, api)
        if req.content_type is None or not req.content_type.startswith(falcon.MEDIA_JSON):
            raise falcon.HTTPUnsupportedMediaType(description="send application/json")
        body = req.get_media()
        invalid = falcon.HTTPUnprocessableEntity
        if not isinstance(body, dict) or TEXTS not in body:
            raise invalid(title="Invalid request", description=f'send an object {{"{TEXTS}": [...]}}')
        texts = body[TEXTS]
        if not isinstance(texts, list) or len(texts) < api.min_texts:
            raise invalid(title="Invalid request", description=f"`{TEXTS}` must be a non-empty list")
        if len(texts) > api.max_texts:
            raise falcon.HTTPContentTooLarge(
                description=f"{len(texts)} texts in one request; the limit is {api.max_texts}"
            )
        k = body.get(K, api.default_k)
        if type(k) is not int or not api.min_k <= k <= api.max_k:
            raise invalid(title="Invalid request", description=self.k_is)
        threshold = body.get(THRESHOLD, api.default_threshold)
        if type(threshold) not in (int, float) or not api.min_threshold <= threshold <= api.max_threshold:
            raise invalid(title="Invalid request", description=self.threshold_is)
        normalize = self.classifier.normalize
        reviews = [review(t, api, f"{TEXTS}[{i}]", invalid, normalize) for i, t in enumerate(texts)]
        predictions = self.classifier.predict_many(reviews, k=k, threshold=float(threshold))
        for labels in predictions:
            if labels:
                self.stats.predicted(labels[0][0])
        resp.media = {
            "predictions": [
                [{"label": label, "probability": p} for label, p in labels] for labels in predictions
            ]
        }


class Health:
    """GET /healthz: the process is alive and answering."""

    def on_get(self, req, resp):
        resp.media = {"status": "ok"}


class Ready:
    """GET /readyz: the model is loaded, a prediction works, and we are not draining."""

    def __init__(self, classifier: Classifier, lifecycle: Lifecycle):
        self.classifier = classifier
        self.lifecycle = lifecycle

    def on_get(self, req, resp):
        if self.lifecycle.draining:
            resp.status = falcon.HTTP_503
            resp.media = {"status": "draining"}
        elif not self.classifier.self_test():
            resp.status = falcon.HTTP_503
            resp.media = {"status": "self-test failed"}
        else:
            resp.media = {"status": "ready"}


class ModelInfo:
    """GET /v1/model: what is being served."""

    def __init__(self, classifier: Classifier):
        self.info = classifier.info()

    def on_get(self, req, resp):
        resp.media = self.info


class Metrics:
    """GET /metrics: this worker's counters in Prometheus text format (Stats.page),
    with the drain's requests in flight and state, and the model's sha256.

    Each worker counts only what it served itself, so scraping every worker
    (or asking each one, as the tests do) shows how nginx spreads the load.
    """

    def __init__(self, stats: Stats, lifecycle: Lifecycle, model_sha256: str):
        self.stats = stats
        self.lifecycle = lifecycle
        self.model_sha256 = model_sha256

    def on_get(self, req, resp):
        resp.content_type = "text/plain; version=0.0.4"
        lifecycle = self.lifecycle
        resp.text = self.stats.page(in_flight=lifecycle.in_flight, draining=lifecycle.draining,
                                    model_sha256=self.model_sha256)


class OpenAPI:
    """GET /openapi.json: the API described (app/openapi.py), encoded once."""

    def __init__(self, document: dict):
        self.body = dumps(document)

    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_JSON
        resp.text = self.body
