"""Production mode refuses development secrets; any setting may come from a mounted file."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from services.catalog.main import create_app as create_catalog
from services.catalog.settings import CatalogSettings
from services.common.auth import AuthSettings
from services.common.settings import ConfigurationRefused, refuse_development_secrets
from services.ledger.main import create_app as create_ledger
from services.ledger.settings import LedgerSettings
from services.notifier.main import create_app as create_notifier
from services.notifier.settings import NotifierSettings

SEED = "q4Yd7uCjWm0HfXz5n1oW3v8Bs2Lk9Pe6Rt0Ya4Ui7Ow="  # base64 of 32 bytes: an Ed25519 seed
DEPLOYED_AUTH = AuthSettings(jwt_secret=SecretStr("a secret of this deployment"))


def test_production_refuses_every_development_secret_by_name() -> None:
    with pytest.raises(ConfigurationRefused) as refused:
        refuse_development_secrets(
            "ledger", "production", ["AUTH_JWT_SECRET", "LEDGER_SEALING_KEY"]
        )
    assert "production mode" in str(refused.value)
    assert "AUTH_JWT_SECRET, LEDGER_SEALING_KEY are not set" in str(refused.value)


def test_development_warns_of_each_and_starts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="services")
    refuse_development_secrets("notifier", "development", ["NOTIFIER_ENCRYPTION_KEY"])
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("NOTIFIER_ENCRYPTION_KEY is not set")
    assert "NOTIFIER_MODE=production" in warning


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        pytest.param(
            lambda: create_catalog(CatalogSettings(mode="production"), AuthSettings()),
            ["AUTH_JWT_SECRET"],
            id="catalog",
        ),
        pytest.param(
            lambda: create_ledger(
                LedgerSettings(mode="production", sealing_key=SecretStr("s")), DEPLOYED_AUTH
            ),
            ["LEDGER_BENEFICIARY_KEY", "LEDGER_CHECKPOINT_KEY"],
            id="ledger",
        ),
        pytest.param(
            lambda: create_notifier(NotifierSettings(mode="production"), DEPLOYED_AUTH),
            ["NOTIFIER_ENCRYPTION_KEY"],
            id="notifier",
        ),
    ],
)
def test_each_service_in_production_names_the_development_secrets_it_holds(
    build: object, expected: list[str]
) -> None:
    with pytest.raises(ConfigurationRefused) as refused:
        build()  # type: ignore[operator]
    named = [word.strip(",") for word in str(refused.value).split() if word.isupper()]
    assert [name for name in named if "_" in name] == expected


def test_each_service_in_production_starts_with_secrets_of_its_own() -> None:
    create_catalog(CatalogSettings(mode="production"), DEPLOYED_AUTH)
    create_ledger(
        LedgerSettings(
            mode="production",
            beneficiary_key=SecretStr("b"),
            sealing_key=SecretStr("s"),
            checkpoint_key=SecretStr(SEED),
        ),
        DEPLOYED_AUTH,
    )
    key = Fernet.generate_key().decode()
    create_notifier(
        NotifierSettings(mode="production", encryption_key=SecretStr(key)), DEPLOYED_AUTH
    )


def test_a_secret_is_read_from_a_mounted_file_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ledger_checkpoint_key").write_text(SEED + "\n")
    (tmp_path / "ledger_sealing_key").write_text("from a file")
    monkeypatch.setenv("LEDGER_SEALING_KEY", "from the environment")
    settings = LedgerSettings(_secrets_dir=tmp_path)
    assert settings.checkpoint_key.get_secret_value() == SEED
    assert settings.sealing_key.get_secret_value() == "from the environment"


def test_the_process_exits_with_the_reason_instead_of_serving(tmp_path: Path) -> None:
    environment = os.environ | {
        "CATALOG_MODE": "production",
        "CATALOG_DATABASE_URL": f"sqlite:///{tmp_path}/catalog.sqlite3",
    }
    environment.pop("AUTH_JWT_SECRET", None)
    done = subprocess.run(
        [sys.executable, "-m", "services.catalog"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().startswith("refusing to start: the catalog runs in production mode")
    assert "AUTH_JWT_SECRET" in done.stderr
