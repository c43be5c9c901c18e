"""Request bodies past the limit are refused before the app sees any of them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.common.limits import BodySizeLimitMiddleware

pytestmark = pytest.mark.asyncio

LIMIT = 1024


class Echo:
    """An app that records each body it receives and answers with its length."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def upload(self, request: Request) -> JSONResponse:
        body = await request.body()
        self.bodies.append(body)
        return JSONResponse({"length": len(body)}, status_code=201)

    def client(self, max_bytes: int = LIMIT) -> httpx.AsyncClient:
        app = Starlette(routes=[Route("/uploads", self.upload, methods=["POST"])])
        limited = BodySizeLimitMiddleware(app, max_bytes=max_bytes)
        transport = httpx.ASGITransport(app=limited)
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def assert_problem(response: httpx.Response, status: int, kind: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, object] = response.json()
    assert problem["status"] == status
    assert problem["type"] == f"urn:community-ledger:problem:{kind}"
    assert problem["instance"] == "/uploads"
    return problem


async def test_a_declared_length_past_the_limit_is_413_and_the_app_never_runs() -> None:
    echo = Echo()
    async with echo.client() as client:
        response = await client.post("/uploads", content=b"x" * (LIMIT + 1))
    problem = assert_problem(response, 413, "body-too-large")
    assert problem["title"] == "Request body too large"
    assert problem["detail"] == "the request body must be at most 1024 bytes (1 KiB)"
    assert echo.bodies == []


async def test_the_default_limit_is_one_mebibyte() -> None:
    echo = Echo()
    app = Starlette(routes=[Route("/uploads", echo.upload, methods=["POST"])])
    transport = httpx.ASGITransport(app=BodySizeLimitMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        at_limit = await client.post("/uploads", content=b"x" * 1_048_576)
        past = await client.post("/uploads", content=b"x" * 1_048_577)
    assert at_limit.status_code == 201
    assert at_limit.json() == {"length": 1_048_576}
    problem = assert_problem(past, 413, "body-too-large")
    assert "1048576 bytes (1024 KiB)" in str(problem["detail"])
    assert len(echo.bodies) == 1


async def test_a_chunked_body_that_grows_past_the_limit_is_413_and_the_app_never_runs() -> None:
    echo = Echo()
    async with echo.client() as client:
        # No Content-Length: only counting the streamed bytes can catch it.
        response = await client.post("/uploads", content=chunks(b"a" * 600, b"b" * 600))
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "body-too-large")
    assert echo.bodies == []


async def test_a_chunked_body_within_the_limit_reaches_the_app_whole() -> None:
    echo = Echo()
    parts = (b"first;", b"", b"second;" * 10, bytes(range(256)))
    async with echo.client() as client:
        response = await client.post("/uploads", content=chunks(*parts))
    assert response.status_code == 201, response.text
    assert echo.bodies == [b"".join(parts)]


async def test_a_body_of_exactly_the_limit_passes() -> None:
    echo = Echo()
    async with echo.client() as client:
        response = await client.post("/uploads", content=b"y" * LIMIT)
    assert response.status_code == 201
    assert echo.bodies == [b"y" * LIMIT]


async def test_a_request_without_a_body_passes() -> None:
    echo = Echo()
    async with echo.client(max_bytes=0) as client:
        response = await client.post("/uploads")
    assert response.status_code == 201
    assert echo.bodies == [b""]


@pytest.mark.parametrize("length", ["abc", "-1", "+5", "1e3", "5, 5", ""])
async def test_an_invalid_content_length_is_400_and_the_app_never_runs(length: str) -> None:
    echo = Echo()
    async with echo.client() as client:
        response = await client.post(
            "/uploads", content=b"hello", headers={"Content-Length": length}
        )
    problem = assert_problem(response, 400, "invalid-content-length")
    assert problem["title"] == "Invalid Content-Length"
    assert echo.bodies == []


async def test_conflicting_content_lengths_are_400() -> None:
    echo = Echo()
    async with echo.client() as client:
        response = await client.post(
            "/uploads", content=b"hello", headers=[("Content-Length", "5"), ("Content-Length", "6")]
        )
    assert_problem(response, 400, "invalid-content-length")
    assert echo.bodies == []
