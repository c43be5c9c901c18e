"""The catalog's settings, from CATALOG_* environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    """CATALOG_HOST, CATALOG_PORT, CATALOG_DATABASE_URL, CATALOG_MIGRATE_ON_START, …"""

    model_config = SettingsConfigDict(
        env_prefix="CATALOG_", extra="ignore", hide_input_in_errors=True
    )

    port: int = 8001
    database_url: str = "sqlite:///data/catalog.sqlite3"
    # Convenient for `make run`; deployments that run `python -m services.catalog migrate` as a
    # separate step before the service starts set this to false.
    migrate_on_start: bool = True
