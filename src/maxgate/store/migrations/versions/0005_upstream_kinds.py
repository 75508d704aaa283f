"""The upstream kind of each instance, and the sandbox messenger's own history.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        # Every instance so far was a sandbox instance.
        batch.add_column(
            sa.Column("upstream", sa.String(20), server_default="sandbox", nullable=False)
        )
    op.create_table(
        "sandbox_messages",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("instance_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.String(20), nullable=False),
        sa.Column("chat_name", sa.String(200), server_default="", nullable=False),
        sa.Column("chat_phone", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("id_message", sa.String(64), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("file_ref", sa.String(40), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.UniqueConstraint(
            "instance_id", "chat_id", "id_message", name="uq_sandbox_messages_chat_id_message"
        ),
    )
    op.create_index(
        "ix_sandbox_messages_chat_time",
        "sandbox_messages",
        ["instance_id", "chat_id", "timestamp"],
    )


def downgrade() -> None:
    op.drop_index("ix_sandbox_messages_chat_time", table_name="sandbox_messages")
    op.drop_table("sandbox_messages")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("upstream")
