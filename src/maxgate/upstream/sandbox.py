"""The sandbox messenger: an in-process MAX stand-in for development and tests.

Instances of kind ``sandbox`` on the same server write to each other by chatId; a chatId that
is no instance is a simulated contact that "receives" what is sent to it; groups (negative
chatIds) have several member instances. Statuses go sent → delivered → read. The account of an
instance can also write "from its phone" (``own_send``: outgoingMessageReceived), be rebooted,
logged out and logged in again by QR code — the sandbox's phone scans the code it hands out a
moment later, and asks for the account's password first when one is set (``set_password``).

Like a real messenger the sandbox keeps what it carried: every account's history (contacts,
chats, backfill through ``history``) and the original bytes of every file, in its own storage
with its own retention (default: forever), so re-fetch after eviction — and the error when the
"messenger" lost a file — can be exercised offline. The file references it hands out expire
as MAX's download URLs do (``url_lifetime``); an expired one is resolved again through its
message in the account's history. The database is reached only through
``maxgate.store.sandbox``.

What its simulated people see of a message — read, edited, removed, a typing notice — is kept
in the carried message's ``seen`` marks (``seen``), so tests and demos can check that a
``readChat``, ``editMessage`` or ``deleteMessage`` reached the other side; a sandbox instance on
the other side is told as any recipient is (``on_edit``, ``on_delete``, ``on_status``).

Over 500 lines because it is one messenger: sending, receiving, login and the service
actions all work on the same carried history and recipients.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import secrets
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from maxgate.blobs import BlobStore
from maxgate.domain import ids
from maxgate.domain.messenger import (
    SERVED_MESSENGER_METHODS,
    ChatInfo,
    Contact,
    ContactInfo,
    InboundFile,
    InboundMessage,
    InboundSink,
)
from maxgate.domain.records import (
    FileRecord,
    Instance,
    LinkPreview,
    Location,
    Message,
    SharedContact,
)
from maxgate.errors import BlobError, BlobNotFound, UpstreamError, UpstreamFileGone
from maxgate.store import sandbox as store
from maxgate.store.database import Database
from maxgate.store.sandbox import Carried, SandboxAccount
from maxgate.upstream.groupcommit import GroupCommit
from maxgate.upstream.references import Reference
from maxgate.upstream.sandboxlogin import SandboxLogin

STATUS_STEP_SECONDS = 0.05
URL_LIFETIME = 3600.0  # seconds a file reference is good for before it must be resolved again
SETTINGS_TTL = 1.0  # seconds a recipient's settings are kept (as the auth cache keeps them)
# Every messenger method served today, and of the next issues' those the port already answers
# (send_password).
CAPABILITIES = SERVED_MESSENGER_METHODS
YES = "yes"


class Sandbox:
    """An in-process messenger that connects the sandbox instances of one maxgate."""

    kind = store.KIND

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        *,
        retention: float = 0.0,
        url_lifetime: float = URL_LIFETIME,
    ) -> None:
        self.db = db
        self.store = blobs
        self.retention = retention
        self.url_lifetime = url_lifetime
        self._sink: InboundSink | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.login = SandboxLogin(self._account_state, self._report_state, self._spawn)
        self._history: GroupCommit[Carried] = GroupCommit(lambda rows: store.record(db, rows))
        # The last typing notice per (instance, chat): (until, "typing" | "recording").
        self.typing: dict[tuple[int, str], tuple[float, str]] = {}
        # Each recipient's settings for SETTINGS_TTL: the read marks are looked up for every
        # message carried, on the inbound hot path.
        self._settings_cache: dict[int, tuple[float, dict[str, Any]]] = {}

    @property
    def sink(self) -> InboundSink:
        """Where events go (``start``'s sink); UpstreamError before ``start``."""
        if self._sink is None:
            raise UpstreamError("the sandbox was not started")
        return self._sink

    def capabilities(self) -> frozenset[str]:
        """The messenger methods the sandbox plays: every one served today, and of the next
        ones those this port already has (``sendAuthorizationPassword``)."""
        return CAPABILITIES

    async def start(self, sink: InboundSink) -> None:
        """Start delivering events to ``sink``."""
        self._sink = sink

    async def stop(self) -> None:
        """Cancel status updates and QR scans still in flight; finish history writes."""
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._history.close()

    async def keep_file(self, body: AsyncIterator[bytes], *, limit: int | None = None) -> str:
        """Store bytes the sandbox carries; returns the sandbox's reference to them."""
        try:
            blob = await self.store.write(body, limit=limit)
        except BlobError as exc:
            raise UpstreamError("the sandbox could not store the file") from exc
        ref = secrets.token_hex(16)
        await store.add_file(self.db, ref, key=blob.key, sha256=blob.sha256, size=blob.size)
        return ref

    def _reference(self, file_ref: str, id_message: str) -> str:
        """A reference to hand out with a message: good for ``url_lifetime`` from now."""
        if self.url_lifetime <= 0:
            return file_ref
        expires = int(time.time() + self.url_lifetime) + 1
        return str(Reference(file_ref, expires, id_message))

    def _carried(self, message: InboundMessage, chat_phone: int) -> Carried:
        body = dataclasses.asdict(message)
        del body["instance_id"]
        file_ref = None
        if message.file is not None:
            file_ref = Reference.parse(message.file.ref).file_ref
            body["file"]["ref"] = file_ref
        return Carried(
            instance_id=message.instance_id,
            chat_id=message.chat_id,
            chat_name=message.chat_name,
            chat_phone=chat_phone,
            id_message=message.id_message,
            timestamp=message.timestamp,
            file_ref=file_ref,
            body=json.dumps(body),
        )

    def _handed_out(self, message: InboundMessage) -> InboundMessage:
        """The message as the sandbox reports it: its file's reference freshly made."""
        if message.file is None:
            return message
        file_ref = Reference.parse(message.file.ref).file_ref
        ref = self._reference(file_ref, message.id_message)
        return dataclasses.replace(message, file=dataclasses.replace(message.file, ref=ref))

    async def _carry(
        self, messages: list[tuple[InboundMessage, int]], *, report_from: int = 0
    ) -> None:
        """Keep ``(message, phone of its chat)`` in the accounts' histories and report the
        messages from index ``report_from`` on to the sink, both at once; this returns when
        both are done. The report does not wait for the history's transaction (it would cost
        inbound throughput a sixth: P5 623-631 against 786-799/s, bench/RESULTS.md); nothing
        needs the history before a reference expires, an hour later."""
        sink = self.sink

        async def report() -> None:
            for message, _phone in messages[report_from:]:
                await sink.on_message(self._handed_out(message))

        async def read_at_once() -> None:
            for message, _phone in messages[report_from:]:
                settings = await self._settings(message.instance_id)
                if settings.get("markIncomingMessagesReaded") == YES:
                    account = await store.account(self.db, message.instance_id)
                    if account is not None:
                        await self._read(account.id, account.chat_id, message.chat_id, None)

        await asyncio.gather(
            self._history.write([self._carried(m, phone) for m, phone in messages]), report()
        )
        await read_at_once()

    async def send(
        self, instance: Instance, message: Message, body: AsyncIterator[bytes] | None
    ) -> str:
        """Carry an outgoing message to its recipients; statuses follow shortly. With
        ``markIncomingMessagesReadedOnReply`` the chat is read first, as a phone does."""
        sink = self.sink
        settings = instance.settings
        if settings.get("markIncomingMessagesReadedOnReply") == YES:
            await self.read_chat(instance, message.chat_id, None)
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
        is_group = message.chat_id.startswith("-")
        own = InboundMessage(
            instance_id=instance.id,
            chat_id=message.chat_id,
            chat_type="group" if is_group else "user",
            chat_name=await self._chat_name(message.chat_id, recipients),
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
            from_me=True,
            location=message.location,
            contact=message.contact,
        )
        peer_phone = recipients[0][0].phone if recipients and not is_group else 0
        if not is_group and recipients:
            # The sender learns the number behind the chat, as the receiver learns the sender's.
            peer = recipients[0][0]
            await sink.on_chat(instance.id, message.chat_id, name=peer.name, phone=peer.phone)
        # The sender's own copy goes into its history only: the journal has it already.
        await self._carry(
            [(own, peer_phone), *self._copies(own, instance, recipients)], report_from=1
        )
        self._spawn(self._statuses(instance.id, message))
        return message.id_message

    @staticmethod
    def _copies(
        own: InboundMessage, sender: Instance, recipients: list[tuple[SandboxAccount, str, str]]
    ) -> list[tuple[InboundMessage, int]]:
        """The sender's message as each recipient receives it, with the sender's number."""
        return [
            (
                dataclasses.replace(
                    own,
                    instance_id=recipient.id,
                    chat_id=seen_as,
                    chat_type="group" if seen_as.startswith("-") else "user",
                    chat_name=name,
                    from_me=False,
                ),
                0 if seen_as.startswith("-") else sender.phone,
            )
            for recipient, seen_as, name in recipients
        ]

    async def _chat_name(
        self, chat_id: str, recipients: list[tuple[SandboxAccount, str, str]]
    ) -> str:
        if recipients:
            account, _seen_as, group_name = recipients[0]
            return group_name if chat_id.startswith("-") else account.name
        if chat_id.startswith("-"):
            found = await store.group(self.db, chat_id)
            return found[0] if found else ""
        return ""

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _statuses(self, instance_id: int, message: Message) -> None:
        for status in ("delivered", "read"):
            await asyncio.sleep(STATUS_STEP_SECONDS)
            await self.sink.on_status(instance_id, message.chat_id, message.id_message, status)

    async def _recipients(
        self, sender: Instance, chat_id: str
    ) -> list[tuple[SandboxAccount, str, str]]:
        """(recipient account, chatId as the recipient sees it, chat name) for a send."""
        if chat_id.startswith("-"):
            found = await store.group(self.db, chat_id)
            if found is None:
                return []
            name, members = found
            accounts = [await store.account(self.db, m) for m in members if m != sender.id]
            return [(a, chat_id, name) for a in accounts if a is not None and not a.deleted]
        target = await store.account_by_chat_id(self.db, chat_id)
        if target is None or target.id == sender.id:
            return []  # a simulated contact: it "receives" the message, nobody is told
        return [(target, sender.chat_id, sender.name)]

    async def fetch_file(self, instance_id: int, file: FileRecord) -> AsyncIterator[bytes]:
        """Stream the sandbox's copy of a file; UpstreamFileGone if it lost it.

        An expired reference is resolved again through its message in the account's history,
        as a real messenger's file URL is through its message; without that message the file
        is gone.
        """
        if file.upstream_ref is None:
            raise UpstreamFileGone("the messenger never had this file")
        ref = Reference.parse(file.upstream_ref)
        file_ref = ref.file_ref
        if ref.expires is not None and ref.expires <= time.time():
            carried = None
            if ref.id_message is not None:
                carried = await store.carried(self.db, instance_id, ref.id_message)
            if carried is None or carried.file_ref is None:
                raise UpstreamFileGone("the messenger no longer has the message of this file")
            file_ref = carried.file_ref
        kept = await store.file(self.db, file_ref)
        if kept is None or (self.retention > 0 and kept.created_at + self.retention < time.time()):
            raise UpstreamFileGone("the messenger no longer has this file")
        try:
            async for chunk in self.store.read(kept.key):
                yield chunk
        except BlobNotFound as exc:
            raise UpstreamFileGone("the messenger no longer has this file") from exc
        except BlobError as exc:
            raise UpstreamError("the messenger's storage failed") from exc

    async def check_account(self, phone: int) -> str | None:
        """The chatId of the sandbox instance with that phone number, or None."""
        account = await store.account_by_phone(self.db, phone)
        return account.chat_id if account else None

    async def resolve_phone(self, instance: Instance, phone: int) -> str | None:
        """The chatId of the sandbox instance with that phone number, or None (on the sandbox
        every account reaches every other by its chatId)."""
        return await self.check_account(phone)

    async def state(self, instance: Instance) -> str:
        """The account's state as the sandbox last set it (``notAuthorized`` for an instance
        the sandbox does not connect, or one deleted)."""
        account = await store.account(self.db, instance.id)
        if account is None or account.deleted:
            return "notAuthorized"
        return account.state

    async def contacts(self, instance: Instance) -> list[Contact]:
        """The people the account has written with (its history's personal chats)."""
        return [
            Contact(chat_id, name, phone)
            for chat_id, name, phone in await store.chats(self.db, instance.id)
            if not chat_id.startswith("-")
        ]

    async def chats(self, instance: Instance) -> list[ChatInfo]:
        """The account's chats, the most recent first, then the groups it has not written in."""
        groups = dict(await store.groups_of(self.db, instance.id))
        found: list[ChatInfo] = []
        for chat_id, name, phone in await store.chats(self.db, instance.id):
            if chat_id.startswith("-"):
                found.append(ChatInfo(chat_id, "group", groups.pop(chat_id, name)))
            else:
                found.append(ChatInfo(chat_id, "user", name, phone))
        found.extend(ChatInfo(chat_id, "group", name) for chat_id, name in groups.items())
        return found

    async def history(self, instance: Instance, chat_id: str, since: int) -> list[InboundMessage]:
        """A chat's messages from ``since`` on, oldest first, with fresh file references."""
        found = []
        for entry in await store.history(self.db, instance.id, chat_id, since):
            body = json.loads(entry.body)
            if body.pop("seen", {}).get("deleted"):
                continue  # removed for everybody: gone from the messenger's history
            file = body.pop("file")
            # What a location or contact carries (absent from bodies written before them).
            location, contact = body.pop("location", None), body.pop("contact", None)
            preview = body.pop("preview", None)
            message = InboundMessage(
                instance_id=instance.id,
                file=InboundFile(**file) if file is not None else None,
                location=Location(**location) if location is not None else None,
                contact=SharedContact(**contact) if contact is not None else None,
                preview=LinkPreview(**preview) if preview is not None else None,
                **body,
            )
            found.append(self._handed_out(message))
        return found

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
        location: Location | None = None,
        contact: SharedContact | None = None,
    ) -> str:
        """A simulated contact writes into an instance; returns the new idMessage. A
        ``location`` or ``contact`` makes it a locationMessage / contactMessage."""
        if location is not None:
            type_message = "locationMessage"
        elif contact is not None:
            type_message = "contactMessage"
        message = InboundMessage(
            instance_id=instance_id,
            chat_id=from_chat_id,
            chat_type="group" if from_chat_id.startswith("-") else "user",
            chat_name=sender_name,
            sender_id=from_chat_id,
            sender_name=sender_name,
            sender_phone=0,
            id_message=ids.new_message_id(),
            timestamp=int(time.time()),
            type_message=type_message,
            text=text,
            caption=caption,
            file=file,
            location=location,
            contact=contact,
        )
        await self._carry([(message, 0)])
        return message.id_message

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
        sink = self.sink
        recipients = await self._recipients(instance, chat_id)
        is_group = chat_id.startswith("-")
        own = InboundMessage(
            instance_id=instance.id,
            chat_id=chat_id,
            chat_type="group" if is_group else "user",
            chat_name=await self._chat_name(chat_id, recipients),
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
        peer_phone = recipients[0][0].phone if recipients and not is_group else 0
        copies = self._copies(own, instance, recipients)
        await self._history.write([self._carried(own, peer_phone)])
        await sink.on_message(self._handed_out(own))
        if recipients and not is_group:
            peer = recipients[0][0]
            await sink.on_chat(instance.id, chat_id, name=peer.name, phone=peer.phone)
        await self._carry(copies)
        return own.id_message

    async def reboot(self, instance: Instance) -> None:
        """Reconnect: starting, then authorized again (if it was)."""
        await self.sink.on_state(instance.id, "starting")
        await self.sink.on_state(instance.id, instance.state)

    async def logout(self, instance: Instance) -> None:
        """Log out: notAuthorized until a QR code is scanned (a login in progress ends)."""
        self.login.logged_out(instance.id)
        await self.sink.on_state(instance.id, "notAuthorized")

    def set_password(self, instance_id: int, password: str | None) -> None:
        """Set (or, with None, remove) an account's two-factor password (``SandboxLogin``)."""
        self.login.set_password(instance_id, password)

    async def qr(self, instance: Instance) -> bytes | None:
        """A QR code to log in (the sandbox's phone scans it shortly), or None if logged in.
        Polling hands out a new code each time."""
        if await self.state(instance) == "authorized":
            return None
        return self.login.qr(instance.id)

    def awaits_password(self, instance_id: int) -> bool:
        """Whether a scanned login of the instance waits for ``send_password``."""
        return self.login.awaits_password(instance_id)

    async def send_password(self, instance: Instance, password: str) -> bool:
        """Finish a scanned login with the account's password (``SandboxLogin``)."""
        return await self.login.send_password(instance.id, password)

    async def _settings(self, instance_id: int) -> dict[str, Any]:
        """A recipient's settings, read again after ``SETTINGS_TTL`` (a change made a moment
        ago takes effect within that second, as the auth cache's)."""
        now = time.monotonic()
        cached = self._settings_cache.get(instance_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        settings = await store.settings_of(self.db, instance_id)
        if len(self._settings_cache) > 10_000:
            self._settings_cache.clear()
        self._settings_cache[instance_id] = (now + SETTINGS_TTL, settings)
        return settings

    async def _account_state(self, instance_id: int) -> str | None:
        current = await store.account(self.db, instance_id)
        return None if current is None or current.deleted else current.state

    async def _report_state(self, instance_id: int, state: str) -> None:
        await self.sink.on_state(instance_id, state)

    # ---- service actions (maxgate.domain.messenger.MessageActions) ---------------------------

    async def edit_message(self, instance: Instance, message: Message, text: str) -> None:
        """Change an outgoing text on every side: the sender's history (what a simulated
        contact sees) and each sandbox recipient, told through ``on_edit``."""
        await self._change_everywhere(instance, message, {"text": text, "edited": True})

    async def delete_message(self, instance: Instance, message: Message) -> None:
        """Remove a message for everybody: marked in every history (and so left out of
        backfill), each sandbox recipient told through ``on_delete``."""
        await self._change_everywhere(instance, message, {"deleted": True})

    async def _change_everywhere(
        self, instance: Instance, message: Message, marks: dict[str, Any]
    ) -> None:
        def mark(body: dict[str, Any]) -> bool:
            if "text" in marks:
                body["text"] = marks["text"]
            seen = body.setdefault("seen", {})
            seen.update({k: v for k, v in marks.items() if k != "text"})
            return True

        changed = await store.change(
            self.db, instance.id, message.chat_id, mark, id_message=message.id_message
        )
        if not changed:
            raise UpstreamError("the messenger does not have this message")
        for recipient, seen_as, _name in await self._recipients(instance, message.chat_id):
            await store.change(self.db, recipient.id, seen_as, mark, id_message=message.id_message)
            if "deleted" in marks:
                await self.sink.on_delete(
                    recipient.id, chat_id=seen_as, id_message=message.id_message
                )
            else:
                edited = InboundMessage(
                    instance_id=recipient.id,
                    chat_id=seen_as,
                    chat_type="group" if seen_as.startswith("-") else "user",
                    chat_name="",
                    sender_id=instance.chat_id,
                    sender_name=instance.name,
                    sender_phone=instance.phone,
                    id_message=message.id_message,
                    timestamp=int(time.time()),
                    type_message=message.type_message,
                    text=marks["text"],
                )
                await self.sink.on_edit(edited)

    async def read_chat(self, instance: Instance, chat_id: str, id_message: str | None) -> None:
        """Mark a chat's incoming messages read (one, or every unread one): the simulated
        contact sees "read" (``seen``), a sandbox sender gets the ``read`` status."""
        await self._read(instance.id, instance.chat_id, chat_id, id_message)

    async def _read(
        self, instance_id: int, own_chat_id: str, chat_id: str, id_message: str | None
    ) -> None:
        def unread(body: dict[str, Any]) -> bool:
            seen = body.setdefault("seen", {})
            if body.get("from_me") or seen.get("read"):
                return False
            seen["read"] = True
            return True

        for body in await store.change(
            self.db, instance_id, chat_id, unread, id_message=id_message
        ):
            sender = await store.account_by_chat_id(self.db, str(body.get("sender_id", "")))
            if sender is None:
                continue  # a simulated contact: it sees the mark in the history
            sender_chat = chat_id if chat_id.startswith("-") else own_chat_id
            await self.sink.on_status(sender.id, sender_chat, str(body["id_message"]), "read")

    async def send_typing(
        self, instance: Instance, chat_id: str, *, milliseconds: int, recording: bool
    ) -> None:
        """Show the notice to the chat: kept in ``typing`` until it runs out."""
        until = time.time() + milliseconds / 1000
        self.typing[(instance.id, chat_id)] = (until, "recording" if recording else "typing")

    async def contact_info(self, instance: Instance, chat_id: str) -> ContactInfo | None:
        """A person the account knows: a sandbox instance or a contact of its history."""
        account = await store.account_by_chat_id(self.db, chat_id)
        if account is not None:
            return ContactInfo(chat_id, account.name, phone=account.phone)
        for known, name, phone in await store.chats(self.db, instance.id):
            if known == chat_id:
                return ContactInfo(chat_id, name, contact_name=name, phone=phone)
        return None

    async def avatar(self, instance: Instance, chat_id: str) -> str:
        """Nobody in the sandbox has a picture."""
        return ""

    async def seen(self, instance_id: int, chat_id: str, id_message: str) -> dict[str, Any]:
        """What the other side of a chat sees of a message in ``instance_id``'s history: its
        marks (``read``, ``edited``, ``deleted``) and text; {} when it was never carried."""
        found: list[dict[str, Any]] = []

        def keep(body: dict[str, Any]) -> bool:
            found.append(body)
            return False

        await store.change(self.db, instance_id, chat_id, keep, id_message=id_message)
        if not found:
            return {}
        body = found[0]
        return {"text": body.get("text"), **body.get("seen", {})}

    async def forget_message(self, instance_id: int, id_message: str) -> bool:
        """The messenger drops a message from an account's history (deleted for everybody);
        a file that came with it can then no longer be resolved again once its reference
        expired. True if there was such a message."""
        return await store.forget(self.db, instance_id, id_message) > 0

    async def create_group(self, name: str, members: list[int]) -> str:
        """Create a group of sandbox instances; returns its (negative) chatId."""
        chat_id = "-" + str(10**13 + secrets.randbelow(9 * 10**13))
        await store.create_group(self.db, chat_id, name, members)
        return chat_id
