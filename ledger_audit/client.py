"""The ledger's HTTP API as the auditor's tools read it: pages followed to the end."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx


class LedgerUnreachable(Exception):
    """The ledger did not answer as its API says; the message says what it answered."""


class AuditClient:
    """A bearer-token client of the ledger for an auditor (or finance, or a service)."""

    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self._http = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            trust_env=False,
        )
        self.url = url

    def get(self, path: str, **params: Any) -> Any:
        """The JSON of a GET; LedgerUnreachable for anything but a 200."""
        response = self._get(path, params)
        try:
            return response.json()
        except ValueError:
            raise LedgerUnreachable(f"{path} did not answer JSON") from None

    def text(self, path: str, **params: Any) -> str:
        """The text of a GET (e.g. CSV)."""
        return self._get(path, params).text

    def _get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        query = {key: value for key, value in params.items() if value is not None}
        try:
            response = self._http.get(path, params=query)
        except httpx.TransportError as exc:
            raise LedgerUnreachable(f"the ledger at {self.url} did not answer: {exc}") from None
        if response.status_code != 200:
            detail = response.text[:500]
            with contextlib.suppress(ValueError):
                detail = response.json().get("detail", detail)
            raise LedgerUnreachable(f"{path} answered {response.status_code}: {detail}")
        return response

    def head(self) -> int:
        """The feed's last position now."""
        head: int = self.get("/events", after=0, limit=1)["head"]
        return head

    def feed(self, page_size: int = 1000, ahead: int = 3) -> Iterator[dict[str, Any]]:
        """Every feed entry in order, as served (parsed JSON, never re-rendered).

        Stops at the first page that is not full: the head when it was read.
        """
        # Positions are dense, so the nth page starts after n × page_size: `ahead` pages are
        # asked for at once, and the ledger serves them while the auditor hashes.
        with ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="ledger-audit-feed") as pool:

            def ask(page: int) -> Future[dict[str, Any]]:
                return pool.submit(self.get, "/events", after=page * page_size, limit=page_size)

            asked = deque(ask(page) for page in range(ahead))
            after = 0
            while True:
                entries = asked.popleft().result()["entries"]
                positions = [entry["position"] for entry in entries]
                if positions != list(range(after + 1, after + 1 + len(positions))):
                    shown = ", ".join(map(str, positions[:5]))
                    raise LedgerUnreachable(f"the feed answered positions {shown}… after {after}")
                if len(entries) == page_size:
                    asked.append(ask(after // page_size + 1 + len(asked)))
                yield from entries
                after += len(entries)
                if len(entries) < page_size:
                    for waiting in asked:
                        waiting.cancel()
                    return

    def leaves(self, up_to: int) -> Iterator[tuple[int, str]]:
        """(position, leaf hash) as the ledger recorded them, up to a position."""
        after = 0
        while after < up_to:
            page = self.get("/audit/leaves", after=after, limit=1000)
            if not page["leaves"]:
                return
            for leaf in page["leaves"]:
                yield leaf["position"], leaf["leaf_hash"]
            after = page["next_after"]

    def checkpoints(self) -> list[dict[str, Any]]:
        """Every checkpoint the ledger kept, oldest first."""
        found: list[dict[str, Any]] = []
        cursor: int | None = 0
        while cursor is not None:
            page = self.get("/audit/checkpoints", limit=100, cursor=cursor)
            found += page["items"]
            cursor = page["next_cursor"]
        return sorted(found, key=lambda c: c["tree_size"])

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()
