"""A long answer streamed as NDJSON: how far the work has gone, about every second, then its
answer, so that neither the caller nor a proxy between takes minutes of silence for a dead
connection (many proxies close one idle for a minute; a million entries take longer)."""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from pydantic import BaseModel
from pydantic_core import to_json

from services.common.observability import current_request_id
from services.common.problems import problem_body

NDJSON = "application/x-ndjson"
EVERY_SECONDS = 1.0
logger = logging.getLogger(__name__)

Report = Callable[[BaseModel], None]
"""Tells the stream how far the work has gone; raises Abandoned once no one listens."""


class Abandoned(Exception):
    """The caller went away: the work stops where it next reports."""


def wants_lines(accept: str | None) -> bool:
    """Whether an Accept header asks for the answer as NDJSON lines (and not with `q=0`)."""
    for part in (accept or "").split(","):
        media_type, *parameters = (piece.strip().lower() for piece in part.split(";"))
        if media_type == NDJSON:
            weights = [
                value
                for name, _, value in (p.partition("=") for p in parameters)
                if name.strip() == "q"
            ]
            return not weights or _weight(weights[0]) > 0
    return False


def _weight(value: str) -> float:
    """An Accept header's `q` (RFC 9110): 0 refuses the media type; unreadable, it counts as 0."""
    try:
        return float(value)
    except ValueError:
        return 0.0


def _line(**one: Any) -> bytes:
    return to_json(one) + b"\n"


def _stopped(what: str, instance: str) -> bytes:
    problem = problem_body(
        500,
        "Stopped before its answer",
        f"{what} stopped at an error the ledger logged under request id "
        f"{current_request_id()}; it found nothing either way, and may be asked for again",
        kind="stopped-before-its-answer",
        instance=instance,
    )
    return _line(problem=problem)


async def progress_lines(
    work: Callable[[Report], BaseModel],
    *,
    answer: str,
    what: str,
    instance: str,
    every: float | None = None,
) -> AsyncIterator[bytes]:
    """Run `work` on a thread of its own and stream, as NDJSON: `{"progress": …}` with the
    latest it reported, every `every` seconds (default EVERY_SECONDS) while it runs; then
    `{answer: …}` with what it returned, or `{"problem": …}` if it raised. Closed early, the
    work is stopped and waited for.
    """
    interval = EVERY_SECONDS if every is None else every
    finished: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    latest: list[BaseModel] = []
    abandoned = threading.Event()

    def report(progress: BaseModel) -> None:
        if abandoned.is_set():
            raise Abandoned
        latest[:] = [progress]

    def run() -> None:
        try:
            finished.put(_line(**{answer: work(report).model_dump(mode="json")}))
        except Abandoned:
            pass
        except Exception:
            logger.exception("%s stopped at an error", what)
            finished.put(_stopped(what, instance))

    # The request's context (its id, for the log and the problem) goes with the work.
    thread = threading.Thread(
        target=contextvars.copy_context().run, args=(run,), name="ledger-long-answer", daemon=True
    )
    thread.start()
    try:
        while True:
            try:
                line = await anyio.to_thread.run_sync(finished.get, True, interval)
            except queue.Empty:
                if latest:
                    yield _line(progress=latest[0].model_dump(mode="json"))
                continue
            yield line
            return
    finally:
        # Whatever the work holds (a large-read slot, a core) is held until it has stopped.
        abandoned.set()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(thread.join)
