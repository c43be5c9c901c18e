"""Settings refuse what would fail later or leak: a bad catalog URL stops the ledger at once."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.ledger.settings import LedgerSettings


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://catalog.example", "http(s) URL with a host"),
        ("catalog:8001", "http(s) URL with a host"),
        ("http://", "http(s) URL with a host"),
        ("http://admin:secret@catalog.example", "must not carry credentials"),
    ],
)
def test_a_catalog_url_that_is_not_plain_http_is_refused(url: str, reason: str) -> None:
    with pytest.raises(ValidationError) as refused:
        LedgerSettings(catalog_url=url)
    assert reason in str(refused.value)
    # The refusal is logged at startup: it must not echo credentials from the value.
    assert "secret" not in str(refused.value)


def test_a_catalog_url_is_kept_without_its_trailing_slash() -> None:
    assert LedgerSettings(catalog_url="https://catalog.example/").catalog_url == (
        "https://catalog.example"
    )
