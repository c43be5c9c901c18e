"""`ledger-audit` reads the feed pages ahead, and still yields every entry once, in order."""

from __future__ import annotations

from typing import Any

import pytest

from ledger_audit.client import AuditClient, LedgerUnreachable


def client_of(entries: int, *, skipped: int | None = None) -> tuple[AuditClient, list[int]]:
    """A client whose ledger holds `entries` positions (less `skipped`); and what it was asked."""
    client = AuditClient("http://127.0.0.1:9", "token")
    positions = [p for p in range(1, entries + 1) if p != skipped]
    asked: list[int] = []

    def get(path: str, **params: Any) -> dict[str, Any]:
        assert path == "/events"
        after, limit = params["after"], params["limit"]
        asked.append(after)
        page = [p for p in positions if p > after][:limit]
        return {"entries": [{"position": p} for p in page]}

    client.get = get  # type: ignore[method-assign]
    return client, asked


@pytest.mark.parametrize("entries", [0, 1, 9, 10, 11, 40])
def test_every_entry_once_in_order_whatever_the_feed_length(entries: int) -> None:
    client, asked = client_of(entries)
    read = [entry["position"] for entry in client.feed(page_size=3, ahead=3)]
    assert read == list(range(1, entries + 1))
    # Each page asked for once, and none far beyond the end.
    assert sorted(asked) == sorted(set(asked))
    assert max(asked) <= entries + 3 * 3


def test_a_gap_in_the_positions_is_reported_not_skipped() -> None:
    client, _ = client_of(12, skipped=5)
    read: list[int] = []
    with pytest.raises(LedgerUnreachable, match="answered positions 4, 6, 7… after 3"):
        read.extend(entry["position"] for entry in client.feed(page_size=3, ahead=2))
    assert read == [1, 2, 3]
