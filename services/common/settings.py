"""Settings every service shares, read from the environment with the service's prefix."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Where a service listens and which database it keeps: LEDGER_PORT, LEDGER_DATABASE_URL, …"""

    # Settings hold secrets: a refused value is named, never echoed into logs.
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    host: str = "127.0.0.1"
    port: int
    database_url: str
    log_level: str = "info"
    # The largest request body accepted (413 beyond): far above any command, far below harm.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
