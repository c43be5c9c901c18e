"""The ledger's HTTP API as the auditor's tools read it: pages followed to the end."""

from __future__ import annotations

import contextlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx

from ledger_audit.transport import PooledTransport


class LedgerUnreachable(Exception):
    """The ledger did not answer as its API says; the message says what it answered."""


NDJSON = "application/x-ndjson"
# A 503 with Retry-After (the ledger building as many large answers as it allows) is asked
# again this many times, waiting as told, up to this long each time.
BUSY_ATTEMPTS = 6
LONGEST_WAIT_SECONDS = 60.0


class AuditClient:
    """A bearer-token client of the ledger for an auditor (or finance, or a service).

    `timeout` bounds each wait on the network; a reconciliation of a large ledger answers only
    when done, so its callers give it minutes. `waiting` hears why the client pauses.
    """

    def __init__(
        self,
        url: str,
        token: str,
        timeout: float = 30.0,
        *,
        waiting: Callable[[str], None] = lambda message: None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            trust_env=False,
            transport=transport or PooledTransport(),
        )
        self.url = url
        self._waiting = waiting
        self._sleep = sleep

    def get(self, path: str, **params: Any) -> Any:
        """The JSON of a GET; LedgerUnreachable for anything but a 200."""
        return _json(path, self._get(path, params).content)

    def text(self, path: str, **params: Any) -> str:
        """The text of a GET (e.g. CSV)."""
        return self._get(path, params).text

    def lines(self, path: str, **params: Any) -> Iterator[Any]:
        """The JSON of each line of a GET answered as NDJSON, as it arrives; a ledger that
        answers plain JSON instead (an earlier release) gives that as its one line."""
        response = self._get(path, params, accept=NDJSON, stream=True)
        try:
            with self._answering(path):
                if not response.headers.get("content-type", "").startswith(NDJSON):
                    yield _json(path, response.read())
                    return
                for line in response.iter_lines():
                    if line:
                        yield _json(path, line)
        finally:
            response.close()

    @contextlib.contextmanager
    def _answering(self, path: str) -> Iterator[None]:
        """Network failures while waiting on `path`, as LedgerUnreachable."""
        try:
            yield
        except httpx.TimeoutException:
            raise LedgerUnreachable(
                f"the ledger at {self.url} did not answer {path} within "
                f"{self._http.timeout.read:g} s (--timeout sets how long to wait)"
            ) from None
        except httpx.TransportError as exc:
            raise LedgerUnreachable(f"the ledger at {self.url} did not answer: {exc}") from None

    def _get(
        self,
        path: str,
        params: dict[str, Any],
        *,
        accept: str | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        query = {key: value for key, value in params.items() if value is not None}
        headers = {"Accept": accept} if accept else None
        request = self._http.build_request("GET", path, params=query, headers=headers)
        for attempt in range(1, BUSY_ATTEMPTS + 1):
            with self._answering(path):
                response = self._http.send(request, stream=stream)
            pause = _retry_after(response)
            if pause is None or attempt == BUSY_ATTEMPTS:
                break
            response.close()
            self._waiting(f"{path}: the ledger is busy; asking again in {pause:g} s")
            self._sleep(pause)
        if response.status_code != 200:
            with self._answering(path):
                response.read()
            response.close()
            detail = response.text[:500]
            with contextlib.suppress(ValueError):
                detail = response.json().get("detail", detail)
            raise LedgerUnreachable(f"{path} answered {response.status_code}: {detail}")
        return response

    def head(self) -> int:
        """The feed's last position now."""
        head: int = self.get("/events", after=0, limit=1)["head"]
        return head

    def log(self, page_size: int = 10_000, ahead: int = 3) -> Iterator[list[bytes]]:
        """The log's entries in pages, each entry its canonical bytes exactly as served.

        Stops at the first page that is not full: the head when it was read.
        """
        # Positions are dense, so every page's start is known in advance: `ahead` pages are
        # asked for at once, and the ledger serves them while the auditor hashes. The first
        # pages are small, so hashing starts before a full page could have been served.
        ranges = _page_ranges(page_size)
        with ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="ledger-audit-log") as pool:

            def ask() -> tuple[int, Future[list[bytes]]]:
                after, limit = next(ranges)
                return limit, pool.submit(self._lines, after, limit)

            asked = deque(ask() for _ in range(ahead))
            while True:
                limit, page = asked.popleft()
                lines = page.result()
                if len(lines) == limit:
                    asked.append(ask())
                yield lines
                if len(lines) < limit:
                    for _, waiting in asked:
                        waiting.cancel()
                    return

    def _lines(self, after: int, limit: int) -> list[bytes]:
        body = self._get("/audit/entries", {"after": after, "limit": limit}).content
        if not body:
            return []
        if not body.endswith(b"\n"):
            raise LedgerUnreachable(f"/audit/entries after {after} did not end its last line")
        lines = body.split(b"\n")
        lines.pop()  # what follows the last line feed: nothing
        return lines

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


def _json(path: str, text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise LedgerUnreachable(f"{path} did not answer JSON") from None


def _retry_after(response: httpx.Response) -> float | None:
    """How long a 503 asks to wait (seconds, at most a minute); None for any other answer."""
    if response.status_code != 503:
        return None
    value = response.headers.get("Retry-After", "")
    return min(float(value), LONGEST_WAIT_SECONDS) if value.isdigit() else None


def _page_ranges(page_size: int) -> Iterator[tuple[int, int]]:
    """(after, limit) of each page in turn: an eighth of `page_size` first, doubling up to it."""
    after, limit = 0, max(1, page_size // 8)
    while True:
        yield after, limit
        after += limit
        limit = min(page_size, limit * 2)
