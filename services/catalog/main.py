"""The catalog service's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.catalog.settings import CatalogSettings
from services.common.app import create_sql_service


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    """Build the catalog app (health only until the catalog issue lands)."""
    return create_sql_service(
        "catalog",
        "Community services catalog",
        "What may be bought, and from whom.",
        settings or CatalogSettings(),
    )
