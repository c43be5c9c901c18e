"""The notifier service's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app import create_sql_service
from services.common.auth import AuthSettings
from services.notifier.settings import NotifierSettings


def create_app(
    settings: NotifierSettings | None = None, auth: AuthSettings | None = None
) -> FastAPI:
    """Build the notifier app (health only until the notifier issue lands)."""
    return create_sql_service(
        "notifier",
        "Community services notifier",
        "Signed webhooks for the ledger's and the catalog's events.",
        settings or NotifierSettings(),
        auth or AuthSettings(),
    )
