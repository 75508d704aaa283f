"""The metadata schema, as SQLAlchemy Core tables (one schema for SQLite and PostgreSQL).

Times are Unix seconds (float). Changing a table means adding an Alembic migration in
``maxgate/store/migrations/versions``.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# BIGINT primary keys do not autoincrement on SQLite; INTEGER does and is 64-bit there.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

instances = sa.Table(
    "instances",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("chat_id", sa.String(20), nullable=False, unique=True),
    sa.Column("phone", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(20), nullable=False, server_default="authorized"),
    sa.Column("settings", sa.Text, nullable=False, server_default="{}"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("deleted_at", sa.Float, nullable=True),
    # Pacing of the outgoing queue, shared by every server process (delaySendMessagesMilliseconds).
    sa.Column("next_send_at", sa.Float, nullable=False, server_default="0"),
    # The kind of messenger behind the instance (maxgate.domain.messenger): sandbox, maxbot, …
    sa.Column("upstream", sa.String(20), nullable=False, server_default="sandbox"),
)

chats = sa.Table(
    "chats",
    metadata,
    sa.Column("instance_id", sa.BigInteger, primary_key=True),
    sa.Column("chat_id", sa.String(20), primary_key=True),
    sa.Column("type", sa.String(10), nullable=False, server_default="user"),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("phone", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("last_at", sa.Float, nullable=False),
)

files = sa.Table(
    "files",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("instance_id", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # remote | stored | evicted
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.Column("size", sa.BigInteger, nullable=True),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("mime_type", sa.String(255), nullable=False),
    sa.Column("upstream_ref", sa.Text, nullable=True),
    sa.Column("thumbnail", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("stored_at", sa.Float, nullable=True),
    sa.Column("expires_at", sa.Float, nullable=False),
    # Eager mirroring backs off from files the messenger would not deliver.
    sa.Column("fetch_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("retry_at", sa.Float, nullable=False, server_default="0"),
    sa.Index("ix_files_sha256", "sha256"),
    sa.Index("ix_files_state_expires", "state", "expires_at"),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("instance_id", sa.BigInteger, nullable=False),
    sa.Column("chat_id", sa.String(20), nullable=False),
    sa.Column("id_message", sa.String(64), nullable=False),
    sa.Column("direction", sa.String(10), nullable=False),  # incoming | outgoing
    sa.Column("type_message", sa.String(40), nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("sender_id", sa.String(20), nullable=False, server_default=""),
    sa.Column("sender_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("text", sa.Text, nullable=True),
    sa.Column("caption", sa.Text, nullable=False, server_default=""),
    sa.Column("file_id", sa.String(32), nullable=True),
    sa.Column(
        "status", sa.String(10), nullable=True
    ),  # outgoing: pending|sent|delivered|read|failed
    sa.Column("status_description", sa.Text, nullable=True),
    sa.Column("send_by_api", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("quoted_id", sa.String(64), nullable=True),
    sa.Column("upstream_id", sa.String(64), nullable=True),
    # A location, contact card or link preview, as JSON (maxgate.domain.journal reads it).
    sa.Column("details", sa.Text, nullable=True),
    # Edited or removed on the messenger after it was journaled (isEdited, isDeleted).
    sa.Column("is_edited", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("is_deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("instance_id", "chat_id", "id_message", name="uq_messages_chat_id_message"),
    sa.Index("ix_messages_instance_time", "instance_id", "timestamp"),
    sa.Index("ix_messages_chat_time", "instance_id", "chat_id", "timestamp"),
    # The messenger's own id of a message (MAX's mid): edits and removals name it.
    sa.Index("ix_messages_upstream_id", "instance_id", "upstream_id"),
)

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("instance_id", sa.BigInteger, nullable=False),
    sa.Column("message_id", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # pending | sending | done | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("not_before", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("claimed_at", sa.Float, nullable=True),
    # A claim's lease (domain/outbox.py): who holds it ("host/scope/pid/token") and until when
    # (Unix seconds; renewed while the send runs). Gone or expired: the next claim takes it over.
    sa.Column("owner", sa.String(200), nullable=True),
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Index("ix_outbox_state_instance", "state", "instance_id", "id"),
)

sandbox_groups = sa.Table(
    "sandbox_groups",
    metadata,
    sa.Column("chat_id", sa.String(20), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

sandbox_members = sa.Table(
    "sandbox_members",
    metadata,
    sa.Column("chat_id", sa.String(20), primary_key=True),
    sa.Column("instance_id", sa.BigInteger, primary_key=True),
)

sandbox_files = sa.Table(
    "sandbox_files",
    metadata,
    sa.Column("ref", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

sandbox_messages = sa.Table(
    "sandbox_messages",
    metadata,
    # What the sandbox messenger carried, as each account saw it (its history: contacts, chats,
    # backfill, and re-resolving a file whose reference expired).
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("instance_id", sa.BigInteger, nullable=False),
    sa.Column("chat_id", sa.String(20), nullable=False),
    sa.Column("chat_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("chat_phone", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("id_message", sa.String(64), nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("file_ref", sa.String(40), nullable=True),
    sa.Column("body", sa.Text, nullable=False),  # the message as JSON (InboundMessage's fields)
    sa.UniqueConstraint(
        "instance_id", "chat_id", "id_message", name="uq_sandbox_messages_chat_id_message"
    ),
    sa.Index("ix_sandbox_messages_chat_time", "instance_id", "chat_id", "timestamp"),
)

notifications = sa.Table(
    "notifications",
    metadata,
    # The id is the receiptId: a per-instance FIFO is the instance's rows in id order.
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("instance_id", sa.BigInteger, nullable=False),
    sa.Column("type_webhook", sa.String(40), nullable=False),
    # The body as it was when the event happened; a file's link is rendered when read.
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("file_id", sa.String(32), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    # Webhook delivery: failed attempts, when to try again, and who is delivering it now.
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Float, nullable=False, server_default="0"),
    sa.Column("lease_until", sa.Float, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_notifications_instance_id", "instance_id", "id"),
    sa.Index("ix_notifications_created_at", "created_at"),
    # A deleted receipt's id is never handed out again (SQLite would reuse the top id).
    sqlite_autoincrement=True,
)

maxbot_bots = sa.Table(
    "maxbot_bots",
    metadata,
    # One row per instance of kind maxbot: its bot token (never in a log, a repr or
    # getSettings), who the bot is, and where its long poll has got to.
    sa.Column("instance_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("bot_user_id", sa.BigInteger, nullable=True),
    sa.Column("bot_name", sa.String(200), nullable=False, server_default=""),
    # The marker of GET /updates: every update before it has been journaled.
    sa.Column("marker", sa.BigInteger, nullable=True),
    # The webhook subscription this server made (None: long polling).
    sa.Column("webhook_url", sa.Text, nullable=True),
    sa.Column("webhook_secret", sa.String(256), nullable=True),
    # The worker process running this bot's poll (one per bot), and until when.
    sa.Column("owner", sa.String(200), nullable=True),
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
)

maxuser_sessions = sa.Table(
    "maxuser_sessions",
    metadata,
    # One row per instance of kind maxuser: PyMax's SessionInfo as JSON (its login token:
    # never in a log, a repr or getSettings), None while the account is logged out, and the
    # MAX user id of the account once known.
    sa.Column("instance_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("session", sa.Text, nullable=True),
    sa.Column("account_id", sa.BigInteger, nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
)
