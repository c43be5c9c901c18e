"""Settings every service shares, read from the environment with the service's prefix.

Any setting can also come from a file named after its variable, in lower case, in
`/run/secrets` (e.g. `/run/secrets/ledger_checkpoint_key`), as container platforms mount
secrets; a variable set in the environment wins over a file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger("services")
SECRETS_DIR = Path("/run/secrets")
Mode = Literal["development", "production"]


def secrets_dir() -> Path | None:
    """Where mounted secrets are read from, when the directory exists."""
    return SECRETS_DIR if SECRETS_DIR.is_dir() else None


class ConfigurationRefused(ValueError):
    """The service will not start with these settings."""


class ServiceSettings(BaseSettings):
    """Where a service listens and which database it keeps: LEDGER_PORT, LEDGER_DATABASE_URL, …"""

    # Settings hold secrets: a refused value is named, never echoed into logs.
    model_config = SettingsConfigDict(
        extra="ignore", hide_input_in_errors=True, secrets_dir=secrets_dir()
    )

    host: str = "127.0.0.1"
    port: int
    database_url: str
    log_level: str = "info"
    # json: one JSON object per line, for log collectors; text: readable lines at a terminal.
    log_format: Literal["json", "text"] = "json"
    # production: refuse to start with any development secret; development: warn about each.
    mode: Mode = "development"
    # The largest request body accepted (413 beyond): far above any command, far below harm.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)


def refuse_development_secrets(service: str, mode: Mode, left_unset: Sequence[str]) -> None:
    """In production, refuse to run with secrets anyone can read in the source; else warn."""
    if not left_unset:
        return
    names = ", ".join(left_unset)
    if mode == "production":
        raise ConfigurationRefused(
            f"the {service} runs in production mode but {names} "
            f"{'is' if len(left_unset) == 1 else 'are'} not set, and the development value "
            "anyone can read in the source would be used: set a secret of your own"
        )
    for name in left_unset:
        logger.warning(
            "%s is not set: the development value, which anyone can read in the source, is in "
            "use; set a secret of your own in any deployment (and %s_MODE=production)",
            name,
            service.upper(),
        )
