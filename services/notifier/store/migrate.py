"""Brings a notifier database to the newest schema, keeping its data."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common import migrate

MIGRATIONS = Path(__file__).parents[1] / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's settings for the notifier, without an ini file."""
    return migrate.alembic_config(MIGRATIONS, connection)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply every migration not yet applied, in one transaction."""
    await migrate.upgrade(engine, MIGRATIONS, revision)
