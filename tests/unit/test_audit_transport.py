"""`ledger-audit` talks to a real HTTP server over urllib3's pool as it would over httpx's own
transport: the whole body, the caller's headers, and the same errors when the ledger fails."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from ledger_audit.client import AuditClient, LedgerUnreachable

# A page of a megabyte and more: read in full, not a first buffer of it.
LINES = b"".join(b'{"position":%d,"pad":"%s"}\n' % (p, b"x" * 900) for p in range(1, 1201))


class Ledger(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # connections kept alive
    callers: ClassVar[list[int]] = []  # the client's port, a request each

    def do_GET(self) -> None:
        self.callers.append(self.client_address[1])
        if self.path.startswith("/slow"):
            time.sleep(1.0)
        if self.path.startswith("/audit/entries"):
            assert self.headers["Authorization"] == "Bearer the-token"
            self._answer(200, LINES, "application/jsonl")
        elif self.path.startswith("/zipped"):
            self._answer(200, gzip.compress(b'{"head": 7}'), "application/json", "gzip")
        else:
            self._answer(404, b'{"detail": "no such page"}', "application/problem+json")

    def _answer(self, status: int, body: bytes, kind: str, encoding: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def ledger_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ledger)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_pages_of_the_log_arrive_whole_and_in_order_over_kept_connections(
    ledger_url: str,
) -> None:
    Ledger.callers.clear()
    client = AuditClient(ledger_url, "the-token")
    try:
        for _ in range(3):
            assert client._lines(0, 1200) == LINES.split(b"\n")[:-1]
    finally:
        client.close()
    assert len(Ledger.callers) == 3
    assert len(set(Ledger.callers)) == 1


def test_an_encoded_answer_is_decoded_as_httpx_would(ledger_url: str) -> None:
    client = AuditClient(ledger_url, "the-token")
    assert client.get("/zipped") == {"head": 7}
    client.close()


def test_an_error_status_is_the_ledgers_answer_not_the_transports(ledger_url: str) -> None:
    client = AuditClient(ledger_url, "the-token")
    with pytest.raises(LedgerUnreachable, match="answered 404: no such page"):
        client.get("/nowhere")
    client.close()


def test_a_ledger_that_answers_too_slowly_is_named_with_the_wait(ledger_url: str) -> None:
    client = AuditClient(ledger_url, "the-token", timeout=0.2)
    with pytest.raises(LedgerUnreachable, match=r"did not answer /slow within 0.2 s"):
        client.get("/slow")
    client.close()


def test_a_ledger_that_is_not_there_is_named_as_not_answering() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    client = AuditClient(f"http://127.0.0.1:{port}", "the-token")
    with pytest.raises(LedgerUnreachable, match=r"did not answer: .*refused"):
        client.head()
    client.close()
