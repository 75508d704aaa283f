"""What a message carries besides text and files (location, contact card, link preview), and
whether it was edited or removed on the messenger after it was journaled.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("details", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("is_edited", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(
            sa.Column("is_deleted", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("is_deleted")
        batch.drop_column("is_edited")
        batch.drop_column("details")
