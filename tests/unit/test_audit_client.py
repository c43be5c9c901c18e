"""`ledger-audit` reads the log's pages ahead, and still yields every entry once, in order."""

from __future__ import annotations

import httpx
import pytest

from ledger_audit.client import AuditClient, LedgerUnreachable


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
