"""Pacing in the database, mirror backoff, outbox claim time.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("next_send_at", sa.Float(), server_default="0", nullable=False))
    with op.batch_alter_table("files") as batch:
        batch.add_column(
            sa.Column("fetch_attempts", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("retry_at", sa.Float(), server_default="0", nullable=False))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_at")
    with op.batch_alter_table("files") as batch:
        batch.drop_column("retry_at")
        batch.drop_column("fetch_attempts")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("next_send_at")
