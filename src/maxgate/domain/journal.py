"""The journal: every message an instance sent or received, and its chats.

An outgoing message is written with its file row, its outbox entry and its notification in one
transaction; an incoming one with its file row (state ``remote``), its chat and its notification;
a status change with its ``outgoingMessageStatus`` notification. The journal is also the sink the
upstream reports inbound messages and status changes to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from maxgate.blobs import StoredBlob
from maxgate.domain import ids
from maxgate.domain import notifications as n
from maxgate.domain.files import Files, row_to_file, row_to_file_values
from maxgate.domain.instances import Instances
from maxgate.domain.messenger import InboundMessage
from maxgate.domain.notifications import Notifications
from maxgate.domain.records import FileRecord, Instance, Message
from maxgate.errors import StoreConflict
from maxgate.store import tables as t
from maxgate.store.database import Database, upsert

_STATUS_ORDER = {"pending": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}

_FILE_COLUMNS = [c.label("f_" + c.name) for c in t.files.c]
_MESSAGE_QUERY = sa.select(t.messages, *_FILE_COLUMNS).select_from(
    t.messages.outerjoin(t.files, t.files.c.id == t.messages.c.file_id)
)


_CHAT_COLUMNS = ("instance_id", "chat_id", "type", "name", "phone", "last_at")
_INSERT_FILE = t.files.insert()
_INSERT_MESSAGE = t.messages.insert()

_BY_KEY = _MESSAGE_QUERY.where(
    t.messages.c.instance_id == sa.bindparam("instance_id"),
    t.messages.c.chat_id == sa.bindparam("chat_id"),
    t.messages.c.id_message == sa.bindparam("id_message"),
)

# downloadFile's lookup: only the file's columns, and a row only when the message has a file.
_FILE_BY_KEY = (
    sa.select(t.files)
    .select_from(t.messages.join(t.files, t.files.c.id == t.messages.c.file_id))
    .where(
        t.messages.c.instance_id == sa.bindparam("instance_id"),
        t.messages.c.chat_id == sa.bindparam("chat_id"),
        t.messages.c.id_message == sa.bindparam("id_message"),
    )
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

    def __init__(
        self,
        db: Database,
        files: Files,
        *,
        instances: Instances | None = None,
        notifications: Notifications | None = None,
    ) -> None:
        self.db = db
        self.files = files
        self.instances = instances or Instances(db)
        self.notifications = notifications
        self._chat_upserts: dict[bool, Any] = {}
        self.on_outbox: Callable[[], None] = lambda: None
        self.on_remote_file: Callable[[], None] = lambda: None

    def _chat_upsert(self, named: bool) -> Any:
        """INSERT … ON CONFLICT for chats, built once per dialect (values come as parameters:
        building a statement with ``.values()`` on every message costs SQLAlchemy a cache-key
        walk of half a millisecond)."""
        statement = self._chat_upserts.get(named)
        if statement is None:
            update = ["last_at", "name"] if named else ["last_at"]
            statement = upsert(
                self.db.dialect,
                t.chats,
                {c: sa.bindparam(c) for c in _CHAT_COLUMNS},
                keys=["instance_id", "chat_id"],
                update=update,
                fill=["phone"],  # a known number is kept when a message does not carry it
            )
            self._chat_upserts[named] = statement
        return statement

    @staticmethod
    def _chat_values(
        instance_id: int, chat_id: str, *, name: str = "", phone: int = 0
    ) -> dict[str, Any]:
        chat_type = "group" if chat_id.startswith("-") else "user"
        return {
            "instance_id": instance_id,
            "chat_id": chat_id,
            "type": chat_type,
            "name": name,
            "phone": phone if chat_type == "user" else 0,
            "last_at": time.time(),
        }

    async def _touch_chat(
        self, conn: Any, instance_id: int, chat_id: str, *, name: str = "", phone: int = 0
    ) -> None:
        values = self._chat_values(instance_id, chat_id, name=name, phone=phone)
        await conn.execute(self._chat_upsert(bool(name)), values)

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
        timestamp = int(time.time())
        file_id = None
        file = None
        thumbnail = await self.files.thumbnail_for(blob, mime_type) if blob is not None else ""
        async with self.db.write() as conn:
            if blob is not None:
                file_row = self.files.stored_row(instance.id, blob, file_name, mime_type, thumbnail)
                file_id = file_row["id"]
                file = row_to_file_values(file_row)
                await self.files.record_blob(conn, blob)
                await conn.execute(t.files.insert().values(**file_row))
            result = await conn.execute(
                t.messages.insert().values(
                    instance_id=instance.id,
                    chat_id=chat_id,
                    id_message=id_message,
                    direction="outgoing",
                    type_message=type_message,
                    timestamp=timestamp,
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
            if self.notifications is not None:
                body = n.message_body(
                    "outgoingAPIMessageReceived",
                    instance,
                    id_message=id_message,
                    timestamp=timestamp,
                    chat_id=chat_id,
                    chat_name=await self._chat_name(conn, instance.id, chat_id),
                    sender=instance.chat_id,
                    sender_name=instance.name,
                    sender_phone=instance.phone,
                    data=n.message_data(
                        type_message, text=text, caption=caption, file=file, quoted_id=quoted_id
                    ),
                )
                await self.notifications.add(
                    conn, instance.settings, instance.id, body, file_id=file_id
                )
        if self.notifications is not None:
            self.notifications.wake(instance.id)
        self.on_outbox()
        message = await self.get(instance.id, chat_id, id_message)
        assert message is not None
        return message

    async def _chat_name(self, conn: Any, instance_id: int, chat_id: str) -> str:
        name = (
            await conn.execute(
                sa.select(t.chats.c.name).where(
                    t.chats.c.instance_id == instance_id, t.chats.c.chat_id == chat_id
                )
            )
        ).scalar()
        return str(name or "")

    async def on_message(self, message: InboundMessage) -> None:
        """Journal an inbound message (idempotent: a repeated idMessage is ignored)."""
        instance = await self.instances.get(message.instance_id)
        if instance is None or instance.deleted:
            return
        try:
            new = await self._journal_inbound(instance, message)
        except StoreConflict:
            return  # the same message, journaled at the same moment by another process
        if new and self.notifications is not None:
            self.notifications.wake(instance.id)
        if new and message.file is not None:
            self.on_remote_file()

    async def _journal_inbound(self, instance: Instance, message: InboundMessage) -> bool:
        """Write an inbound message; False when it was already journaled.

        The hottest write there is (every message the messenger reports): built here, then
        written in one ``Database.transact`` crossing — file row, message, notification, chat.
        """
        if await self.get(message.instance_id, message.chat_id, message.id_message):
            return False  # a repeat; one racing with this check fails on the unique key
        file_row = None
        file = None
        if message.file is not None:
            file_row = self.files.remote_row(message.instance_id, message.file)
            file = row_to_file_values(file_row)
        message_row = {
            "instance_id": message.instance_id,
            "chat_id": message.chat_id,
            "id_message": message.id_message,
            "direction": "outgoing" if message.from_me else "incoming",
            "type_message": message.type_message,
            "timestamp": message.timestamp,
            "sender_id": message.sender_id,
            "sender_name": message.sender_name,
            "text": message.text,
            "caption": message.caption,
            "file_id": file.id if file else None,
            "status": "sent" if message.from_me else None,
            "quoted_id": message.quoted_id,
        }
        notification = None
        if self.notifications is not None:
            kind = "outgoingMessageReceived" if message.from_me else "incomingMessageReceived"
            body = n.message_body(
                kind,
                instance,
                id_message=message.id_message,
                timestamp=message.timestamp,
                chat_id=message.chat_id,
                chat_name=message.chat_name,
                sender=message.sender_id,
                sender_name=message.sender_name,
                sender_phone=message.sender_phone,
                data=n.message_data(
                    message.type_message,
                    text=message.text,
                    caption=message.caption,
                    file=file,
                    quoted_id=message.quoted_id,
                ),
            )
            notification = n.entry(
                instance.settings, instance.id, body, file_id=file.id if file else None
            )
        chat = self._chat_values(
            message.instance_id,
            message.chat_id,
            name=message.chat_name,
            # The contact's number: not the account's own on a message it sent from its phone.
            phone=message.sender_phone
            if message.chat_type == "user" and not message.from_me
            else 0,
        )
        chat_upsert = self._chat_upsert(bool(message.chat_name))

        def write(conn: sa.Connection) -> None:
            if file_row is not None:
                conn.execute(_INSERT_FILE, file_row)
            conn.execute(_INSERT_MESSAGE, message_row)
            if notification is not None:
                conn.execute(n.INSERT, notification)
            conn.execute(chat_upsert, chat)

        await self.db.transact(write)
        return True

    async def on_chat(self, instance_id: int, chat_id: str, *, name: str, phone: int) -> None:
        """The messenger told what it knows of a chat: its name and the contact's number."""
        async with self.db.write() as conn:
            await self._touch_chat(conn, instance_id, chat_id, name=name, phone=phone)

    async def on_status(self, instance_id: int, chat_id: str, id_message: str, status: str) -> None:
        """Advance an outgoing message's status (never backwards, except to failed)."""
        instance = await self.instances.get(instance_id)
        if instance is None:
            return
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
            await self._status_notification(conn, instance, chat_id, id_message, status)
        if self.notifications is not None:
            self.notifications.wake(instance_id)

    async def on_state(self, instance_id: int, state: str) -> None:
        """The account's state changed: store it, with its stateInstanceChanged notification."""
        instance = await self.instances.get(instance_id)
        if instance is None or instance.deleted:
            return
        async with self.db.write() as conn:
            await conn.execute(
                t.instances.update().where(t.instances.c.id == instance_id).values(state=state)
            )
            if self.notifications is not None:
                body = n.state_body(instance, state)
                await self.notifications.add(conn, instance.settings, instance_id, body)
        self.instances.forget(instance_id)
        if self.notifications is not None:
            self.notifications.wake(instance_id)

    async def _status_notification(
        self,
        conn: Any,
        instance: Instance,
        chat_id: str,
        id_message: str,
        status: str,
        description: str | None = None,
    ) -> None:
        if self.notifications is not None:
            body = n.status_body(instance, chat_id, id_message, status, description)
            await self.notifications.add(conn, instance.settings, instance.id, body)

    async def fail(self, message: Message, description: str) -> None:
        """Mark an outgoing message failed, with the reason."""
        instance = await self.instances.get(message.instance_id)
        async with self.db.write() as conn:
            await conn.execute(
                t.messages.update()
                .where(t.messages.c.id == message.pk)
                .values(status="failed", status_description=description)
            )
            if instance is not None:
                await self._status_notification(
                    conn, instance, message.chat_id, message.id_message, "failed", description
                )
        if self.notifications is not None:
            self.notifications.wake(message.instance_id)

    async def fail_many(
        self, conn: Any, instance: Instance, messages: list[Any], reason: str
    ) -> None:
        """Mark outgoing messages failed in the open transaction ``conn``, with their
        notifications (``messages``: rows with ``id``, ``chat_id`` and ``id_message``)."""
        if not messages:
            return
        await conn.execute(
            t.messages.update()
            .where(t.messages.c.id.in_([m.id for m in messages]))
            .values(status="failed", status_description=reason)
        )
        for m in messages:
            await self._status_notification(
                conn, instance, m.chat_id, m.id_message, "failed", reason
            )

    async def get(self, instance_id: int, chat_id: str, id_message: str) -> Message | None:
        """One message of one chat of one instance, or None."""
        row = await self.db.fetch_one(
            _BY_KEY, {"instance_id": instance_id, "chat_id": chat_id, "id_message": id_message}
        )
        return _row_to_message(row) if row else None

    async def file_of(self, instance_id: int, chat_id: str, id_message: str) -> FileRecord | None:
        """The file of one message of one chat of one instance; None when there is no such
        message or it carries no file (downloadFile answers both alike)."""
        row = await self.db.fetch_one(
            _FILE_BY_KEY, {"instance_id": instance_id, "chat_id": chat_id, "id_message": id_message}
        )
        return row_to_file(row) if row else None

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
