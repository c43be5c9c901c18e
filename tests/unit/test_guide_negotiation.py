"""The guide answers a browser with HTML and any other system with JSON, by the Accept header."""

from __future__ import annotations

import pytest

from services.catalog.api.communities import _prefers_html


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # a browser
        ("text/html", True),
        ("application/json", False),
        ("*/*", False),  # curl, httpx: JSON
        ("application/json, text/html;q=0.1", False),
        ("text/html;q=0, application/json", False),
        ("text/html;q=0.9, application/json;q=0.5", True),
        ("text/html;q=bogus", False),
    ],
)
def test_accept_header_decides(accept: str, html: bool) -> None:
    assert _prefers_html(accept) is html
