"""Bad requests and the 4xx each must get: used by the unit tests (through
falcon.testing) and by the end-to-end tests (through nginx and bjoern)."""

import json

from app.config import Limits

# Small limits so the limit tests send small bodies.
TEST_LIMITS = Limits(max_body_bytes=64 * 1024, max_text_chars=2000, max_batch=8)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}

# (name, method, path, headers, body, expected status)
BAD_INPUTS = [
    ("no text at all", "POST", "/inferreview", FORM, b"", 400),
    ("empty text", "POST", "/inferreview", FORM, b"text=", 400),
    ("blank text", "POST", "/inferreview", FORM, b"text=+++", 400),
    ("other field", "POST", "/inferreview", FORM, b"txt=hello", 400),
    ("text twice", "POST", "/inferreview", FORM, b"text=a&text=b", 400),
    ("form not ascii", "POST", "/inferreview", FORM, "text=caf\u00e9".encode(), 400),
    ("percent-encoded invalid utf-8", "POST", "/inferreview", FORM, b"text=%ff%fe", 400),
    ("invalid utf-8 after valid", "POST", "/inferreview", FORM, b"text=caf%C3%A9+%e2%82", 400),
    ("invalid utf-8 in another field", "POST", "/inferreview", FORM, b"text=ok&x%ff=1", 400),
    ("too many form fields", "POST", "/inferreview", FORM, b"a&" * 500 + b"text=x", 400),
    ("malformed json", "POST", "/inferreview", JSON, b'{"text": ', 400),
    ("json invalid utf-8", "POST", "/inferreview", JSON, b'{"text": "\xff\xfe"}', 400),
    ("json not an object", "POST", "/inferreview", JSON, b'["text"]', 400),
    ("json text not a string", "POST", "/inferreview", JSON, b'{"text": 5}', 400),
    ("json text null", "POST", "/inferreview", JSON, b'{"text": null}', 400),
    ("json lone surrogate", "POST", "/inferreview", JSON, b'{"text": "\\ud800"}', 400),
    ("json empty text", "POST", "/inferreview", JSON, b'{"text": ""}', 400),
    # texts that normalise to nothing: the model would answer a confident label for no word
    ("only a quote", "POST", "/inferreview", FORM, b"text=%22", 400),
    ("only semicolons", "POST", "/inferreview", FORM, b"text=%3B%3B", 400),
    ("only a line break tag", "POST", "/inferreview", FORM, b"text=%3Cbr+%2F%3E", 400),
    ("tags, colons and quotes", "POST", "/inferreview", JSON, b'{"text": "<BR /> :; \\" <br />\\n"}', 400),
    ("review of nothing", "POST", "/inferreview", JSON, b'{"body": "<br /> ; "}', 400),
    # the query string follows the body's rules
    ("query invalid utf-8", "POST", "/inferreview?text=%ff%fe", {}, b"", 400),
    ("query empty text", "POST", "/inferreview?text=", {}, b"", 400),
    ("query normalises to nothing", "POST", "/inferreview?text=%3B%3B", {}, b"", 400),
    ("wrong content type", "POST", "/inferreview", {"Content-Type": "text/plain"}, b"hello", 415),
    ("multipart", "POST", "/inferreview",
     {"Content-Type": "multipart/form-data; boundary=x"}, b"--x\r\n\r\n--x--\r\n", 415),
    ("unknown route", "GET", "/nope", {}, b"", 404),
    ("unknown route post", "POST", "/inferreview/extra", FORM, b"text=hi", 404),
    ("wrong method", "GET", "/inferreview", {}, b"", 405),
    ("wrong method delete", "DELETE", "/v1/predict", {}, b"", 405),
    ("batch not json", "POST", "/v1/predict", FORM, b"texts=a", 415),
    ("batch malformed json", "POST", "/v1/predict", JSON, b"{", 400),
    ("batch missing texts", "POST", "/v1/predict", JSON, b'{"text": "a"}', 422),
    ("batch texts not a list", "POST", "/v1/predict", JSON, b'{"texts": "a"}', 422),
    ("batch texts empty", "POST", "/v1/predict", JSON, b'{"texts": []}', 422),
    ("batch item not a string", "POST", "/v1/predict", JSON, b'{"texts": ["a", 1]}', 422),
    ("batch item empty", "POST", "/v1/predict", JSON, b'{"texts": ["a", ""]}', 422),
    ("batch item normalises to nothing", "POST", "/v1/predict", JSON, b'{"texts": ["a", "<br />"]}', 422),
    ("batch review normalises to nothing", "POST", "/v1/predict", JSON, b'{"texts": [{"body": "\\";;"}]}', 422),
    ("batch k zero", "POST", "/v1/predict", JSON, b'{"texts": ["a"], "k": 0}', 422),
    ("batch k too big", "POST", "/v1/predict", JSON, b'{"texts": ["a"], "k": 99}', 422),
    ("batch k not int", "POST", "/v1/predict", JSON, b'{"texts": ["a"], "k": "2"}', 422),
    ("batch k bool", "POST", "/v1/predict", JSON, b'{"texts": ["a"], "k": true}', 422),
    ("batch threshold > 1", "POST", "/v1/predict", JSON, b'{"texts": ["a"], "threshold": 2}', 422),
    ("batch threshold negative", "POST", "/v1/predict", JSON, b'{"texts": ["a"], "threshold": -0.1}', 422),
    ("batch threshold string", "POST", "/v1/predict", JSON, b'{"texts": ["a"], "threshold": "x"}', 422),
    ("batch title not a string", "POST", "/v1/predict", JSON, b'{"texts": [{"title": 1}]}', 422),
]


def oversized(limits):
    """Requests over the given limits, each answered 413."""
    return [
        ("text too long", "POST", "/inferreview", FORM,
         b"text=" + b"a" * (limits.max_text_chars + 1), 413),
        ("json text too long", "POST", "/inferreview", JSON,
         b'{"text": "' + b"a" * (limits.max_text_chars + 1) + b'"}', 413),
        ("batch too large", "POST", "/v1/predict", JSON,
         b'{"texts": [' + b",".join([b'"a"'] * (limits.max_batch + 1)) + b"]}", 413),
    ]


def oip_bad_inputs(model: str, limits) -> list:
    """Bad requests to the Open Inference Protocol's routes for `model`, each
    answered the protocol's `{"error": ...}` with its 4xx."""
    infer = f"/v2/models/{model}/infer"

    def text(data, shape=None, **more):
        body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(data) if shape is None else shape],
                            "data": data}], **more}
        return json.dumps(body).encode()

    header = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1],
                                     "parameters": {"binary_data_size": 8}}]}).encode()
    return [
        ("infer malformed json", "POST", infer, JSON, b'{"inputs": ', 400),
        ("infer not an object", "POST", infer, JSON, b"[]", 400),
        ("infer no inputs", "POST", infer, JSON, b'{"inputs": []}', 400),
        ("infer wrong input name", "POST", infer, JSON, text(["a"]).replace(b'"text"', b'"texts"'), 400),
        ("infer wrong datatype", "POST", infer, JSON, text(["a"]).replace(b'"BYTES"', b'"FP32"'), 400),
        ("infer shape not data's", "POST", infer, JSON, text(["a"], shape=2), 400),
        ("infer text not a string", "POST", infer, JSON, text([5]), 400),
        ("infer empty text", "POST", infer, JSON, text([""]), 400),
        ("infer text normalises to nothing", "POST", infer, JSON, text(["<br />"]), 400),
        ("infer k too big", "POST", infer, JSON, text(["a"], parameters={"k": 99}), 400),
        ("infer threshold string", "POST", infer, JSON, text(["a"], parameters={"threshold": "x"}), 400),
        ("infer unknown output", "POST", infer, JSON, text(["a"], outputs=[{"name": "score"}]), 400),
        ("infer binary header too long", "POST", infer,
         {**JSON, "Inference-Header-Content-Length": "99999"}, text(["a"]), 400),
        ("infer binary data cut short", "POST", infer, {"Inference-Header-Content-Length": str(len(header))},
         header + b"\x05\x00\x00\x00abcd", 400),
        ("infer unknown model", "POST", "/v2/models/no-such-model/infer", JSON, text(["a"]), 404),
        ("infer unknown version", "POST", f"/v2/models/{model}/versions/99/infer", JSON, text(["a"]), 404),
        ("infer wrong method", "GET", infer, {}, b"", 405),
        ("unknown model metadata", "GET", "/v2/models/no-such-model", {}, b"", 404),
        ("unknown protocol route", "GET", "/v2/nothing", {}, b"", 404),
        ("infer too many texts", "POST", infer, JSON, text(["a"] * (limits.max_batch + 1)), 413),
        ("infer text too long", "POST", infer, JSON, text(["a" * (limits.max_text_chars + 1)]), 413),
    ]


def assert_json_error(path: str, content_type: str, body) -> None:
    """An error in the shape of its route: the Open Inference Protocol's
    `{"error": ...}` (exactly application/json, as KServe's client reads it)
    from /v2 on, `{"title": ...}` elsewhere."""
    if path.startswith("/v2"):
        assert content_type == "application/json" and set(body) == {"error"} and body["error"], body
    else:
        assert content_type.startswith("application/json") and "title" in body, body
