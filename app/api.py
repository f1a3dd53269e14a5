"""The API's requests, defined once: the field names and bounds that
app/resources.py enforces and the request schemas app/openapi.py publishes
at /openapi.json, built from the same `Api` object.

The bounds a deployment sets come from Limits (body size, text length,
batch size); k's from the model's labels.
"""

from .config import Limits

# POST /inferreview: one text, as `text` or as a review's `title` and `body`
# (the batch's texts may be reviews too).
TEXT = "text"
TITLE, BODY = "title", "body"
# POST /v1/predict's JSON body.
TEXTS, K, THRESHOLD = "texts", "k", "threshold"
# The Open Inference Protocol's tensors (app/oip.py): the input, the outputs and
# their datatypes; k and threshold as the request's `parameters`.
INPUT = "text"
LABEL, PROBABILITY = "label", "probability"
OUTPUTS = {LABEL: "BYTES", PROBABILITY: "FP32"}


class Api:
    """The requests' bounds for these limits and labels, and their JSON schemas."""

    def __init__(self, limits: Limits, labels: list[str]):
        self.labels = labels
        self.max_body_bytes = limits.max_body_bytes  # larger bodies get 413 (not in the schemas)
        self.min_text_chars, self.max_text_chars = 1, limits.max_text_chars  # longer: 413
        self.min_texts, self.max_texts = 1, limits.max_batch  # more: 413
        self.min_k, self.max_k, self.default_k = 1, len(labels), 1
        self.min_threshold, self.max_threshold, self.default_threshold = 0, 1, 0

    def text_schema(self) -> dict:
        return {"type": "string", "minLength": self.min_text_chars, "maxLength": self.max_text_chars,
                "description": "a review; normalised as the model's training data was"}

    def review_schema(self) -> dict:
        text = self.text_schema()
        return {"type": "object", "properties": {TITLE: text, BODY: text},
                "minProperties": 1, "additionalProperties": False}

    def inferreview_schemas(self) -> dict:
        """POST /inferreview's request body, by content type."""
        def one_text():
            return {"type": "object", "required": [TEXT], "properties": {TEXT: self.text_schema()},
                    "additionalProperties": False}

        return {"application/x-www-form-urlencoded": {"schema": one_text()},
                "application/json": {"schema": {"oneOf": [one_text(), self.review_schema()]}}}

    def _k_and_threshold(self) -> dict:
        return {
            K: {"type": "integer", "minimum": self.min_k, "maximum": self.max_k, "default": self.default_k},
            THRESHOLD: {"type": "number", "minimum": self.min_threshold, "maximum": self.max_threshold,
                        "default": self.default_threshold},
        }

    def infer_schema(self) -> dict:
        """POST /v2/models/{name}/infer's JSON body (its binary form: app/oip.py)."""
        tensor = {"type": "object", "required": ["name", "datatype", "shape", "data"], "properties": {
            "name": {"type": "string", "enum": [INPUT]},
            "datatype": {"type": "string", "enum": ["BYTES"]},
            "shape": {"type": "array", "minItems": 1, "maxItems": 1,
                      "items": {"type": "integer", "minimum": self.min_texts, "maximum": self.max_texts}},
            "data": {"type": "array", "minItems": self.min_texts, "maxItems": self.max_texts,
                     "items": self.text_schema()},
        }}
        output = {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "enum": list(OUTPUTS)},
            "parameters": {"type": "object", "properties": {"binary_data": {"type": "boolean"}}}}}
        return {"type": "object", "required": ["inputs"], "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object", "properties": {
                **self._k_and_threshold(), "binary_data_output": {"type": "boolean"}}},
            "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": tensor},
            "outputs": {"type": "array", "minItems": 1, "maxItems": len(OUTPUTS), "items": output},
        }}

    def predict_schema(self) -> dict:
        """POST /v1/predict's JSON body."""
        return {
            "type": "object", "required": [TEXTS], "additionalProperties": False,
            "properties": {
                TEXTS: {"type": "array", "minItems": self.min_texts, "maxItems": self.max_texts,
                        "items": {"oneOf": [self.text_schema(), self.review_schema()]}},
                **self._k_and_threshold(),
            }}
