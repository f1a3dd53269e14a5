"""The API's OpenAPI 3.0 document, served at GET /openapi.json.

Its request schemas are app/api.py's, from the same `Api` object the
resources validate with, so the numbers in it are the ones the worker
enforces. tests/e2e fuzzes the running stack from it (schemathesis): no 5xx,
every answer of the documented status and shape.
"""

from .api import OUTPUTS, Api
from .classifier import MAX_PROBABILITY

_ERROR = {"$ref": "#/components/schemas/Error"}
_OIP_ERROR = {"$ref": "#/components/schemas/OipError"}


def _errors(*codes: int) -> dict:
    why = {400: "bad input", 404: "no such route", 405: "wrong method", 413: "too large",
           415: "unsupported content type", 422: "a body of the wrong shape",
           503: "not ready (draining, or the self-test failed)"}
    return {str(c): {"description": why[c], "content": {"application/json": {"schema": _ERROR}}}
            for c in codes}


def _oip_errors(*codes: int) -> dict:
    """The Open Inference Protocol's errors: `{"error": ...}`."""
    why = {400: "bad input", 404: "no such model, version or route", 405: "wrong method",
           413: "too large", 503: "not ready"}
    return {str(c): {"description": why[c], "content": {"application/json": {"schema": _OIP_ERROR}}}
            for c in codes}


def _oip_get(summary: str, schema: dict, *errors: int) -> dict:
    return {"get": {"summary": summary, "responses": {
        "200": {"description": summary, "content": {"application/json": {"schema": schema}}},
        **_oip_errors(404, *errors)}}}


def _object(*required: str, **properties) -> dict:
    return {"type": "object", "required": list(required), "properties": properties}


def _oip_paths(api: Api) -> dict:
    """The Open Inference Protocol's routes (app/oip.py), JSON form."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    string, boolean = {"type": "string"}, {"type": "boolean"}
    tensor = _object("name", "datatype", "shape", **{
        "name": {"type": "string", "enum": list(OUTPUTS)}, "datatype": {"type": "string", "enum": ["BYTES", "FP32"]},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}}, "data": {"type": "array"}})
    return {
        "/v2": _oip_get("The server and the protocol's extensions it speaks",
                        _object("name", "version", "extensions", name=string, version=string,
                                extensions={"type": "array", "items": string})),
        "/v2/health/live": _oip_get("The server answers", _object("live", live=boolean)),
        "/v2/health/ready": _oip_get("The model is loaded and a self-test passed",
                                     _object("ready", ready=boolean), 503),
        "/v2/models/{name}": {**_oip_get("The model's inputs and outputs",
                                         _object("name", "inputs", "outputs", name=string,
                                                 inputs={"type": "array"}, outputs={"type": "array"})),
                              "parameters": [name]},
        "/v2/models/{name}/ready": {**_oip_get("The model is ready",
                                               _object("name", "ready", name=string, ready=boolean), 503),
                                    "parameters": [name]},
        "/v2/models/{name}/infer": {"parameters": [name], "post": {
            "summary": "Labels and probabilities, [N, k], best first in each row (k, threshold: `parameters`)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": api.infer_schema()}}},
            "responses": {
                "200": {"description": "the outputs asked for", "content": {"application/json": {"schema": _object(
                    "model_name", "outputs", model_name=string, model_version=string, id=string,
                    outputs={"type": "array", "items": tensor})}}},
                **_oip_errors(400, 404, 413),
            }}},
    }


def openapi(api: Api) -> dict:
    labels = api.labels
    return {
        "openapi": "3.0.3",
        "info": {"title": "fastText review ratings", "version": "1",
                 "description": "A fastText model rating reviews 1 to 5 stars."},
        "paths": {
            "/inferreview": {"post": {
                "summary": "The best label and its probability (the 2018 article's contract)",
                "requestBody": {"required": True, "content": api.inferreview_schemas()},
                "responses": {
                    "200": {"description": "`{label: probability}`", "content": {"application/json": {
                        "schema": {"type": "object", "minProperties": 1, "maxProperties": 1,
                                   "additionalProperties": {"type": "number", "minimum": 0,
                                                            "maximum": MAX_PROBABILITY}}}}},
                    **_errors(400, 413, 415),
                },
            }},
            "/v1/predict": {"post": {
                "summary": "Top-k labels above a threshold, for a batch of texts",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": api.predict_schema()}}},
                "responses": {
                    "200": {"description": "for each text, up to k labels, best first",
                            "content": {"application/json": {"schema": {
                                "type": "object", "required": ["predictions"],
                                "properties": {"predictions": {"type": "array", "items": {
                                    "type": "array", "items": {
                                        "type": "object", "required": ["label", "probability"],
                                        "properties": {
                                            "label": {"type": "string", "enum": labels},
                                            "probability": {"type": "number", "minimum": 0,
                                                            "maximum": MAX_PROBABILITY}}}}}}}}}},
                    **_errors(400, 413, 415, 422),
                },
            }},
            "/v1/model": {"get": {
                "summary": "The model: labels, dimension, quantized, sha256, preprocessing",
                "responses": {"200": {"description": "the model", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["labels", "sha256"]}}}}},
            }},
            "/healthz": {"get": {"summary": "The process answers", "responses": {
                "200": {"description": "alive", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Status"}}}}}}},
            "/readyz": {"get": {"summary": "The model is loaded and a self-test passed", "responses": {
                "200": {"description": "ready", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Status"}}}},
                **_errors(503)}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {
                "200": {"description": "OpenAPI 3.0", "content": {"application/json": {
                    "schema": {"type": "object"}}}}}}},
            **_oip_paths(api),
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["title"],
                      "properties": {"title": {"type": "string"}, "description": {"type": "string"}}},
            "OipError": {"type": "object", "required": ["error"], "additionalProperties": False,
                         "properties": {"error": {"type": "string"}}},
            "Status": {"type": "object", "required": ["status"],
                       "properties": {"status": {"type": "string"}}},
        }},
    }
