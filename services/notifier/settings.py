"""The notifier's settings, from NOTIFIER_* environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    """NOTIFIER_HOST, NOTIFIER_PORT, NOTIFIER_DATABASE_URL, NOTIFIER_LOG_LEVEL."""

    model_config = SettingsConfigDict(
        env_prefix="NOTIFIER_", extra="ignore", hide_input_in_errors=True
    )

    port: int = 8003
    database_url: str = "sqlite:///data/notifier.sqlite3"
