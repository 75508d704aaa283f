"""The journal: every message an instance sent or received, and its chats.

An outgoing message is written with its file row, its outbox entry and its notification in one
transaction; an incoming one with its file row (state ``remote``), its chat and its notification;
a status change with its ``outgoingMessageStatus`` notification. The journal is also the sink the
upstream reports inbound messages and status changes to.

A message edited or removed on the messenger keeps its idMessage and its place: the journal
item gets the new text and ``isEdited`` (or ``isDeleted``), and the change is notified as an
``editedMessage`` / ``deletedMessage`` of the message's direction whose ``stanzaId`` is the
message's idMessage and whose own idMessage is new (one per change, as GREEN-API does).

Over 500 lines because it is the one writer of journal changes: each change (outgoing, inbound,
edit, removal, status, state) writes its row and its notification in one transaction here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from maxgate.blobs import StoredBlob
from maxgate.domain import ids
from maxgate.domain import notifications as n
from maxgate.domain.files import Files, row_to_file, row_to_file_values
from maxgate.domain.instances import Instances
from maxgate.domain.message_rows import details_json, row_to_message
from maxgate.domain.messenger import InboundMessage
from maxgate.domain.notifications import Notifications
from maxgate.domain.records import FileRecord, Instance, Location, Message, SharedContact
from maxgate.errors import StoreConflict
from maxgate.store import chats as chat_rows
from maxgate.store import files as file_rows
from maxgate.store import instances as instance_rows
from maxgate.store import messages as message_rows
from maxgate.store import notifications as notification_rows
from maxgate.store import outbox as outbox_rows
from maxgate.store.database import Database, Row, SyncTransaction, Transaction

log = logging.getLogger(__name__)

_STATUS_ORDER = {"pending": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}
TEXT_KINDS = frozenset({"textMessage", "extendedTextMessage"})


def _details(
    location: Location | None, contact: SharedContact | None, forwarded: tuple[str, str] | None
) -> str | None:
    """An outgoing message's ``messages.details`` (as ``message_rows.details_json`` writes),
    and for a forward the message it copies (``forwarded``: chatId and idMessage)."""
    shared = {"location": location, "contact": contact}
    found: dict[str, Any] = {k: dataclasses.asdict(v) for k, v in shared.items() if v is not None}
    if forwarded is not None:
        found["forwarded"] = {"chatId": forwarded[0], "idMessage": forwarded[1]}
    return json.dumps(found, ensure_ascii=False) if found else None


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
        self.on_outbox: Callable[[], None] = lambda: None
        self.on_remote_file: Callable[[], None] = lambda: None

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
        self, conn: Transaction, instance_id: int, chat_id: str, *, name: str = "", phone: int = 0
    ) -> None:
        await chat_rows.touch(conn, self._chat_values(instance_id, chat_id, name=name, phone=phone))

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
        location: Location | None = None,
        contact: SharedContact | None = None,
        forwarded: tuple[str, str] | None = None,
    ) -> Message:
        """Journal an outgoing API message and queue it for the messenger, atomically.

        A ``location`` or ``contact`` makes it a locationMessage / contactMessage (kept in the
        row's details, as an inbound one's); ``forwarded`` (chatId, idMessage) names the
        message a forward copies, for a messenger that forwards by its own id."""
        if location is not None:
            type_message = "locationMessage"
        elif contact is not None:
            type_message = "contactMessage"
        details = _details(location, contact, forwarded)
        for attempt in range(3):
            try:
                return await self._record_outgoing(
                    instance, chat_id, text, blob, file_name, mime_type, type_message, caption,
                    quoted_id, (location, contact, details),
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
        shared: tuple[Location | None, SharedContact | None, str | None],
    ) -> Message:
        id_message = ids.new_message_id()
        location, contact, details = shared
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
                await file_rows.insert(conn, file_row)
            message_pk = await message_rows.insert(
                conn,
                {
                    "instance_id": instance.id,
                    "chat_id": chat_id,
                    "id_message": id_message,
                    "direction": "outgoing",
                    "type_message": type_message,
                    "timestamp": timestamp,
                    "sender_id": instance.chat_id,
                    "sender_name": instance.name,
                    "text": text,
                    "caption": caption,
                    "file_id": file_id,
                    "status": "pending",
                    "send_by_api": True,
                    "quoted_id": quoted_id,
                    "details": details,
                },
            )
            await outbox_rows.enqueue(conn, instance.id, message_pk, time.time())
            await self._touch_chat(conn, instance.id, chat_id)
            if self.notifications is not None:
                body = n.message_body(
                    "outgoingAPIMessageReceived",
                    instance,
                    id_message=id_message,
                    timestamp=timestamp,
                    chat_id=chat_id,
                    chat_name=await chat_rows.name_of(conn, instance.id, chat_id),
                    sender=instance.chat_id,
                    sender_name=instance.name,
                    sender_phone=instance.phone,
                    data=n.message_data(
                        type_message,
                        text=text,
                        caption=caption,
                        file=file,
                        quoted_id=quoted_id,
                        location=location,
                        contact=contact,
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
            "upstream_id": message.upstream_id,
            "details": details_json(message),
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
                    location=message.location,
                    contact=message.contact,
                    preview=message.preview,
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

        def write(conn: SyncTransaction) -> None:
            if file_row is not None:
                file_rows.insert_sync(conn, file_row)
            message_rows.insert_sync(conn, message_row)
            if notification is not None:
                notification_rows.add_sync(conn, notification)
            chat_rows.touch_sync(conn, chat)

        await self.db.transact(write)
        return True

    async def _reported(
        self, instance_id: int, chat_id: str | None, id_message: str | None, upstream: str | None
    ) -> Message | None:
        """A journaled message the messenger names by chat and idMessage or by its own id."""
        row = None
        if chat_id is not None and id_message is not None:
            row = await message_rows.by_key(self.db, instance_id, chat_id, id_message)
        if row is None and upstream:
            row = await message_rows.by_upstream_id(self.db, instance_id, upstream)
        return row_to_message(row) if row else None

    async def on_edit(self, message: InboundMessage) -> None:
        """A journaled message was edited: store its new text (a file's caption), mark it
        edited and notify ``editedMessage``. A repeat of the same edit, an edit of a message
        not journaled (from before the instance) or of one without text is skipped."""
        instance = await self.instances.get(message.instance_id)
        if instance is None or instance.deleted:
            return
        found = await self._reported(
            instance.id, message.chat_id, message.id_message, message.upstream_id
        )
        new_text = message.text if message.text is not None else message.caption
        if found is None or found.is_deleted:
            log.info("instance %d: an edit of a message not journaled or removed", instance.id)
            return
        await self.record_edit(instance, found, new_text)

    async def record_edit(self, instance: Instance, found: Message, new_text: str | None) -> None:
        """Store a message's new text (a file's caption), mark it edited and notify
        ``editedMessage``; a repeat of the same edit, or an edit of a location or contact (v3
        has no field for their text), changes nothing."""
        if found.file is not None:
            text, caption = found.text, new_text or ""
            unchanged = caption == found.caption
        elif found.type_message in TEXT_KINDS:
            text, caption = new_text, found.caption
            unchanged = text == found.text
        else:  # a location or contact: MAX may edit its text, v3 has no field for it
            log.info("instance %d: an edit of a %s skipped", instance.id, found.type_message)
            return
        if unchanged and found.is_edited:
            return  # the same update again (MAX delivers at least once)
        async with self.db.write() as conn:
            await message_rows.set_edited(conn, found.pk, text=text, caption=caption)
            await self._change_notification(
                conn, instance, found, n.edited_data(found.id_message, new_text or "")
            )
        if self.notifications is not None:
            self.notifications.wake(instance.id)

    async def on_delete(
        self,
        instance_id: int,
        *,
        upstream_id: str | None = None,
        chat_id: str | None = None,
        id_message: str | None = None,
    ) -> None:
        """A journaled message was removed for everybody: mark it deleted (the item stays,
        with ``isDeleted``) and notify ``deletedMessage``; once only."""
        instance = await self.instances.get(instance_id)
        if instance is None or instance.deleted:
            return
        found = await self._reported(instance_id, chat_id, id_message, upstream_id)
        if found is None or found.is_deleted:
            return
        async with self.db.write() as conn:
            await message_rows.set_deleted(conn, found.pk)
            await self._change_notification(conn, instance, found, n.deleted_data(found.id_message))
        if self.notifications is not None:
            self.notifications.wake(instance_id)

    async def _change_notification(
        self, conn: Transaction, instance: Instance, message: Message, data: dict[str, Any]
    ) -> None:
        """Queue an edit's or removal's notification, of the changed message's direction."""
        if self.notifications is None:
            return
        if message.direction == "incoming":
            kind, phone = "incomingMessageReceived", 0  # the contact's number: not known here
        else:
            sent_by_api = message.send_by_api
            kind = "outgoingAPIMessageReceived" if sent_by_api else "outgoingMessageReceived"
            phone = instance.phone
        body = n.message_body(
            kind,
            instance,
            id_message=ids.new_message_id(),
            timestamp=int(time.time()),
            chat_id=message.chat_id,
            chat_name=await chat_rows.name_of(conn, instance.id, message.chat_id),
            sender=message.sender_id,
            sender_name=message.sender_name,
            sender_phone=phone,
            data=data,
        )
        await self.notifications.add(conn, instance.settings, instance.id, body)

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
            current = await message_rows.status_of(conn, instance_id, chat_id, id_message)
            if current is None or _STATUS_ORDER.get(status, 0) <= _STATUS_ORDER.get(current, 0):
                return
            await message_rows.set_status(conn, instance_id, chat_id, id_message, status)
            await self._status_notification(conn, instance, chat_id, id_message, status)
        if self.notifications is not None:
            self.notifications.wake(instance_id)

    async def on_state(self, instance_id: int, state: str) -> None:
        """The account's state changed: store it, with its stateInstanceChanged notification."""
        instance = await self.instances.get(instance_id)
        if instance is None or instance.deleted:
            return
        async with self.db.write() as conn:
            await instance_rows.set_state(conn, instance_id, state)
            if self.notifications is not None:
                body = n.state_body(instance, state)
                await self.notifications.add(conn, instance.settings, instance_id, body)
        self.instances.forget(instance_id)
        if self.notifications is not None:
            self.notifications.wake(instance_id)

    async def _status_notification(
        self,
        conn: Transaction,
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
            await message_rows.set_failed(conn, [message.pk], description)
            if instance is not None:
                await self._status_notification(
                    conn, instance, message.chat_id, message.id_message, "failed", description
                )
        if self.notifications is not None:
            self.notifications.wake(message.instance_id)

    async def fail_many(
        self, conn: Transaction, instance: Instance, failed: list[Row], reason: str
    ) -> None:
        """Mark outgoing messages failed in the open transaction ``conn``, with their
        notifications (``failed``: rows with ``id``, ``chat_id`` and ``id_message``)."""
        if not failed:
            return
        await message_rows.set_failed(conn, [m.id for m in failed], reason)
        for m in failed:
            await self._status_notification(
                conn, instance, m.chat_id, m.id_message, "failed", reason
            )

    async def get(self, instance_id: int, chat_id: str, id_message: str) -> Message | None:
        """One message of one chat of one instance, or None."""
        row = await message_rows.by_key(self.db, instance_id, chat_id, id_message)
        return row_to_message(row) if row else None

    async def file_of(self, instance_id: int, chat_id: str, id_message: str) -> FileRecord | None:
        """The file of one message of one chat of one instance; None when there is no such
        message or it carries no file (downloadFile answers both alike)."""
        row = await message_rows.file_by_key(self.db, instance_id, chat_id, id_message)
        return row_to_file(row) if row else None

    async def get_by_pk(self, pk: int) -> Message | None:
        """A message by its row id, or None."""
        row = await message_rows.by_pk(self.db, pk)
        return row_to_message(row) if row else None

    async def set_upstream_id(self, message: Message, upstream_id: str | None) -> None:
        """Record the messenger's own id of a message it accepted."""
        await message_rows.set_upstream_id(self.db, message.pk, upstream_id)

    async def history(self, instance_id: int, chat_id: str, count: int) -> list[Message]:
        """The newest ``count`` messages of a chat, newest first."""
        found = await message_rows.history(self.db, instance_id, chat_id, count)
        return [row_to_message(r) for r in found]

    async def last(self, instance_id: int, direction: str, minutes: int) -> list[Message]:
        """Messages of one direction in the last ``minutes``, newest first."""
        since = int(time.time()) - minutes * 60
        found = await message_rows.since(self.db, instance_id, direction, since, limit=10000)
        return [row_to_message(r) for r in found]

    async def chats(self, instance_id: int) -> list[dict[str, Any]]:
        """The chats of an instance, most recent first."""
        return await chat_rows.of_instance(self.db, instance_id)
