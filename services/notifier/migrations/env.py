"""Alembic's entry point for the notifier; run it through `services.notifier.store.migrate`."""

from alembic import context
from sqlalchemy.engine import Connection

from services.notifier.store.tables import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "run the notifier's migrations with `python -m services.notifier migrate`, which hands "
        "Alembic the notifier's own database connection"
    )
# Batch mode lets later migrations alter tables on SQLite, which has little ALTER TABLE.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
