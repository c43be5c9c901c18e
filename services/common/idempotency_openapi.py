"""The Idempotency-Key header and the answers it brings, in each service's OpenAPI document."""

from __future__ import annotations

import copy
from typing import Any

from proto.problem import Problem
from services.common.idempotency import (
    HEADER,
    KEY_PATTERN,
    MAX_KEY_LENGTH,
    REPLAYED_HEADER,
    UNSAFE_METHODS,
)
from services.common.problems import PROBLEM_JSON, RETRY_AFTER_HEADER

_KEY_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Makes this request safe to retry. A retry with the same key and the same request gets "
        "the first successful response again, marked `Idempotent-Replayed: true`, without "
        "writing again; the same key with a different request is a 422, and a retry while the "
        "first request is still running is a 409. Keys are kept per caller for at least 24 "
        "hours. A request that failed frees its key."
    ),
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": KEY_PATTERN,
    },
}
_RESPONSES = {
    "400": "The Idempotency-Key header is not 1 to 255 visible ASCII characters",
    "409": "A request with the same Idempotency-Key is still being processed; retry shortly",
    "422": "The Idempotency-Key was already used with a different request",
}
_REPLAYED = {
    "description": "`true` when this is the stored response to an earlier request with this key",
    "schema": {"type": "string", "enum": ["true"]},
}


def document_idempotency(openapi_schema: dict[str, Any]) -> None:
    """Document the Idempotency-Key header and its answers on every unsafe operation."""
    for operations in openapi_schema.get("paths", {}).values():
        for method, operation in operations.items():
            if method.upper() not in UNSAFE_METHODS or not isinstance(operation, dict):
                continue
            parameters = operation.setdefault("parameters", [])
            if not any(p.get("name", "").lower() == HEADER.lower() for p in parameters):
                parameters.append(copy.deepcopy(_KEY_PARAMETER))
            responses: dict[str, Any] = operation.setdefault("responses", {})
            # A Problem response the operation already documents has the shape the others need.
            template = next((r for s, r in responses.items() if _is_problem(s, r)), None)
            for status, description in _RESPONSES.items():
                if status not in responses:
                    if template is None:
                        _add_problem_schema(openapi_schema)
                        problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
                        template = {"content": {PROBLEM_JSON: problem}}
                    response = copy.deepcopy(template)
                    response.pop("headers", None)
                    responses[status] = {**response, "description": description}
            responses["409"].setdefault("headers", {}).setdefault(
                "Retry-After", copy.deepcopy(RETRY_AFTER_HEADER)
            )
            for status, response in responses.items():
                if str(status)[:1] == "2":
                    response.setdefault("headers", {}).setdefault(
                        REPLAYED_HEADER, copy.deepcopy(_REPLAYED)
                    )


def _is_problem(status: str, response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get(PROBLEM_JSON, {}).get("schema", {})
    return str(status)[:1] in "45" and str(schema.get("$ref", "")).endswith("/Problem")


def _add_problem_schema(openapi_schema: dict[str, Any]) -> None:
    schemas = openapi_schema.setdefault("components", {}).setdefault("schemas", {})
    if "Problem" not in schemas:
        ref_template = "#/components/schemas/{model}"
        schema = Problem.model_json_schema(ref_template=ref_template, mode="serialization")
        for name, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas["Problem"] = schema
