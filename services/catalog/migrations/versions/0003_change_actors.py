"""Who caused each change: the role, organization and subject of the caller's token.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nobody can say now who caused earlier changes: they stay empty rather than invented.
    with op.batch_alter_table("catalog_changes") as batch:
        batch.add_column(sa.Column("actor_role", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("actor_organization", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("actor_subject", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("catalog_changes") as batch:
        batch.drop_column("actor_subject")
        batch.drop_column("actor_organization")
        batch.drop_column("actor_role")
