"""Bringing a service's database to its newest schema with Alembic, keeping its data."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


def alembic_config(migrations: Path, connection: Connection | None = None) -> Config:
    """Alembic's settings for a service's migrations folder, without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, migrations: Path, revision: str = "head") -> None:
    """Apply every migration not yet applied, in one transaction."""

    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(migrations, connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)
