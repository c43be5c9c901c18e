"""Settings every service shares, read from the environment with the service's prefix."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Where a service listens and which database it keeps: LEDGER_PORT, LEDGER_DATABASE_URL, …"""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int
    database_url: str
    log_level: str = "info"
