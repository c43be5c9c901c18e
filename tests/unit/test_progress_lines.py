"""A long answer streamed as NDJSON: progress while the work runs, then its answer or the
problem that stopped it; a caller who leaves stops the work."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from services.ledger.api.progress_lines import (
    Abandoned,
    Report,
    progress_lines,
    wants_lines,
)


class Step(BaseModel):
    done: int


class Answer(BaseModel):
    total: int


def stream(work: Any, every: float = 0.01) -> AsyncIterator[bytes]:
    return progress_lines(work, answer="answer", what="The sum", instance="/sums", every=every)


async def lines_of(lines: AsyncIterator[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) async for line in lines]


@pytest.mark.asyncio
async def test_progress_comes_while_the_work_runs_then_its_answer() -> None:
    told = threading.Event()

    def work(report: Report) -> Answer:
        report(Step(done=1))
        told.wait(5)  # until a progress line has gone out
        report(Step(done=2))
        return Answer(total=3)

    received: list[dict[str, Any]] = []
    async for line in stream(work):
        received.append(json.loads(line))
        told.set()
    *progress, last = received
    assert last == {"answer": {"total": 3}}
    assert progress[0] == {"progress": {"done": 1}}
    assert {json.dumps(p) for p in progress} <= {
        json.dumps({"progress": {"done": 1}}),
        json.dumps({"progress": {"done": 2}}),
    }


@pytest.mark.asyncio
async def test_work_that_fails_ends_the_lines_with_a_problem_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def work(report: Report) -> Answer:
        raise RuntimeError("the disk is full")

    received = await lines_of(stream(work))
    assert len(received) == 1
    problem = received[0]["problem"]
    assert problem["status"] == 500
    assert problem["type"].endswith(":stopped-before-its-answer")
    assert problem["instance"] == "/sums"
    assert "The sum stopped at an error" in problem["detail"]
    assert "may be asked for again" in problem["detail"]
    # The cause goes to the log, not to the caller.
    assert "the disk is full" not in json.dumps(problem)
    assert "the disk is full" in caplog.text


@pytest.mark.asyncio
async def test_a_caller_who_leaves_stops_the_work_before_the_stream_closes() -> None:
    stopped = threading.Event()

    def work(report: Report) -> Answer:
        done = 0
        try:
            while True:
                done += 1
                report(Step(done=done))
                threading.Event().wait(0.001)
        except Abandoned:
            stopped.set()
            raise

    lines = stream(work)
    first = await anext(lines)
    assert json.loads(first)["progress"]["done"] >= 1
    await lines.aclose()  # type: ignore[attr-defined]
    # Closing waited for the work to stop: what it held is free once the stream is.
    assert stopped.is_set()


@pytest.mark.parametrize(
    ("accept", "wanted"),
    [
        ("application/x-ndjson", True),
        ("application/json;q=0.5, Application/X-NDJSON; q=1", True),
        ("application/json", False),
        ("application/x-ndjson; q=0, application/json", False),
        ("*/*", False),
        (None, False),
    ],
)
def test_lines_are_sent_only_to_whoever_asks_for_them(accept: str | None, wanted: bool) -> None:
    assert wants_lines(accept) is wanted
