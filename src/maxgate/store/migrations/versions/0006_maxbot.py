"""The MAX Bot API connector's bots (token, marker, subscription), and messages found by the
messenger's own id.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "maxbot_bots",
        sa.Column("instance_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("bot_user_id", sa.BigInteger(), nullable=True),
        sa.Column("bot_name", sa.String(200), server_default="", nullable=False),
        sa.Column("marker", sa.BigInteger(), nullable=True),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("webhook_secret", sa.String(256), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_messages_upstream_id", "messages", ["instance_id", "upstream_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_upstream_id", table_name="messages")
    op.drop_table("maxbot_bots")
