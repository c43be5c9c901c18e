"""The catalog's changes (also its feed) and each record's head.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.common.sql import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_changes",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("stream_id", sa.String(length=36), nullable=False),
        sa.Column("stream_type", sa.String(length=32), nullable=False),
        sa.Column("stream_version", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column("parent_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("position"),
        sa.UniqueConstraint(
            "stream_id", "stream_version", name="uq_catalog_changes_stream_version"
        ),
    )
    op.create_index("ix_catalog_changes_parent", "catalog_changes", ["parent_id"])
    op.create_index(
        "ix_catalog_changes_type_occurred", "catalog_changes", ["stream_type", "occurred_at"]
    )
    op.create_table(
        "catalog_heads",
        sa.Column("stream_id", sa.String(length=36), nullable=False),
        sa.Column("stream_type", sa.String(length=32), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("stream_id"),
        sa.UniqueConstraint("position"),
    )
    op.create_index("ix_catalog_heads_type", "catalog_heads", ["stream_type"])


def downgrade() -> None:
    op.drop_index("ix_catalog_heads_type", table_name="catalog_heads")
    op.drop_table("catalog_heads")
    op.drop_index("ix_catalog_changes_type_occurred", table_name="catalog_changes")
    op.drop_index("ix_catalog_changes_parent", table_name="catalog_changes")
    op.drop_table("catalog_changes")
