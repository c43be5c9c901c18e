"""Idempotency-Key: what is refused or passed through before any key is stored, and the docs."""

from __future__ import annotations

import re
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Scope

from services.common.idempotency import (
    KEY_PATTERN,
    IdempotencyMiddleware,
    IdempotencyStore,
    valid_key,
)
from services.common.idempotency_openapi import document_idempotency
from services.common.problems import PROBLEM_RESPONSES, install_problem_handlers

PROBLEM = "urn:community-ledger:problem:"


def caller_of(scope: Scope) -> str | None:
    """The test's stand-in for authentication: an X-Caller header names the caller."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"x-caller":
            return value.decode()
    return None


class Counter:
    """An app whose POST records a write, and answers 401 to a request without a caller."""

    def __init__(self) -> None:
        self.writes = 0

    async def write(self, request: Request) -> JSONResponse:
        if "x-caller" not in request.headers:
            return JSONResponse({"title": "Unauthorized"}, status_code=401)
        self.writes += 1
        return JSONResponse({"write": self.writes}, status_code=201)

    async def read(self, request: Request) -> JSONResponse:
        return JSONResponse({"writes": self.writes})

    def client(self, store: IdempotencyStore | None = None) -> httpx.AsyncClient:
        app = Starlette(
            routes=[
                Route("/writes", self.write, methods=["POST"]),
                Route("/writes", self.read, methods=["GET"]),
            ]
        )
        wrapped = IdempotencyMiddleware(app, store=lambda: store, identify=caller_of)
        transport = httpx.ASGITransport(app=wrapped)
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")


BAD_KEYS = [b"", b"k" * 256, b"two words", "ключ".encode(), b"bell\x07", b"tab\tinside"]


@pytest.mark.asyncio
@pytest.mark.parametrize("key", BAD_KEYS)
async def test_an_invalid_key_is_a_400_problem_and_nothing_runs(key: bytes) -> None:
    counter = Counter()
    async with counter.client() as client:
        response = await client.post(
            "/writes", json={}, headers=[(b"X-Caller", b"alice"), (b"Idempotency-Key", key)]
        )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == PROBLEM + "invalid-idempotency-key"
    assert problem["detail"] == "Idempotency-Key must be 1 to 255 visible ASCII characters"
    assert problem["instance"] == "/writes"
    assert counter.writes == 0


@pytest.mark.asyncio
async def test_two_key_headers_are_a_400() -> None:
    counter = Counter()
    headers = [("X-Caller", "alice"), ("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
    async with counter.client() as client:
        response = await client.post("/writes", json={}, headers=headers)
    assert response.status_code == 400
    assert counter.writes == 0


@pytest.mark.asyncio
async def test_without_a_key_every_request_runs() -> None:
    counter = Counter()
    async with counter.client() as client:
        answers = [await client.post("/writes", json={}, headers={"X-Caller": "a"}) for _ in "ab"]
    assert [a.json() for a in answers] == [{"write": 1}, {"write": 2}]
    assert counter.writes == 2


@pytest.mark.asyncio
async def test_an_unauthenticated_request_reaches_the_app_untouched() -> None:
    counter = Counter()
    async with counter.client() as client:
        # Even with a malformed key: the app's 401 is the answer that matters.
        for key in ("fine", ""):
            response = await client.post("/writes", json={}, headers={"Idempotency-Key": key})
            assert response.status_code == 401
            assert response.json() == {"title": "Unauthorized"}


@pytest.mark.asyncio
async def test_a_safe_method_with_a_key_reaches_the_app() -> None:
    counter = Counter()
    async with counter.client() as client:
        response = await client.get("/writes", headers={"X-Caller": "a", "Idempotency-Key": ""})
    assert response.status_code == 200
    assert response.json() == {"writes": 0}


@pytest.mark.asyncio
async def test_a_key_while_no_store_is_open_is_a_503_and_nothing_runs() -> None:
    counter = Counter()
    async with counter.client(store=None) as client:
        response = await client.post(
            "/writes", json={}, headers={"X-Caller": "a", "Idempotency-Key": "k"}
        )
    assert response.status_code == 503
    assert response.json()["type"] == PROBLEM + "idempotency-unavailable"
    assert counter.writes == 0


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("a", True),
        ("!" + "~" * 254, True),
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
        ("", False),
        ("a" * 256, False),
        ("with space", False),
        ("ключ", False),
        ("del\x7f", False),
    ],
)
def test_the_documented_schema_accepts_exactly_the_keys_the_middleware_accepts(
    key: str, valid: bool
) -> None:
    document = documented_app().openapi()
    parameter = next(
        p
        for p in document["paths"]["/orders"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    )
    assert valid_key(key) is valid
    assert (re.search(KEY_PATTERN, key) is not None and len(key) <= 255) is valid
    if valid:
        jsonschema.validate(key, parameter["schema"])
    else:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(key, parameter["schema"])


def documented_app() -> FastAPI:
    app = FastAPI()

    @app.post("/orders", status_code=201, responses={409: PROBLEM_RESPONSES[409]})
    async def place_order() -> dict[str, str]:
        return {}

    @app.put("/notes/{note_id}")
    async def keep_note(note_id: int) -> dict[str, str]:
        return {}

    @app.get("/orders")
    async def list_orders() -> list[str]:
        return []

    install_problem_handlers(app)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        document_idempotency(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def test_every_unsafe_operation_documents_the_key_and_its_answers() -> None:
    document = documented_app().openapi()
    for path, method in (("/orders", "post"), ("/notes/{note_id}", "put")):
        operation = document["paths"][path][method]
        keys = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert len(keys) == 1
        assert keys[0]["in"] == "header"
        assert keys[0]["required"] is False
        assert "24 hours" in keys[0]["description"]
        for status in ("400", "409", "422"):
            assert "application/problem+json" in operation["responses"][status]["content"]
        # FastAPI documents its own 422 on operations with parameters; the rest are Problems.
        for status in ("400", "409"):
            content = operation["responses"][status]["content"]
            assert content["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }
        assert "Retry-After" in operation["responses"]["409"]["headers"]
        success = next(r for s, r in operation["responses"].items() if s.startswith("2"))
        assert "Idempotent-Replayed" in success["headers"]
    listing = document["paths"]["/orders"]["get"]
    assert "parameters" not in listing
    assert set(listing["responses"]) == {"200"}
    assert "Problem" in document["components"]["schemas"]


def test_responses_an_operation_already_documents_keep_their_description() -> None:
    document = documented_app().openapi()
    responses = document["paths"]["/orders"]["post"]["responses"]
    assert responses["409"]["description"] == PROBLEM_RESPONSES[409]["description"]
    assert "Idempotency-Key" in responses["400"]["description"]
    problem = {"$ref": "#/components/schemas/Problem"}
    assert responses["422"]["content"]["application/problem+json"]["schema"] == problem


def test_documenting_twice_adds_nothing_more() -> None:
    document = documented_app().openapi()
    once = repr(document)
    document_idempotency(document)
    assert repr(document) == once


def test_the_problem_schema_is_added_when_no_operation_documents_one() -> None:
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "paths": {"/x": {"delete": {"responses": {"204": {"description": "Gone"}}}}},
    }
    document_idempotency(document)
    responses = document["paths"]["/x"]["delete"]["responses"]
    reference = responses["422"]["content"]["application/problem+json"]["schema"]["$ref"]
    schemas = document["components"]["schemas"]
    assert schemas[reference.rsplit("/", 1)[1]]["required"] == ["title", "status"]
    problem = {"type": "about:blank", "title": "t", "status": 422, "invalid-params": []}
    resolver_root = {"components": {"schemas": schemas}, **schemas["Problem"]}
    jsonschema.validate(problem, resolver_root)
