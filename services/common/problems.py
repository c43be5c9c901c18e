"""RFC 9457 problem responses for every service: one place maps errors to HTTP."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from proto.problem import InvalidParam, Problem
from services.common.errors import (
    Forbidden,
    InvalidCommand,
    NotFound,
    RuleViolation,
    Unavailable,
)

PROBLEM_JSON = "application/problem+json"
# A URN: problem kinds are stable names, not pages this project hosts.
PROBLEM_BASE = "urn:community-ledger:problem:"

# Shown in OpenAPI for the error statuses endpoints can answer.
# The header a 409 or 503 sends when the caller should come back, as OpenAPI documents it.
RETRY_AFTER_HEADER: dict[str, Any] = {
    "description": "Seconds to wait before retrying",
    "schema": {"type": "integer"},
}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": description}
    for status, description in {
        400: "The body is not JSON, or a header is malformed",
        401: "No valid bearer token",
        403: "The caller's role or organization may not do this; nothing was written",
        404: "Not found",
        409: "Conflicts with the ledger's current state",
        413: "The body is larger than the service accepts",
        422: "Invalid request",
        503: "A service this one needs did not answer; nothing was written",
    }.items()
}


def problem_body(
    status: int,
    title: str,
    detail: str | None,
    *,
    kind: str | None = None,
    instance: str | None = None,
    invalid_params: list[InvalidParam] | None = None,
) -> dict[str, Any]:
    """A problem's JSON object (RFC 9457), as a response or a line of a stream carries it."""
    problem = Problem(
        type=PROBLEM_BASE + kind if kind else "about:blank",
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        **{"invalid-params": invalid_params},
    )
    return problem.model_dump(mode="json", by_alias=True, exclude_none=True)


def problem_response(
    status: int,
    title: str,
    detail: str | None,
    *,
    kind: str | None = None,
    instance: str | None = None,
    invalid_params: list[InvalidParam] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    body = problem_body(
        status, title, detail, kind=kind, instance=instance, invalid_params=invalid_params
    )
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _location(loc: Sequence[int | str]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


def _reason(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "is invalid"))
    # Pydantic prefixes messages raised by validators; the prefix tells a person nothing.
    return message.removeprefix("Value error, ")


def _words(class_name: str) -> list[str]:
    """PaymentExceedsAccepted -> ["payment", "exceeds", "accepted"]."""
    return [word.lower() for word in re.findall(r"[A-Z][a-z0-9]*", class_name)]


DOMAIN_ERROR_STATUS: Sequence[tuple[type[Exception], int]] = (
    (NotFound, 404),
    (Forbidden, 403),
    (RuleViolation, 409),
    (InvalidCommand, 422),
    (Unavailable, 503),
)


def _document_problems(app: FastAPI) -> None:
    # FastAPI documents a response model under application/json; errors are sent as
    # application/problem+json, so that is where clients (and fuzzers) must find the schema.
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = generate()
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status[:1] in "45" and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def install_problem_handlers(app: FastAPI) -> None:
    """Answer validation errors, HTTP errors and domain errors as problem+json, and say so."""
    _document_problems(app)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        params = [
            InvalidParam(name=_location(e.get("loc", ())), reason=_reason(e)) for e in exc.errors()
        ]
        detail = "; ".join(f"{p.name}: {p.reason}" for p in params)
        return problem_response(
            422,
            "The request is not valid",
            detail,
            kind="invalid-request",
            instance=request.url.path,
            invalid_params=params,
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        title = {401: "Not authenticated", 404: "Not found", 405: "Method not allowed"}.get(
            exc.status_code, "Error"
        )
        response = problem_response(
            exc.status_code, title, str(exc.detail), instance=request.url.path
        )
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)

    for error_class, status in DOMAIN_ERROR_STATUS:

        async def domain_error(
            request: Request, exc: Exception, status: int = status
        ) -> JSONResponse:
            words = _words(type(exc).__name__)
            response = problem_response(
                status,
                " ".join(words).capitalize(),
                str(exc),
                kind="-".join(words),
                instance=request.url.path,
            )
            if isinstance(exc, Unavailable) and exc.retry_after is not None:
                response.headers["Retry-After"] = str(exc.retry_after)
            return response

        app.add_exception_handler(error_class, domain_error)
