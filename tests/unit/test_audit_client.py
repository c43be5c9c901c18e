"""`ledger-audit` reads the log's pages ahead, and still yields every entry once, in order; it
asks a busy ledger again after the wait it names, and says why it gave up."""

from __future__ import annotations

import httpx
import pytest

from ledger_audit.client import (
    BUSY_ATTEMPTS,
    LONGEST_WAIT_SECONDS,
    AuditClient,
    LedgerUnreachable,
)


def client_of(entries: int, *, unended: bool = False) -> tuple[AuditClient, list[int]]:
    """A client of a ledger whose log holds `entries` positions; and the pages it was asked."""
    asked: list[int] = []

    def serve(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/audit/entries"
        after, limit = int(request.url.params["after"]), int(request.url.params["limit"])
        asked.append(after)
        lines = "".join(f'{{"position":{p}}}\n' for p in range(after + 1, entries + 1)[:limit])
        if unended:
            lines = lines.removesuffix("\n")
        return httpx.Response(200, text=lines, headers={"Content-Type": "application/jsonl"})

    client = AuditClient("http://ledger.test", "token")
    client._http = httpx.Client(base_url=client.url, transport=httpx.MockTransport(serve))
    return client, asked


@pytest.mark.parametrize("entries", [0, 1, 7, 8, 9, 10, 11, 40, 41])
def test_every_entry_once_in_order_whatever_the_log_length(entries: int) -> None:
    client, asked = client_of(entries)
    pages = list(client.log(page_size=8, ahead=3))
    assert [line for page in pages for line in page] == [
        f'{{"position":{p}}}'.encode() for p in range(1, entries + 1)
    ]
    # Small pages first, doubling to the page size; only the last is short, and ends the log.
    limits = [1, 2, 4, 8, 8, 8, 8, 8]
    assert [len(page) for page in pages[:-1]] == limits[: len(pages) - 1]
    assert len(pages[-1]) < limits[len(pages) - 1]
    # Each page asked for once, and none far beyond the end.
    assert sorted(asked) == sorted(set(asked))
    assert max(asked) <= entries + 3 * 8


def test_a_page_whose_last_line_is_cut_off_is_not_taken_for_entries() -> None:
    client, _ = client_of(5, unended=True)
    with pytest.raises(LedgerUnreachable, match="did not end its last line"):
        list(client.log(page_size=3, ahead=2))


def busy_ledger(
    busy_answers: int, *, retry_after: str | None = "3"
) -> tuple[AuditClient, list[str], list[float]]:
    """A client of a ledger that answers 503 `busy_answers` times, then the reconciliation."""
    asked: list[str] = []
    slept: list[float] = []
    heard: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if len(asked) <= busy_answers:
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            problem = {"status": 503, "detail": "already building 2 large answers"}
            return httpx.Response(503, json=problem, headers=headers)
        return httpx.Response(200, json={"violations": []})

    client = AuditClient(
        "http://ledger.test",
        "token",
        waiting=heard.append,
        sleep=slept.append,
        transport=httpx.MockTransport(serve),
    )
    return client, heard, slept


def test_a_busy_ledger_is_asked_again_after_the_wait_it_names() -> None:
    client, heard, slept = busy_ledger(2)
    assert client.get("/audit/reconcile") == {"violations": []}
    assert slept == [3.0, 3.0]
    assert heard == ["/audit/reconcile: the ledger is busy; asking again in 3 s"] * 2


def test_a_ledger_busy_for_too_long_is_reported_with_its_reason() -> None:
    client, _, slept = busy_ledger(BUSY_ATTEMPTS)
    with pytest.raises(LedgerUnreachable, match="answered 503: already building 2 large answers"):
        client.get("/audit/reconcile")
    assert len(slept) == BUSY_ATTEMPTS - 1


@pytest.mark.parametrize("retry_after", [None, "Wed, 21 Oct 2026 07:28:00 GMT"])
def test_a_503_without_a_wait_in_seconds_is_not_asked_again(retry_after: str | None) -> None:
    client, _, slept = busy_ledger(1, retry_after=retry_after)
    with pytest.raises(LedgerUnreachable, match="answered 503"):
        client.get("/audit/reconcile")
    assert slept == []


def test_a_wait_asked_for_is_capped() -> None:
    client, _, slept = busy_ledger(1, retry_after="86400")
    client.get("/audit/reconcile")
    assert slept == [LONGEST_WAIT_SECONDS]


def test_an_answer_slower_than_the_timeout_says_how_to_wait_longer() -> None:
    def serve(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = AuditClient("http://ledger.test", "token", 45, transport=httpx.MockTransport(serve))
    with pytest.raises(
        LedgerUnreachable, match=r"did not answer /audit/reconcile within 45 s \(--timeout"
    ):
        client.get("/audit/reconcile")


def ledger_answering(
    content: str, content_type: str, *, busy_first: bool = False
) -> tuple[AuditClient, list[str]]:
    """A client of a ledger whose reconciliation answers `content`, after one 503 if asked;
    and the Accept header of each time it was asked."""
    accepted: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        accepted.append(request.headers.get("Accept", ""))
        if busy_first and len(accepted) == 1:
            return httpx.Response(503, json={"detail": "busy"}, headers={"Retry-After": "1"})
        return httpx.Response(200, text=content, headers={"Content-Type": content_type})

    client = AuditClient(
        "http://ledger.test", "token", sleep=lambda _: None, transport=httpx.MockTransport(serve)
    )
    return client, accepted


@pytest.mark.parametrize("busy_first", [False, True])
def test_an_answer_in_lines_is_read_line_by_line(busy_first: bool) -> None:
    lines = '{"progress":{"stage":"replaying"}}\n\n{"reconciliation":{"violations":[]}}\n'
    client, accepted = ledger_answering(lines, "application/x-ndjson", busy_first=busy_first)
    assert list(client.lines("/audit/reconcile")) == [
        {"progress": {"stage": "replaying"}},
        {"reconciliation": {"violations": []}},
    ]
    # Asked for lines each time, the time after a 503 too.
    assert accepted == ["application/x-ndjson"] * (2 if busy_first else 1)


def test_a_ledger_answering_plain_json_instead_of_lines_gives_it_as_one() -> None:
    client, _ = ledger_answering('{"violations": []}', "application/json")
    assert list(client.lines("/audit/reconcile")) == [{"violations": []}]


def test_a_line_that_is_not_json_is_named() -> None:
    client, _ = ledger_answering('{"progress":{}}\n<html>\n', "application/x-ndjson")
    with pytest.raises(LedgerUnreachable, match="/audit/reconcile did not answer JSON"):
        list(client.lines("/audit/reconcile"))
