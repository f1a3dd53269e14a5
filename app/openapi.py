"""The API's OpenAPI 3.0 document, served at GET /openapi.json.

Its request schemas are app/api.py's, from the same `Api` object the
resources validate with, so the numbers in it are the ones the worker
enforces. tests/e2e fuzzes the running stack from it (schemathesis): no 5xx,
every answer of the documented status and shape.
"""

from .api import Api
from .classifier import MAX_PROBABILITY

_ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int) -> dict:
    why = {400: "bad input", 404: "no such route", 405: "wrong method", 413: "too large",
           415: "unsupported content type", 422: "a body of the wrong shape",
           503: "not ready (draining, or the self-test failed)"}
    return {str(c): {"description": why[c], "content": {"application/json": {"schema": _ERROR}}}
            for c in codes}


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
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["title"],
                      "properties": {"title": {"type": "string"}, "description": {"type": "string"}}},
            "Status": {"type": "object", "required": ["status"],
                       "properties": {"status": {"type": "string"}}},
        }},
    }
