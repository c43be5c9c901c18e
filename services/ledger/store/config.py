"""Turns a database URL into the settings the `eventsourcing` library reads."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

# How long PostgreSQL lets one of the ledger's transactions sit idle before ending its session.
# The library's own 5 s ended sessions whose thread merely waited that long for a busy core,
# failing the write; a minute still ends a transaction left open by a fault well before its
# locks hold the other writers up for long.
IDLE_IN_TRANSACTION_SECONDS = 60


def eventsourcing_env(
    database_url: str, *, idle_in_transaction_seconds: int = IDLE_IN_TRANSACTION_SECONDS
) -> dict[str, str]:
    """`sqlite:///data/ledger.sqlite3` or `postgresql://user@host:5432/db` to library settings;
    on PostgreSQL, a transaction idle longer than `idle_in_transaction_seconds` (0: no limit)
    ends its session."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = url.database or ""
        if not path or path == ":memory:":
            raise ValueError("the ledger needs a SQLite file, not an in-memory database")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "APPLICATION_RECORDER_TOPIC": "services.ledger.store.recorders:SQLiteLedgerRecorder",
        }
    if backend in ("postgresql", "postgres"):
        # libpq's form for a unix socket: postgresql://user@/db?host=/run/postgresql&port=5432
        socket_dir, query_port = url.query.get("host"), url.query.get("port")
        host = url.host or (socket_dir if isinstance(socket_dir, str) else None) or "localhost"
        port = url.port or (int(query_port) if isinstance(query_port, str) else 5432)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.database or "postgres",
            "POSTGRES_HOST": host,
            "POSTGRES_PORT": str(port),
            "POSTGRES_USER": url.username or "postgres",
            "POSTGRES_PASSWORD": url.password or "",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": str(idle_in_transaction_seconds),
            "APPLICATION_RECORDER_TOPIC": (
                "services.ledger.store.recorders:PostgresLedgerRecorder"
            ),
        }
    raise ValueError(
        f"unsupported database URL scheme {url.drivername!r}: use sqlite or postgresql"
    )
