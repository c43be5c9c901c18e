"""httpx's client over urllib3's connection pool, for the auditor's large reads.

A page of the log is megabytes. httpcore parses a response body in Python, 64 kB at a time
(about 1 µs of the auditor's CPU for each entry it downloads, as much as hashing it), where
urllib3 reads it with the standard library's C reader. The client keeps httpx's interface:
its retries, errors and test transports are unchanged.
"""

from __future__ import annotations

import httpx
import urllib3

# A response that cannot be read is the transport failing, whatever urllib3 calls it.
_UNREAD = (urllib3.exceptions.HTTPError, OSError)


class PooledTransport(httpx.BaseTransport):
    """Sends each request on a kept-alive connection from urllib3's pool, and reads the whole
    answer before returning it; safe to share between threads."""

    def __init__(self, connections: int = 8) -> None:
        # No retries or redirects of its own: the client decides what to ask again.
        self._pool = urllib3.PoolManager(maxsize=connections, retries=False)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """The answer to one request, its body read in full."""
        timeouts = request.extensions.get("timeout", {})
        try:
            answer = self._pool.request(
                request.method,
                str(request.url),
                body=request.read(),
                headers=dict(request.headers),
                timeout=urllib3.Timeout(connect=timeouts.get("connect"), read=timeouts.get("read")),
                redirect=False,
                # httpx undoes any Content-Encoding itself, as it would over its own transport.
                decode_content=False,
            )
        # urllib3 counts a refused connection as a kind of connect timeout: it goes first.
        except urllib3.exceptions.NewConnectionError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except urllib3.exceptions.ConnectTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc), request=request) from exc
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc), request=request) from exc
        except _UNREAD as exc:
            raise httpx.ReadError(str(exc), request=request) from exc
        return httpx.Response(
            answer.status,
            headers=list(answer.headers.items()),
            content=answer.data,
            request=request,
        )

    def close(self) -> None:
        """Close every kept connection."""
        self._pool.clear()
