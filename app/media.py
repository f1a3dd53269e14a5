"""How bodies are read and errors are written."""

from functools import partial
from urllib.parse import parse_qs

import falcon
import falcon.media
import ujson
from falcon.util.uri import parse_query_string

dumps = partial(ujson.dumps, escape_forward_slashes=False)
JSON_HANDLER = falcon.media.JSONHandler(dumps=dumps, loads=ujson.loads)


def _not_utf8() -> falcon.HTTPBadRequest:
    return falcon.HTTPBadRequest(title="Malformed form body",
                                 description="form values must be percent-encoded UTF-8")


def _holds_replacement_char(fields: dict) -> bool:
    for name, value in fields.items():
        if "\ufffd" in name:
            return True
        if isinstance(value, list):
            if any("\ufffd" in v for v in value):
                return True
        elif "\ufffd" in value:  # the usual case, one string: no generator to build
            return True
    return False


class StrictFormHandler(falcon.media.BaseHandler):
    """application/x-www-form-urlencoded that refuses what is not UTF-8.

    Falcon's own form handler turns invalid percent-encoded UTF-8 into U+FFFD
    silently; a client that sent such bytes should hear about it instead.
    Falcon's parser (compiled, far cheaper than the standard library's
    parse_qs, which answers the same: loadtest/RESULTS.md, "What each change
    bought") reads every body; only when its answer holds a U+FFFD (invalid
    UTF-8, or a client that sent U+FFFD itself) or the body has too many
    fields does parse_qs read it again, strictly, to tell which. The cap on
    fields keeps a body of a million `&` from making a worker busy.
    """

    def __init__(self, max_fields: int = 100):
        self.max_fields = max_fields

    def deserialize(self, stream, content_type, content_length):
        return self.deserialize_body(stream.read())

    def deserialize_body(self, body: bytes):
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError:
            raise _not_utf8() from None
        if text.count("&") < self.max_fields:
            fields = parse_query_string(text, keep_blank=True)
            if "%" not in text or not _holds_replacement_char(fields):
                return fields
        return self._deserialize_strictly(text)

    def _deserialize_strictly(self, text: str):
        try:
            fields = parse_qs(
                text,
                keep_blank_values=True,
                errors="strict",
                max_num_fields=self.max_fields,
            )
        except UnicodeDecodeError:
            raise _not_utf8() from None
        except ValueError as exc:  # parse_qs: too many fields
            raise falcon.HTTPBadRequest(title="Malformed form body", description=str(exc)) from None
        # A field given once is a string, as in Falcon's own handler; repeated, a list.
        return {name: values[0] if len(values) == 1 else values for name, values in fields.items()}


# One handler for the app's form bodies, /inferreview's compiled path's
# fallback and query strings: the same rules everywhere.
FORM_HANDLER = StrictFormHandler()


def strict_query(query_string: str) -> dict:
    """A query string's fields, by the form body's rules (UTF-8, strictly).

    WSGI gives the query string as bytes decoded as Latin-1; Falcon's own
    req.params turns invalid UTF-8 into U+FFFD, as its form handler does."""
    if not query_string:
        return {}
    try:
        raw = query_string.encode("latin-1")
    except UnicodeEncodeError:  # not from a WSGI server: characters no URL carries
        raise _not_utf8() from None
    return FORM_HANDLER.deserialize_body(raw)


def json_error_serializer(req, resp, exc: falcon.HTTPError):
    """Every error is JSON, whatever the client's Accept header says: on the
    Open Inference Protocol's routes (paths from /v2 on, as nginx's
    `location /v2` takes them) in its shape, `{"error": ...}`
    (as nginx's own errors there: nginx.conf.template's $error_body), else
    `{"title": ..., "description": ...}`."""
    resp.content_type = falcon.MEDIA_JSON
    if req.path.startswith("/v2"):
        title = exc.title or exc.status
        resp.text = dumps({"error": f"{title}: {exc.description}" if exc.description else title})
    else:
        resp.text = dumps(exc.to_dict())
