"""The notification queue: a per-instance FIFO in the metadata store (spec §3 Receiving, §4.1).

A notification is added in the same transaction as the journal change it reports (the journal
calls ``add`` with its open connection), so a message is never journaled without its
notification, nor the reverse. The queue is read two ways: ``receiveNotification`` long-polls the
head (woken by an event when this process adds one, and by a watcher that notices rows other
processes added), and the webhook worker (``maxgate.domain.webhooks``) POSTs the head to the
instance's ``webhookUrl``. The id of a row is its ``receiptId``.

Bodies are stored as they were when the event happened, except a file's ``downloadUrl`` and
``jpegThumbnail``: those are rendered from the file's record each time the notification is read
or delivered, so a link handed out is never stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from maxgate.domain.records import FileRecord, Instance, LinkPreview, Location, SharedContact
from maxgate.store import notifications as rows
from maxgate.store.database import Database, Transaction

log = logging.getLogger(__name__)

# Which instance setting turns each kind on (spec §4.1).
KIND_SETTINGS = {
    "incomingMessageReceived": "incomingWebhook",
    "outgoingMessageReceived": "outgoingMessageWebhook",
    "outgoingAPIMessageReceived": "outgoingAPIMessageWebhook",
    "outgoingMessageStatus": "outgoingWebhook",
    "stateInstanceChanged": "stateWebhook",
}
# An edit or removal arrives as a message notification of its direction (incoming…,
# outgoing…) with typeMessage editedMessage / deletedMessage, and only when this setting is
# not "no" as well (https://green-api.com/v3/docs/api/receiving/notifications-format/
# incoming-message/EditedMessage, …/DeletedMessage).
CHANGE_SETTINGS = {
    "editedMessage": "editedMessageWebhook",
    "deletedMessage": "deletedMessageWebhook",
}
FILE_KINDS = frozenset(
    {"imageMessage", "videoMessage", "documentMessage", "audioMessage", "stickerMessage"}
)
WATCH_INTERVAL = 0.25  # how often a process looks for rows other processes added

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


def wanted(settings: Mapping[str, Any], kind: str, type_message: str | None = None) -> bool:
    """Whether an instance's settings queue notifications of this kind (default: yes); an
    edit or removal (``type_message``) also needs its own setting (``CHANGE_SETTINGS``)."""
    change = CHANGE_SETTINGS.get(type_message or "")
    if change is not None and settings.get(change, "yes") == "no":
        return False
    return bool(settings.get(KIND_SETTINGS[kind], "yes") != "no")


def entry(
    settings: Mapping[str, Any],
    instance_id: int,
    body: dict[str, Any],
    *,
    file_id: str | None = None,
) -> dict[str, Any] | None:
    """The ``notifications`` row (``maxgate.store.notifications.add``) queuing ``body``, or
    None when the instance's settings do not want this kind."""
    kind = body["typeWebhook"]
    if not wanted(settings, kind, body.get("messageData", {}).get("typeMessage")):
        return None
    return {
        "instance_id": instance_id,
        "type_webhook": kind,
        "body": _encode(body).decode(),
        "file_id": file_id,
        "created_at": time.time(),
    }


def instance_data(instance: Instance) -> dict[str, Any]:
    """The ``instanceData`` object of every notification."""
    return {"idInstance": instance.id, "wid": instance.wid, "typeInstance": "v3"}


def message_data(
    type_message: str,
    *,
    text: str | None,
    caption: str = "",
    file: FileRecord | None = None,
    quoted_id: str | None = None,
    location: Location | None = None,
    contact: SharedContact | None = None,
    preview: LinkPreview | None = None,
) -> dict[str, Any]:
    """``messageData`` for a text, file, location or contact message (spec §4.1; the location
    and contact shapes are v3's pages, https://green-api.com/v3/docs/api/receiving/
    notifications-format/incoming-message/LocationMessage and …/ContactMessage)."""
    data: dict[str, Any] = {"typeMessage": type_message}
    if file is not None or type_message in FILE_KINDS:
        data["fileMessageData"] = {
            "downloadUrl": "",  # rendered when read
            "caption": caption,
            "fileName": file.file_name if file else "",
            "jpegThumbnail": file.thumbnail if file else "",
            "mimeType": file.mime_type if file else "",
            "isAnimated": False,
            "forwardingScore": 0,
            "isForwarded": False,
        }
    elif type_message == "locationMessage":
        data["locationMessageData"] = location_fields(location)
    elif type_message == "contactMessage":
        data["contactMessageData"] = contact_fields(contact)
    elif type_message == "extendedTextMessage":
        data["extendedTextMessageData"] = extended_text_fields(text, preview)
    else:
        data["textMessageData"] = {"textMessage": text or ""}
    if quoted_id:
        data["quotedMessage"] = {"stanzaId": quoted_id}
    return data


def location_fields(location: Location | None) -> dict[str, Any]:
    """``locationMessageData`` as v3 has it: coordinates and forwarding (v3 names no place or
    address, unlike v1; ``nameLocation``/``address`` are added when the messenger gave them)."""
    fields: dict[str, Any] = {
        "latitude": location.latitude if location else 0.0,
        "longitude": location.longitude if location else 0.0,
        "forwardingScore": 0,
        "isForwarded": False,
    }
    if location is not None and location.name:
        fields["nameLocation"] = location.name
    if location is not None and location.address:
        fields["address"] = location.address
    return fields


def contact_fields(contact: SharedContact | None) -> dict[str, Any]:
    """``contactMessageData`` as v3 has it (chatId, urlAvatar, phoneNumber, displayName,
    vcard, forwarding)."""
    return {
        "chatId": contact.chat_id if contact else "",
        "urlAvatar": contact.avatar_url if contact else "",
        "phoneNumber": contact.phone if contact else "",
        "displayName": contact.display_name if contact else "",
        "vcard": contact.vcard if contact else "",
        "forwardingScore": 0,
        "isForwarded": False,
    }


def extended_text_fields(text: str | None, preview: LinkPreview | None) -> dict[str, Any]:
    """``extendedTextMessageData``: the text and its link's preview (spec §4.1)."""
    return {
        "text": text or "",
        "description": preview.description if preview else "",
        "title": preview.title if preview else "",
        "jpegThumbnail": "",
        "previewType": "None",
        "forwardingScore": 0,
        "isForwarded": False,
    }


def edited_data(stanza_id: str, text: str) -> dict[str, Any]:
    """``messageData`` of an edit: the message's new text and its idMessage (v3,
    https://green-api.com/v3/docs/api/receiving/notifications-format/incoming-message/
    EditedMessage)."""
    return {
        "typeMessage": "editedMessage",
        "editedMessageData": {"textMessage": text, "stanzaId": stanza_id},
    }


def deleted_data(stanza_id: str) -> dict[str, Any]:
    """``messageData`` of a removal for everybody: the removed message's idMessage (v3,
    https://green-api.com/v3/docs/api/receiving/notifications-format/incoming-message/
    DeletedMessage)."""
    return {"typeMessage": "deletedMessage", "deletedMessageData": {"stanzaId": stanza_id}}


def message_body(
    kind: str,
    instance: Instance,
    *,
    id_message: str,
    timestamp: int,
    chat_id: str,
    chat_name: str,
    sender: str,
    sender_name: str,
    sender_phone: int,
    data: dict[str, Any],
) -> dict[str, Any]:
    """An ``incomingMessageReceived`` / ``outgoing[API]MessageReceived`` notification."""
    return {
        "typeWebhook": kind,
        "instanceData": instance_data(instance),
        "timestamp": timestamp,
        "idMessage": id_message,
        "senderData": {
            "chatId": chat_id,
            "sender": sender,
            "chatName": chat_name,
            "senderName": sender_name,
            "senderContactName": "",
            "senderPhoneNumber": sender_phone,
            "chatType": "group" if chat_id.startswith("-") else "user",
        },
        "messageData": data,
    }


def status_body(
    instance: Instance, chat_id: str, id_message: str, status: str, description: str | None = None
) -> dict[str, Any]:
    """An ``outgoingMessageStatus`` notification."""
    body: dict[str, Any] = {
        "typeWebhook": "outgoingMessageStatus",
        "chatId": chat_id,
        "instanceData": instance_data(instance),
        "timestamp": int(time.time()),
        "idMessage": id_message,
        "status": status,
    }
    if status == "failed":
        body["description"] = description or ""
    return body


def state_body(instance: Instance, state: str) -> dict[str, Any]:
    """A ``stateInstanceChanged`` notification."""
    return {
        "typeWebhook": "stateInstanceChanged",
        "instanceData": instance_data(instance),
        "timestamp": int(time.time()),
        "stateInstance": state,
    }


class Notifications:
    """Adds, reads and removes queued notifications; wakes whoever waits for them."""

    def __init__(
        self,
        db: Database,
        *,
        file_by_id: Callable[[str], Any],
        link: Callable[[FileRecord], str],
        retention: float,
    ) -> None:
        self.db = db
        self._file_by_id = file_by_id
        self._link = link
        self.retention = retention
        self.on_added: Callable[[int], None] = lambda instance_id: None
        self._waiters: dict[int, asyncio.Event] = {}
        self._last_seen = 0

    # -- writing (inside the caller's transaction) -------------------------------------------

    async def add(
        self,
        conn: Transaction,
        settings: Mapping[str, Any],
        instance_id: int,
        body: dict[str, Any],
        *,
        file_id: str | None = None,
    ) -> bool:
        """Queue ``body`` for an instance in the open transaction ``conn``, if its settings
        want this kind. Call ``wake(instance_id)`` once the transaction has committed."""
        row = entry(settings, instance_id, body, file_id=file_id)
        if row is None:
            return False
        await rows.add(conn, row)
        return True

    def wake(self, instance_id: int) -> None:
        """Something was committed to an instance's queue: wake its readers and deliverers."""
        event = self._waiters.pop(instance_id, None)
        if event is not None:
            event.set()
        self.on_added(instance_id)

    # -- reading ---------------------------------------------------------------------------

    async def render(self, body_json: str, file_id: str | None) -> dict[str, Any]:
        """A stored body with its file's link and thumbnail filled in as of now."""
        body = _decode(body_json)
        if file_id is not None:
            file = await self._file_by_id(file_id)
            data = body.get("messageData", {}).get("fileMessageData")
            if file is not None and data is not None:
                data["downloadUrl"] = self._link(file)
                data["jpegThumbnail"] = file.thumbnail
        return body

    async def head(self, instance_id: int) -> dict[str, Any] | None:
        """The oldest queued notification as ``{"receiptId", "body"}``, or None."""
        row = await rows.head(self.db, instance_id)
        if row is None:
            return None
        receipt_id, body, file_id = tuple(row)
        return {"receiptId": receipt_id, "body": await self.render(body, file_id)}

    async def receive(self, instance_id: int, wait: float) -> dict[str, Any] | None:
        """The head, waiting up to ``wait`` seconds for one to be queued."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            # Register before looking, so a wake between the look and the wait is not lost.
            event = self._waiters.setdefault(instance_id, asyncio.Event())
            found = await self.head(instance_id)
            remaining = deadline - loop.time()
            if found is not None or remaining <= 0:
                return found
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await event.wait()

    async def delete(self, instance_id: int, receipt_id: int) -> bool:
        """Remove one notification of an instance; False when there is no such receipt."""
        return await rows.delete(self.db, instance_id, receipt_id)

    async def count(self, instance_id: int) -> int:
        """How many notifications of an instance are queued."""
        return await rows.count(self.db, instance_id)

    async def clear(self, instance_id: int) -> int:
        """Drop every queued notification of an instance; returns how many."""
        return await rows.clear(self.db, instance_id)

    async def sweep(self, *, now: float | None = None) -> int:
        """Drop notifications older than the queue retention; returns how many."""
        cutoff = (time.time() if now is None else now) - self.retention
        dropped = await rows.drop_older_than(self.db, cutoff)
        if dropped:
            log.warning("dropped %d notifications older than the queue retention", dropped)
        return dropped

    # -- rows added by other processes -------------------------------------------------------

    async def watch(self, *, interval: float = WATCH_INTERVAL) -> None:
        """Work forever: while someone long-polls, notice rows other processes queued (the CLI,
        other server workers) and wake the waiters; they look at their own heads again."""
        self._last_seen = await rows.last_id(self.db)
        while True:
            await asyncio.sleep(interval)
            if not self._waiters:
                continue
            last = await rows.last_id(self.db)
            if last > self._last_seen:
                self._last_seen = last
                waiters, self._waiters = self._waiters, {}
                for event in waiters.values():
                    event.set()
