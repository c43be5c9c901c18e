"""The README's configuration table names every setting a service reads, and nothing else."""

from __future__ import annotations

import re

from pydantic_settings import BaseSettings

from services.catalog.settings import CatalogSettings
from services.common.auth import AuthSettings
from services.common.settings import ServiceSettings
from services.ledger.settings import LedgerSettings
from services.notifier.settings import NotifierSettings
from tests.support.readme import README

SETTINGS: list[type[BaseSettings]] = [
    CatalogSettings,
    LedgerSettings,
    NotifierSettings,
    AuthSettings,
]


def documented() -> set[str]:
    """The variable names in the first column of the table under `### Configuration`."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {
        name for row in rows for name in re.findall(r"`([A-Z*][A-Z0-9_*]+)`", row.split("|")[1])
    }


def variables() -> set[str]:
    """Every variable the services read: shared ones as `*_NAME`, the rest by their full name."""
    names = {f"*_{field.upper()}" for field in ServiceSettings.model_fields}
    for settings in SETTINGS:
        prefix = settings.model_config.get("env_prefix", "")
        names |= {
            f"{prefix}{field}".upper()
            for field in settings.model_fields
            if settings is AuthSettings or field not in ServiceSettings.model_fields
        }
    return names


def test_every_setting_is_in_the_table_and_the_table_holds_no_other() -> None:
    tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}
    assert documented() - tracing == variables()
