"""The MAX user-account connector's sessions (kind ``maxuser``): PyMax's ``SessionInfo`` of
each instance, kept through its ``StoreProtocol``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "maxuser_sessions",
        sa.Column("instance_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("session", sa.Text(), nullable=True),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("maxuser_sessions")
