"""Database URLs become the event store's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.ledger.store.config import eventsourcing_env


def test_sqlite_file_url(tmp_path: Path) -> None:
    env = eventsourcing_env(f"sqlite:///{tmp_path}/sub/ledger.sqlite3")
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert env["SQLITE_DBNAME"] == f"{tmp_path}/sub/ledger.sqlite3"
    assert (tmp_path / "sub").is_dir()
    assert env["APPLICATION_RECORDER_TOPIC"].endswith(":SQLiteLedgerRecorder")


def test_postgres_url_with_credentials() -> None:
    env = eventsourcing_env("postgresql://clerk:pw@db.internal:6543/ledger")
    assert {k: env[k] for k in env if k.startswith("POSTGRES_")} == {
        "POSTGRES_DBNAME": "ledger",
        "POSTGRES_HOST": "db.internal",
        "POSTGRES_PORT": "6543",
        "POSTGRES_USER": "clerk",
        "POSTGRES_PASSWORD": "pw",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "60",
    }


def test_postgres_idle_transactions_are_ended_after_the_time_given() -> None:
    env = eventsourcing_env("postgresql://clerk@db.internal/ledger", idle_in_transaction_seconds=0)
    assert env["POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT"] == "0"


def test_postgres_unix_socket_url() -> None:
    env = eventsourcing_env("postgresql://postgres@/ledger?host=/run/postgresql&port=5433")
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("/run/postgresql", "5433")


@pytest.mark.parametrize(
    ("url", "message"),
    [("sqlite://", "needs a SQLite file"), ("mysql://x@y/z", "use sqlite or postgresql")],
)
def test_unsupported_urls_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        eventsourcing_env(url)
