"""The journal: every message an instance sent or received, and its chats.

An outgoing message is written with its file row and its outbox entry in one transaction; an
incoming one with its file row (state ``remote``) and its chat. The journal is also the sink the
upstream reports inbound messages and status changes to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from maxgate.blobs import StoredBlob
from maxgate.domain import ids
from maxgate.domain.files import Files, row_to_file
from maxgate.domain.records import Instance, Message
from maxgate.errors import StoreConflict
from maxgate.store import tables as t
from maxgate.store.database import Database, upsert
from maxgate.upstream.base import InboundMessage

_STATUS_ORDER = {"pending": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}

_FILE_COLUMNS = [c.label("f_" + c.name) for c in t.files.c]
_MESSAGE_QUERY = sa.select(t.messages, *_FILE_COLUMNS).select_from(
    t.messages.outerjoin(t.files, t.files.c.id == t.messages.c.file_id)
)


_BY_KEY = _MESSAGE_QUERY.where(
    t.messages.c.instance_id == sa.bindparam("instance_id"),
    t.messages.c.chat_id == sa.bindparam("chat_id"),
    t.messages.c.id_message == sa.bindparam("id_message"),
)


def _row_to_message(row: Any) -> Message:
    m = row._mapping
    return Message(
        pk=m["id"],
        instance_id=m["instance_id"],
        chat_id=m["chat_id"],
        id_message=m["id_message"],
        direction=m["direction"],
        type_message=m["type_message"],
        timestamp=m["timestamp"],
        sender_id=m["sender_id"],
        sender_name=m["sender_name"],
        text=m["text"],
        caption=m["caption"],
        status=m["status"],
        status_description=m["status_description"],
        send_by_api=bool(m["send_by_api"]),
        quoted_id=m["quoted_id"],
        file=row_to_file(row, "f_") if m["f_id"] is not None else None,
    )


class Journal:
    """Writes and reads the per-instance message journal."""

    def __init__(self, db: Database, files: Files) -> None:
        self.db = db
        self.files = files
        self.on_outbox: Callable[[], None] = lambda: None
        self.on_remote_file: Callable[[], None] = lambda: None

    async def _touch_chat(
        self, conn: Any, instance_id: int, chat_id: str, *, name: str = "", phone: int = 0
    ) -> None:
        chat_type = "group" if chat_id.startswith("-") else "user"
        values = {
            "instance_id": instance_id,
            "chat_id": chat_id,
            "type": chat_type,
            "name": name,
            "phone": phone if chat_type == "user" else 0,
            "last_at": time.time(),
        }
        update = ["last_at", "name", "phone"] if name else ["last_at"]
        await conn.execute(
            upsert(self.db.dialect, t.chats, values, keys=["instance_id", "chat_id"], update=update)
        )

    async def record_outgoing(
        self,
        instance: Instance,
        chat_id: str,
        *,
        text: str | None = None,
        blob: StoredBlob | None = None,
        file_name: str = "",
        mime_type: str = "",
        type_message: str = "textMessage",
        caption: str = "",
        quoted_id: str | None = None,
    ) -> Message:
        """Journal an outgoing API message and queue it for the messenger, atomically."""
        for attempt in range(3):
            try:
                return await self._record_outgoing(
                    instance, chat_id, text, blob, file_name, mime_type, type_message, caption,
                    quoted_id,
                )  # fmt: skip
            except StoreConflict:
                if attempt == 2:  # another process drew the same idMessage in the same ms
                    raise
        raise AssertionError("unreachable")

    async def _record_outgoing(
        self,
        instance: Instance,
        chat_id: str,
        text: str | None,
        blob: StoredBlob | None,
        file_name: str,
        mime_type: str,
        type_message: str,
        caption: str,
        quoted_id: str | None,
    ) -> Message:
        id_message = ids.new_message_id()
        file_id = None
        thumbnail = await self.files.thumbnail_for(blob, mime_type) if blob is not None else ""
        async with self.db.write() as conn:
            if blob is not None:
                file_row = self.files.stored_row(instance.id, blob, file_name, mime_type, thumbnail)
                file_id = file_row["id"]
                await self.files.record_blob(conn, blob)
                await conn.execute(t.files.insert().values(**file_row))
            result = await conn.execute(
                t.messages.insert().values(
                    instance_id=instance.id,
                    chat_id=chat_id,
                    id_message=id_message,
                    direction="outgoing",
                    type_message=type_message,
                    timestamp=int(time.time()),
                    sender_id=instance.chat_id,
                    sender_name=instance.name,
                    text=text,
                    caption=caption,
                    file_id=file_id,
                    status="pending",
                    send_by_api=True,
                    quoted_id=quoted_id,
                )
            )
            message_pk = result.inserted_primary_key[0]  # type: ignore[index]
            await conn.execute(
                t.outbox.insert().values(
                    instance_id=instance.id,
                    message_id=message_pk,
                    state="pending",
                    not_before=0.0,
                    created_at=time.time(),
                )
            )
            await self._touch_chat(conn, instance.id, chat_id)
        self.on_outbox()
        message = await self.get(instance.id, chat_id, id_message)
        assert message is not None
        return message

    async def on_message(self, message: InboundMessage) -> None:
        """Journal an inbound message (idempotent: a repeated idMessage is ignored)."""
        try:
            new = await self._journal_inbound(message)
        except StoreConflict:
            return  # the same message, journaled at the same moment by another process
        if new and message.file is not None:
            self.on_remote_file()

    async def _journal_inbound(self, message: InboundMessage) -> bool:
        """Write an inbound message; False when it was already journaled."""
        async with self.db.write() as conn:
            exists = (
                await conn.execute(
                    sa.select(t.messages.c.id).where(
                        t.messages.c.instance_id == message.instance_id,
                        t.messages.c.chat_id == message.chat_id,
                        t.messages.c.id_message == message.id_message,
                    )
                )
            ).first()
            if exists:
                return False
            file_id = None
            if message.file is not None:
                file_row = self.files.remote_row(message.instance_id, message.file)
                file_id = file_row["id"]
                await conn.execute(t.files.insert().values(**file_row))
            await conn.execute(
                t.messages.insert().values(
                    instance_id=message.instance_id,
                    chat_id=message.chat_id,
                    id_message=message.id_message,
                    direction="incoming",
                    type_message=message.type_message,
                    timestamp=message.timestamp,
                    sender_id=message.sender_id,
                    sender_name=message.sender_name,
                    text=message.text,
                    caption=message.caption,
                    file_id=file_id,
                    quoted_id=message.quoted_id,
                )
            )
            await self._touch_chat(
                conn,
                message.instance_id,
                message.chat_id,
                name=message.chat_name,
                phone=message.sender_phone if message.chat_type == "user" else 0,
            )
        return True

    async def on_status(self, instance_id: int, chat_id: str, id_message: str, status: str) -> None:
        """Advance an outgoing message's status (never backwards, except to failed)."""
        async with self.db.write() as conn:
            current = (
                await conn.execute(
                    sa.select(t.messages.c.status).where(
                        t.messages.c.instance_id == instance_id,
                        t.messages.c.chat_id == chat_id,
                        t.messages.c.id_message == id_message,
                    )
                )
            ).scalar()
            if current is None or _STATUS_ORDER.get(status, 0) <= _STATUS_ORDER.get(current, 0):
                return
            await conn.execute(
                t.messages.update()
                .where(
                    t.messages.c.instance_id == instance_id,
                    t.messages.c.chat_id == chat_id,
                    t.messages.c.id_message == id_message,
                )
                .values(status=status)
            )

    async def fail(self, message: Message, description: str) -> None:
        """Mark an outgoing message failed, with the reason."""
        async with self.db.write() as conn:
            await conn.execute(
                t.messages.update()
                .where(t.messages.c.id == message.pk)
                .values(status="failed", status_description=description)
            )

    async def get(self, instance_id: int, chat_id: str, id_message: str) -> Message | None:
        """One message of one chat of one instance, or None."""
        row = await self.db.fetch_one(
            _BY_KEY, {"instance_id": instance_id, "chat_id": chat_id, "id_message": id_message}
        )
        return _row_to_message(row) if row else None

    async def get_by_pk(self, pk: int) -> Message | None:
        """A message by its row id, or None."""
        row = await self.db.fetch_one(_MESSAGE_QUERY.where(t.messages.c.id == pk))
        return _row_to_message(row) if row else None

    async def history(self, instance_id: int, chat_id: str, count: int) -> list[Message]:
        """The newest ``count`` messages of a chat, newest first."""
        query = (
            _MESSAGE_QUERY.where(
                t.messages.c.instance_id == instance_id, t.messages.c.chat_id == chat_id
            )
            .order_by(t.messages.c.timestamp.desc(), t.messages.c.id.desc())
            .limit(count)
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_row_to_message(r) for r in rows]

    async def last(self, instance_id: int, direction: str, minutes: int) -> list[Message]:
        """Messages of one direction in the last ``minutes``, newest first."""
        since = int(time.time()) - minutes * 60
        query = (
            _MESSAGE_QUERY.where(
                t.messages.c.instance_id == instance_id,
                t.messages.c.timestamp >= since,
                t.messages.c.direction == direction,
            )
            .order_by(t.messages.c.timestamp.desc(), t.messages.c.id.desc())
            .limit(10000)
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_row_to_message(r) for r in rows]

    async def chats(self, instance_id: int) -> list[dict[str, Any]]:
        """The chats of an instance, most recent first."""
        query = (
            sa.select(t.chats.c.chat_id, t.chats.c.phone, t.chats.c.name, t.chats.c.type)
            .where(t.chats.c.instance_id == instance_id)
            .order_by(t.chats.c.last_at.desc())
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [dict(r._mapping) for r in rows]
