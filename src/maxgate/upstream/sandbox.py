"""The sandbox messenger: an in-process MAX stand-in for development and tests.

Instances on the same server write to each other by chatId; a chatId that is no instance is a
simulated contact that "receives" what is sent to it; groups (negative chatIds) have several
member instances. Statuses go sent → delivered → read. The account of an instance can also write
"from its phone" (``own_send``: outgoingMessageReceived), be rebooted, logged out and logged in
again by QR code — the sandbox's phone scans the code it hands out a moment later. The sandbox
keeps the original bytes of every file it carried in its own storage, with its own retention
(default: forever), so re-fetch after eviction — and the error when the "messenger" lost a
file — can be exercised offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import segno
import sqlalchemy as sa

from maxgate.blobs import BlobStore
from maxgate.domain import ids
from maxgate.domain.instances import Instances
from maxgate.domain.messenger import InboundFile, InboundMessage, InboundSink
from maxgate.domain.records import FileRecord, Instance, Message
from maxgate.errors import BlobError, BlobNotFound, UpstreamError, UpstreamFileGone
from maxgate.store import tables as t
from maxgate.store.database import Database

STATUS_STEP_SECONDS = 0.05
QR_SCAN_SECONDS = 1.0  # the sandbox's phone scans a handed-out QR code after this long


class Sandbox:
    """An in-process messenger that connects the instances of one maxgate."""

    kind = "sandbox"

    def __init__(
        self, db: Database, store: BlobStore, instances: Instances, *, retention: float = 0.0
    ) -> None:
        self.db = db
        self.store = store
        self.instances = instances
        self.retention = retention
        self._sink: InboundSink | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def sink(self) -> InboundSink:
        if self._sink is None:
            raise UpstreamError("the sandbox was not started")
        return self._sink

    async def start(self, sink: InboundSink) -> None:
        """Start delivering events to ``sink``."""
        self._sink = sink

    async def stop(self) -> None:
        """Cancel status updates still in flight."""
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def keep_file(self, body: AsyncIterator[bytes], *, limit: int | None = None) -> str:
        """Store bytes the sandbox carries; returns the sandbox's reference to them."""
        try:
            blob = await self.store.write(body, limit=limit)
        except BlobError as exc:
            raise UpstreamError("the sandbox could not store the file") from exc
        ref = secrets.token_hex(16)
        async with self.db.write() as conn:
            await conn.execute(
                t.sandbox_files.insert().values(
                    ref=ref,
                    key=blob.key,
                    sha256=blob.sha256,
                    size=blob.size,
                    created_at=time.time(),
                )
            )
        return ref

    async def send(
        self, instance: Instance, message: Message, body: AsyncIterator[bytes] | None
    ) -> str:
        """Carry an outgoing message to its recipients; statuses follow shortly."""
        inbound_file = None
        if message.file is not None:
            if body is None:
                raise UpstreamError("a file message came without its bytes")
            ref = await self.keep_file(body)
            inbound_file = InboundFile(
                ref=ref,
                file_name=message.file.file_name,
                mime_type=message.file.mime_type,
                size=message.file.size,
            )
        recipients = await self._recipients(instance, message.chat_id)
        if not message.chat_id.startswith("-") and recipients:
            # The sender learns the number behind the chat, as the receiver learns the sender's.
            peer = recipients[0][0]
            await self.sink.on_chat(instance.id, message.chat_id, name=peer.name, phone=peer.phone)
        for recipient, chat_id, chat_name in recipients:
            await self.sink.on_message(
                InboundMessage(
                    instance_id=recipient.id,
                    chat_id=chat_id,
                    chat_type="group" if chat_id.startswith("-") else "user",
                    chat_name=chat_name,
                    sender_id=instance.chat_id,
                    sender_name=instance.name,
                    sender_phone=instance.phone,
                    id_message=message.id_message,
                    timestamp=int(time.time()),
                    type_message=message.type_message,
                    text=message.text,
                    caption=message.caption,
                    file=inbound_file,
                    quoted_id=message.quoted_id,
                )
            )
        self._spawn(self._statuses(instance.id, message))
        return message.id_message

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _statuses(self, instance_id: int, message: Message) -> None:
        for status in ("delivered", "read"):
            await asyncio.sleep(STATUS_STEP_SECONDS)
            await self.sink.on_status(instance_id, message.chat_id, message.id_message, status)

    async def _recipients(self, sender: Instance, chat_id: str) -> list[tuple[Instance, str, str]]:
        """(recipient instance, chatId as the recipient sees it, chat name) for a send."""
        if chat_id.startswith("-"):
            async with self.db.read() as conn:
                group = (
                    await conn.execute(
                        sa.select(t.sandbox_groups.c.name).where(
                            t.sandbox_groups.c.chat_id == chat_id
                        )
                    )
                ).scalar()
                members = (
                    await conn.execute(
                        sa.select(t.sandbox_members.c.instance_id).where(
                            t.sandbox_members.c.chat_id == chat_id
                        )
                    )
                ).scalars()
                member_ids = [m for m in members if m != sender.id]
            found = [await self.instances.get(m) for m in member_ids]
            return [(m, chat_id, group or "") for m in found if m is not None and not m.deleted]
        target = await self.instances.by_chat_id(chat_id)
        if target is None or target.id == sender.id:
            return []  # a simulated contact: it "receives" the message, nobody is told
        return [(target, sender.chat_id, sender.name)]

    async def fetch_file(self, instance_id: int, file: FileRecord) -> AsyncIterator[bytes]:
        """Stream the sandbox's copy of a file; UpstreamFileGone if it lost it."""
        if file.upstream_ref is None:
            raise UpstreamFileGone("the messenger never had this file")
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(t.sandbox_files).where(t.sandbox_files.c.ref == file.upstream_ref)
                )
            ).first()
        if row is None or (self.retention > 0 and row.created_at + self.retention < time.time()):
            raise UpstreamFileGone("the messenger no longer has this file")
        try:
            async for chunk in self.store.read(row.key):
                yield chunk
        except BlobNotFound as exc:
            raise UpstreamFileGone("the messenger no longer has this file") from exc
        except BlobError as exc:
            raise UpstreamError("the messenger's storage failed") from exc

    async def check_account(self, phone: int) -> str | None:
        """The chatId of the sandbox instance with that phone number, or None."""
        instance = await self.instances.by_phone(phone)
        return instance.chat_id if instance else None

    async def contact_send(
        self,
        instance_id: int,
        from_chat_id: str,
        *,
        text: str | None = None,
        file: InboundFile | None = None,
        caption: str = "",
        sender_name: str = "",
        type_message: str = "textMessage",
    ) -> str:
        """A simulated contact writes into an instance; returns the new idMessage."""
        id_message = ids.new_message_id()
        await self.sink.on_message(
            InboundMessage(
                instance_id=instance_id,
                chat_id=from_chat_id,
                chat_type="group" if from_chat_id.startswith("-") else "user",
                chat_name=sender_name,
                sender_id=from_chat_id,
                sender_name=sender_name,
                sender_phone=0,
                id_message=id_message,
                timestamp=int(time.time()),
                type_message=type_message,
                text=text,
                caption=caption,
                file=file,
            )
        )
        return id_message

    async def own_send(
        self,
        instance: Instance,
        chat_id: str,
        *,
        text: str | None = None,
        file: InboundFile | None = None,
        caption: str = "",
        type_message: str = "textMessage",
    ) -> str:
        """The account writes from its phone (not through the API); returns the idMessage.

        The instance journals it as outgoing (outgoingMessageReceived); a sandbox instance or
        group at ``chat_id`` receives it as any message."""
        recipients = await self._recipients(instance, chat_id)
        is_group = chat_id.startswith("-")
        chat_name = ""
        if recipients:
            chat_name = recipients[0][2] if is_group else recipients[0][0].name
        own = InboundMessage(
            instance_id=instance.id,
            chat_id=chat_id,
            chat_type="group" if is_group else "user",
            chat_name=chat_name,
            sender_id=instance.chat_id,
            sender_name=instance.name,
            sender_phone=instance.phone,
            id_message=ids.new_message_id(),
            timestamp=int(time.time()),
            type_message=type_message,
            text=text,
            caption=caption,
            file=file,
            from_me=True,
        )
        await self.sink.on_message(own)
        if recipients and not is_group:
            peer = recipients[0][0]
            await self.sink.on_chat(instance.id, chat_id, name=peer.name, phone=peer.phone)
        for recipient, seen_as, name in recipients:
            await self.sink.on_message(
                dataclasses.replace(
                    own,
                    instance_id=recipient.id,
                    chat_id=seen_as,
                    chat_type="group" if seen_as.startswith("-") else "user",
                    chat_name=name,
                    from_me=False,
                )
            )
        return own.id_message

    async def reboot(self, instance: Instance) -> None:
        """Reconnect: starting, then authorized again (if it was)."""
        await self.sink.on_state(instance.id, "starting")
        await self.sink.on_state(instance.id, instance.state)

    async def logout(self, instance: Instance) -> None:
        """Log out: notAuthorized until a QR code is scanned."""
        await self.sink.on_state(instance.id, "notAuthorized")

    async def qr(self, instance: Instance) -> bytes | None:
        """A QR code to log in (the sandbox's phone scans it shortly), or None if logged in."""
        if instance.state == "authorized":
            return None
        code = segno.make(f"maxgate-sandbox:login:{instance.id}:{secrets.token_hex(8)}")
        png = io.BytesIO()
        code.save(png, kind="png", scale=4)
        self._spawn(self._scan(instance.id))
        return png.getvalue()

    async def _scan(self, instance_id: int) -> None:
        await asyncio.sleep(QR_SCAN_SECONDS)
        current = await self.instances.get(instance_id)
        if current is not None and not current.deleted and current.state != "authorized":
            await self.sink.on_state(instance_id, "authorized")

    async def create_group(self, name: str, members: list[int]) -> str:
        """Create a group of sandbox instances; returns its (negative) chatId."""
        chat_id = "-" + str(10**13 + secrets.randbelow(9 * 10**13))
        async with self.db.write() as conn:
            await conn.execute(
                t.sandbox_groups.insert().values(chat_id=chat_id, name=name, created_at=time.time())
            )
            for member in dict.fromkeys(members):
                await conn.execute(
                    t.sandbox_members.insert().values(chat_id=chat_id, instance_id=member)
                )
        return chat_id
