"""Alembic's entry point for the catalog; run it through `services.catalog.store.migrate`."""

from alembic import context
from sqlalchemy.engine import Connection

from services.catalog.store.tables import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "run the catalog's migrations with `python -m services.catalog migrate`, which hands "
        "Alembic the catalog's own database connection"
    )
# Batch mode lets later migrations alter tables on SQLite, which has little ALTER TABLE.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
