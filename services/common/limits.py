"""A bound on the size of request bodies, checked before an app reads any of it."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.problems import problem_response

DEFAULT_MAX_BYTES = 1_048_576
_DIGITS = re.compile(r"[0-9]+")


class BodyTooLarge(Exception):
    """The request body passed the limit while it was being read."""


async def read_body(receive: Receive, max_bytes: int | None = None) -> bytes | None:
    """The whole request body, or None if the client left first; BodyTooLarge past `max_bytes`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` in one message, then defers to `receive`."""
    given = False

    async def receive_again() -> Message:
        nonlocal given
        if given:
            return await receive()  # after the body, only a disconnect can come
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive_again


def _size(max_bytes: int) -> str:
    if max_bytes >= 1024 and max_bytes % 1024 == 0:
        return f"{max_bytes} bytes ({max_bytes // 1024} KiB)"
    return f"{max_bytes} bytes"


class BodySizeLimitMiddleware:
    """Pure ASGI: answers 413 to a request whose body is larger than `max_bytes`."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes cannot be negative")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a request whose body is within the limit to the app, whole."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lengths = {v.strip() for k, v in scope["headers"] if k == b"content-length"}
        if lengths:
            declared = lengths.pop().decode("latin-1")
            # Differing repeated lengths are as ambiguous as a malformed one (RFC 9110 §8.6).
            if lengths or not _DIGITS.fullmatch(declared):
                detail = "Content-Length must be a single non-negative integer"
                problem = problem_response(
                    400,
                    "Invalid Content-Length",
                    detail,
                    kind="invalid-content-length",
                    instance=scope["path"],
                )
                await problem(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        # Read it all before the app runs, so that the app never starts on a body that turns out
        # too large (or sees one cut short) when no Content-Length announced it.
        try:
            body = await read_body(receive, self.max_bytes)
        except BodyTooLarge:
            await self._too_large(scope, receive, send)
            return
        if body is not None:  # else the client left: nobody to answer
            await self.app(scope, replaying(body, receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the request body must be at most {_size(self.max_bytes)}"
        problem = problem_response(
            413, "Request body too large", detail, kind="body-too-large", instance=scope["path"]
        )
        # The rest of the body is left unread: the connection cannot carry another request.
        problem.headers["Connection"] = "close"
        await problem(scope, receive, send)
