"""Callers' codes for records (unified social credit codes, item codes), so retries find them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing records keep no code: nullable, no backfill needed.
    with op.batch_alter_table("catalog_changes") as batch:
        batch.add_column(sa.Column("code", sa.String(length=64), nullable=True))
        batch.create_index("ix_catalog_changes_type_code", ["stream_type", "code"])


def downgrade() -> None:
    with op.batch_alter_table("catalog_changes") as batch:
        batch.drop_index("ix_catalog_changes_type_code")
        batch.drop_column("code")
