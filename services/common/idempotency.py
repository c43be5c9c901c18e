"""Idempotency-Key for unsafe requests: a retry with the same key gets the first answer again."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.limits import read_body, replaying
from services.common.problems import problem_response

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
KEY_PATTERN = r"^[\x21-\x7E]+$"  # the same in JSON Schema's (ECMA-262) and Python's regexes
# Recomputed for the body actually sent, or meaningful only on the connection that carried them.
_UNSTORED_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "date", "server"}
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_logger = logging.getLogger(__name__)

metadata = sa.MetaData()

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("caller", sa.Text, primary_key=True),
    sa.Column("key", sa.String(MAX_KEY_LENGTH), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    # Microseconds since the Unix epoch, UTC: compares the same on SQLite and PostgreSQL.
    sa.Column("started_at", sa.BigInteger, nullable=False),
    sa.Column("completed", sa.Boolean, nullable=False),
    sa.Column("status", sa.Integer),
    sa.Column("headers", sa.Text),  # JSON list of [name, value] pairs, as the app sent them
    sa.Column("body", sa.LargeBinary),
    sa.Index("ix_idempotency_keys_started_at", "started_at"),
)


async def create_table(engine: AsyncEngine) -> None:
    """Create `idempotency_keys` unless it exists (for services without migrations)."""
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all, checkfirst=True)


@dataclass(frozen=True)
class Started:
    """The key is new: this request runs; `token` names this run to `finish` and `abandon`."""

    token: int


@dataclass(frozen=True)
class Replay:
    """The same request completed earlier: answer what it answered."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Mismatch:
    """The key was used for a different request."""


@dataclass(frozen=True)
class InFlight:
    """The same request is still running."""


Outcome = Started | Replay | Mismatch | InFlight


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


class IdempotencyStore:
    """Keys and the responses they produced, per caller, in the service's own database."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ttl: timedelta = timedelta(hours=24),
        lease: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._ttl = ttl // timedelta(microseconds=1)
        self._lease = lease // timedelta(microseconds=1)
        self._clock = clock

    @staticmethod
    def _row(caller: str, key: str, token: int | None = None) -> sa.ColumnElement[bool]:
        columns = idempotency_keys.c
        where = (columns.caller == caller) & (columns.key == key)
        return where if token is None else where & (columns.started_at == token)

    async def begin(self, caller: str, key: str, fingerprint: str) -> Outcome:
        """Claim `key` for this request, or say why it cannot run."""
        table = idempotency_keys
        now = _micros(self._clock())
        new = {"caller": caller, "key": key, "fingerprint": fingerprint, "started_at": now}
        # A pass ends undecided only when a concurrent request changed the row meanwhile; a few
        # passes settle it, and a client told InFlight simply retries.
        for _ in range(4):
            try:
                async with self._engine.begin() as connection:
                    await connection.execute(sa.insert(table).values(**new, completed=False))
                return Started(now)
            except IntegrityError:
                pass  # the key is taken: the primary key decides races between equal requests
            async with self._engine.begin() as connection:
                found = await connection.execute(sa.select(table).where(self._row(caller, key)))
                row = found.one_or_none()
                if row is None:
                    continue  # abandoned since the insert failed
                this_row = self._row(caller, key, row.started_at)
                if row.started_at <= now - self._ttl:
                    # Expired keys count as absent; delete only this row, not a newer claim.
                    await connection.execute(sa.delete(table).where(this_row))
                    continue
                if row.fingerprint != fingerprint:
                    return Mismatch()
                if row.completed:
                    headers = [(name, value) for name, value in json.loads(row.headers)]
                    return Replay(row.status, headers, row.body)
                if row.started_at > now - self._lease:
                    return InFlight()
                # Unfinished past its lease: the process that ran it died before finishing or
                # abandoning (a live one answers well within the lease), so this request takes
                # it over. Setting started_at only if it is unchanged lets exactly one taker win.
                taken = await connection.execute(
                    sa.update(table)
                    .where(this_row, table.c.completed.is_(False))
                    .values(started_at=now)
                )
                if taken.rowcount == 1:
                    return Started(now)
        return InFlight()

    async def finish(
        self,
        caller: str,
        key: str,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        token: int | None = None,
    ) -> None:
        """Keep the response for replays (unless `token`'s run has lost the key to a takeover)."""
        stored = {"status": status, "headers": json.dumps(headers), "body": body}
        async with self._engine.begin() as connection:
            await connection.execute(
                sa.update(idempotency_keys)
                .where(self._row(caller, key, token))
                .values(completed=True, **stored)
            )

    async def abandon(self, caller: str, key: str, *, token: int | None = None) -> None:
        """Free the key after a failed request, so that a corrected retry runs."""
        async with self._engine.begin() as connection:
            await connection.execute(
                sa.delete(idempotency_keys).where(self._row(caller, key, token))
            )

    async def purge_expired(self) -> int:
        """Delete keys past their time to live; returns how many."""
        cutoff = _micros(self._clock()) - self._ttl
        async with self._engine.begin() as connection:
            result = await connection.execute(
                sa.delete(idempotency_keys).where(idempotency_keys.c.started_at <= cutoff)
            )
        return int(result.rowcount)


def request_fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """sha256 hex over the method, path, query string and body of a request."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode("utf-8", "surrogateescape"), query, body):
        # Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def valid_key(key: str) -> bool:
    """True for 1 to 255 visible ASCII characters."""
    return 0 < len(key) <= MAX_KEY_LENGTH and all("\x21" <= c <= "\x7e" for c in key)


class IdempotencyMiddleware:
    """Pure ASGI: honours Idempotency-Key on POST, PUT, PATCH and DELETE."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: Callable[[], IdempotencyStore | None],
        identify: Callable[[Scope], str | None],
        purge_every: timedelta = timedelta(minutes=10),
    ) -> None:
        self.app = app
        self._store = store
        self._identify = identify
        self._purge_every = purge_every.total_seconds()
        self._next_purge = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run a request once per key; replay or refuse its repeats."""
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        keys = [v.decode("latin-1") for k, v in scope["headers"] if k == b"idempotency-key"]
        caller = self._identify(scope) if keys else None
        if caller is None:
            # No key, or nobody to keep it for: the app answers (401 for the latter).
            await self.app(scope, receive, send)
            return
        store = self._store()
        if len(keys) != 1 or not valid_key(keys[0]):
            await _problem("invalid-idempotency-key", scope, receive, send)
        elif store is None:
            # Running without the guarantee the client asked for could write twice.
            await _problem("idempotency-unavailable", scope, receive, send)
        else:
            await self._once(scope, receive, send, store, caller, keys[0])
            await self._purge(store)

    async def _once(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        store: IdempotencyStore,
        caller: str,
        key: str,
    ) -> None:
        body = await read_body(receive)  # bounded by BodySizeLimitMiddleware, outside this one
        if body is None:
            return  # the client left before sending its request
        method, path, query = scope["method"], scope["path"], scope["query_string"]
        outcome = await store.begin(caller, key, request_fingerprint(method, path, query, body))
        if isinstance(outcome, Started):
            await self._run(
                scope, replaying(body, receive), send, store, caller, key, outcome.token
            )
        elif isinstance(outcome, Replay):
            headers = [*outcome.headers, (REPLAYED_HEADER, "true")]
            await _send(send, outcome.status, headers, outcome.body)
        elif isinstance(outcome, Mismatch):
            await _problem("idempotency-key-reused", scope, receive, send)
        else:
            await _problem("request-in-progress", scope, receive, send, {"Retry-After": "1"})

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        store: IdempotencyStore,
        caller: str,
        key: str,
        token: int,
    ) -> None:
        # Buffered, not streamed: the response is kept before the client sees any of it, so any
        # answer a client gets is one its retry gets too. Bodies are small JSON.
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, receive, capture)
        except Exception:
            # Every write is all-or-nothing, so a failed request wrote nothing: free the key.
            # (A cancelled one keeps its row until the lease runs out, as if its process died.)
            await _quietly(store.abandon(caller, key, token=token))
            raise
        if start is None:
            await _quietly(store.abandon(caller, key, token=token))
            return
        status = int(start["status"])
        body = b"".join(chunks)
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in start.get("headers", [])
            if name.decode("latin-1").lower() not in _UNSTORED_HEADERS
        ]
        if 200 <= status < 300 and _no_store(headers):
            # The answer holds something shown once (a secret): keep that the request ran, so a
            # retry cannot run it again, but not the answer itself.
            kept_status, _, kept_detail = _PROBLEMS["answer-not-kept"]
            kept = problem_response(
                kept_status,
                "Answer not kept",
                kept_detail,
                kind="answer-not-kept",
                instance=scope["path"],
            )
            kept_headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in kept.raw_headers]
            kept_headers = [h for h in kept_headers if h[0].lower() not in _UNSTORED_HEADERS]
            await _quietly(
                store.finish(caller, key, kept_status, kept_headers, bytes(kept.body), token=token)
            )
        elif 200 <= status < 300:
            await _quietly(store.finish(caller, key, status, headers, body, token=token))
        else:
            # Refused, so nothing was written: a corrected retry with the same key may run.
            await _quietly(store.abandon(caller, key, token=token))
        await _send(send, status, headers, body)

    async def _purge(self, store: IdempotencyStore) -> None:
        # A clock check per request; the delete itself runs at most once per interval.
        now = time.monotonic()
        if now >= self._next_purge:
            self._next_purge = now + self._purge_every
            await _quietly(store.purge_expired())


def _no_store(headers: list[tuple[str, str]]) -> bool:
    return any(n.lower() == "cache-control" and "no-store" in v.lower() for n, v in headers)


_PROBLEMS = {
    "answer-not-kept": (
        409,
        "Answer not kept",
        f"the request with this {HEADER} was made, but its answer held a secret shown only "
        "once and was not kept; read the record it made (or rotate its secret)",
    ),
    "invalid-idempotency-key": (
        400,
        "Invalid Idempotency-Key",
        f"{HEADER} must be 1 to 255 visible ASCII characters",
    ),
    "idempotency-unavailable": (
        503,
        "Idempotency unavailable",
        "idempotency keys cannot be kept yet; nothing was written, retry shortly",
    ),
    "idempotency-key-reused": (
        422,
        "Idempotency key reused",
        f"this {HEADER} was already used with a different request; use a new key for a new request",
    ),
    "request-in-progress": (
        409,
        "Request in progress",
        f"a request with this {HEADER} is still being processed; retry shortly",
    ),
}


async def _problem(
    kind: str, scope: Scope, receive: Receive, send: Send, headers: dict[str, str] | None = None
) -> None:
    status, title, detail = _PROBLEMS[kind]
    response = problem_response(status, title, detail, kind=kind, instance=scope["path"])
    response.headers.update(headers or {})
    await response(scope, receive, send)


async def _quietly(action: Awaitable[Any]) -> None:
    # After the app has run, its answer matters more than bookkeeping: an unfinished key is
    # taken over once its lease ends, and an expired one is purged on a later pass.
    try:
        await action
    except Exception:
        _logger.exception("idempotency bookkeeping failed")


async def _send(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    raw = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})
