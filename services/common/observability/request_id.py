"""X-Request-ID: one id per request, in every log line, every answer and every call it makes.

The id a caller sends is kept when it is sane, so a request can be followed across services
(and from the client that started it); anything else is replaced, never echoed, because the
header ends up in log lines and other services' headers.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpx
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
_RAW_HEADER = HEADER.lower().encode("latin-1")
MAX_LENGTH = 128
# No spaces, quotes or control characters: an id is safe to write into a log line or a header.
_SANE = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_LENGTH}}}")

_current: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being handled here, or None outside a request."""
    return _current.get()


def is_sane(value: str) -> bool:
    """True for 1 to 128 characters among letters, digits, `.`, `_` and `-`."""
    return _SANE.fullmatch(value) is not None


def new_request_id() -> str:
    """A fresh id: 32 hexadecimal digits of a random UUID."""
    return uuid.uuid4().hex


@contextmanager
def bound_request_id(request_id: str | None = None) -> Iterator[str]:
    """Make an id current for a block of work outside any request (a worker's poll), and yield it.

    The block's log lines carry it, and its calls through a propagating client pass it on, so
    the other service's lines for those calls can be found with it.
    """
    request_id = request_id if request_id is not None and is_sane(request_id) else new_request_id()
    token = _current.set(request_id)
    try:
        yield request_id
    finally:
        _current.reset(token)


def request_id_headers() -> dict[str, str]:
    """`{"X-Request-ID": id}` inside a request, `{}` outside one: for a call made by hand."""
    request_id = _current.get()
    return {HEADER: request_id} if request_id is not None else {}


def propagate(request: httpx.Request) -> None:
    """An `httpx.Client` request hook: pass this request's id on to the service called."""
    request_id = _current.get()
    # A header set by the caller of the client wins: it knows better which request this is.
    if request_id is not None and HEADER not in request.headers:
        request.headers[HEADER] = request_id


async def propagate_async(request: httpx.Request) -> None:
    """An `httpx.AsyncClient` request hook: pass this request's id on to the service called."""
    propagate(request)


def propagate_from(client: httpx.Client | httpx.AsyncClient) -> None:
    """Add the hook that fits to a client already made (sync or async)."""
    hook: Callable[[httpx.Request], object] = (
        propagate_async if isinstance(client, httpx.AsyncClient) else propagate
    )
    hooks = client.event_hooks
    if hook not in hooks["request"]:  # twice would do no harm, but once is tidier
        client.event_hooks = {**hooks, "request": [*hooks["request"], hook]}


class RequestIdMiddleware:
    """Pure ASGI: gives each request an id, keeps it for the request's context, echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with its id current, and answer with the id in X-Request-ID."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sent = [v.decode("latin-1") for k, v in scope["headers"] if k == _RAW_HEADER]
        # Several ids are as ambiguous as a malformed one: neither is kept.
        request_id = sent[0] if len(sent) == 1 and is_sane(sent[0]) else new_request_id()
        raw_id = request_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k != _RAW_HEADER]
                message = {**message, "headers": [*headers, (_RAW_HEADER, raw_id)]}
            await send(message)

        span = trace.get_current_span()  # FastAPI's request span, when tracing is on
        if span.is_recording():
            span.set_attribute("request_id", request_id)  # the same name as in the log lines
        token = _current.set(request_id)
        # On an exception the id stays set: the server logs that exception next, in this same
        # task, and its line should name the request. Servers run each request in a task of
        # its own (uvicorn in a fresh context), so the id goes no further than that line.
        await self.app(scope, receive, send_with_id)
        _current.reset(token)
