"""The HTTP resources: the seed's /inferreview, the JSON API, health and model info."""

import time

import falcon

from .classifier import Classifier
from .config import Limits
from .media import FORM_HANDLER, dumps, strict_query
from .normalize import review_text
from .stats import Stats


def _reject_oversized(req: falcon.Request, limits: Limits) -> int | None:
    """The body's declared length (Falcon parses the header on every read of
    `content_length`, so callers use this), or a 413 if over the limit."""
    length = req.content_length
    if length is not None and length > limits.max_body_bytes:
        raise falcon.HTTPContentTooLarge(
            description=f"request body of {length} bytes exceeds {limits.max_body_bytes}"
        )
    return length


def _checked_text(value, limits: Limits, where: str, error=falcon.HTTPBadRequest) -> str:
    """A text the model can take, or the right 4xx saying why not."""
    if not isinstance(value, str):
        raise error(title="Invalid text", description=f"{where} must be a string")
    if len(value) > limits.max_text_chars:
        raise falcon.HTTPContentTooLarge(
            description=f"{where} has {len(value)} characters; the limit is {limits.max_text_chars}"
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


def _review(item, limits: Limits, where: str, error, normalize=None) -> str:
    """A text given as a string, or as a review's `title` and `body`; one that
    is empty, or (with `normalize`, the model's) normalises to nothing, is refused."""
    if isinstance(item, dict) and ("title" in item or "body" in item):
        title = _checked_text(item.get("title", ""), limits, f"{where}.title", error)
        body = _checked_text(item.get("body", ""), limits, f"{where}.body", error)
        item = review_text(title, body)
    text = _checked_text(item, limits, where, error)
    if not text.strip():
        raise error(title="Missing text", description=f"{where} is empty")
    # Normalised again only when every character is one that may vanish:
    # a usual text stops str.strip at its first letter.
    if normalize is not None and not text.strip(_MAY_VANISH) and not normalize(text).strip():
        raise error(title="Missing text", description=f"{where} holds no word once normalised")
    return text


class InferReview:
    """POST /inferreview: the seed's contract, `text=...` in, `{"5 star": 0.88}` out."""

    def __init__(self, classifier: Classifier, limits: Limits, stats: Stats, compiled: bool = True):
        self.classifier = classifier
        self.limits = limits
        self.stats = stats
        # The plain form body answered in one compiled call (app/native),
        # which counts its own predictions for /metrics.
        native = classifier.responder(limits.max_text_chars) if compiled else None
        self.respond = native.respond if native else None
        if native:
            stats.counted_elsewhere.append(
                lambda: {label: n for label, n in zip(classifier.labels, native.counts()) if n})

    def on_post(self, req: falcon.Request, resp: falcon.Response):
        length = _reject_oversized(req, self.limits)
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
            raise falcon.HTTPBadRequest(title="Missing text", description="send a form field or JSON key `text`")
        if "text" in fields:
            item = fields["text"]
            if isinstance(item, list):  # a form field given more than once
                raise falcon.HTTPBadRequest(title="Invalid text", description="give `text` once")
            where = "text"
        elif "title" in fields or "body" in fields:
            item = {k: fields[k] for k in ("title", "body") if k in fields}
            if any(isinstance(v, list) for v in item.values()):
                raise falcon.HTTPBadRequest(title="Invalid text", description="give `title` and `body` once")
            where = "review"
        else:
            raise falcon.HTTPBadRequest(title="Missing text", description="send a form field or JSON key `text`")
        text = _review(item, self.limits, where, falcon.HTTPBadRequest, self.classifier.normalize)
        label, probability = self.classifier.predict(text, k=1)[0]
        self.stats.predicted(label)
        resp.text = dumps({label: probability})  # JSON by default; skips the media handler lookup


class Predict:
    """POST /v1/predict: a batch of texts, top-k labels above a threshold.

    Body: {"texts": ["...", {"title": "...", "body": "..."}], "k": 1, "threshold": 0.0}
    """

    def __init__(self, classifier: Classifier, limits: Limits, stats: Stats):
        self.classifier = classifier
        self.limits = limits
        self.stats = stats

    def on_post(self, req: falcon.Request, resp: falcon.Response):
        _reject_oversized(req, self.limits)
        if req.content_type is None or not req.content_type.startswith(falcon.MEDIA_JSON):
            raise falcon.HTTPUnsupportedMediaType(description="send application/json")
        body = req.get_media()
        invalid = falcon.HTTPUnprocessableEntity
        if not isinstance(body, dict) or "texts" not in body:
            raise invalid(title="Invalid request", description='send an object {"texts": [...]}')
        texts = body["texts"]
        if not isinstance(texts, list) or not texts:
            raise invalid(title="Invalid request", description="`texts` must be a non-empty list")
        if len(texts) > self.limits.max_batch:
            raise falcon.HTTPContentTooLarge(
                description=f"{len(texts)} texts in one request; the limit is {self.limits.max_batch}"
            )
        k = body.get("k", 1)
        n_labels = len(self.classifier.labels)
        if type(k) is not int or not 1 <= k <= n_labels:
            raise invalid(title="Invalid request", description=f"`k` must be an integer from 1 to {n_labels}")
        threshold = body.get("threshold", 0.0)
        if type(threshold) not in (int, float) or not 0.0 <= threshold <= 1.0:
            raise invalid(title="Invalid request", description="`threshold` must be a number from 0 to 1")
        normalize = self.classifier.normalize
        reviews = [_review(t, self.limits, f"texts[{i}]", invalid, normalize) for i, t in enumerate(texts)]
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

    def __init__(self, classifier: Classifier, lifecycle=None):
        self.classifier = classifier
        self.lifecycle = lifecycle

    def on_get(self, req, resp):
        if self.lifecycle is not None and self.lifecycle.draining:
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
    """GET /metrics: this worker's counters in Prometheus text format (Stats.page).

    Each worker counts only what it served itself, so scraping every worker
    (or asking each one, as the tests do) shows how nginx spreads the load.
    """

    def __init__(self, stats: Stats):
        self.stats = stats

    def on_get(self, req, resp):
        resp.content_type = "text/plain; version=0.0.4"
        resp.text = self.stats.page()


class OpenAPI:
    """GET /openapi.json: the API described (app/openapi.py), encoded once."""

    def __init__(self, document: dict):
        self.body = dumps(document)

    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_JSON
        resp.text = self.body
