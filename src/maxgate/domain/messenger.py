"""The messenger port: what maxgate needs from a messenger (sandbox, MAX Bot API, …), and the
shapes in which a messenger reports what happens. The domain depends on this; the adapters in
``maxgate.upstream`` implement it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Protocol

from maxgate.domain.records import FileRecord, Instance, Message


@dataclasses.dataclass(frozen=True, slots=True)
class InboundFile:
    """A file the messenger holds: the reference to fetch its bytes, and what it is."""

    ref: str
    file_name: str
    mime_type: str
    size: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message the messenger reports for an instance (from a contact, a group or itself)."""

    instance_id: int
    chat_id: str
    chat_type: str  # user | group
    chat_name: str
    sender_id: str
    sender_name: str
    sender_phone: int
    id_message: str
    timestamp: int
    type_message: str
    text: str | None = None
    caption: str = ""
    file: InboundFile | None = None
    quoted_id: str | None = None
    # Sent by the account itself from another device (journaled as outgoing, not by the API).
    from_me: bool = False


class InboundSink(Protocol):
    """Where an upstream reports what happens (the journal implements it)."""

    async def on_message(self, message: InboundMessage) -> None:
        """A new incoming message for an instance."""

    async def on_chat(self, instance_id: int, chat_id: str, *, name: str, phone: int) -> None:
        """What the messenger knows of one of the instance's chats (name, contact's number)."""

    async def on_status(self, instance_id: int, chat_id: str, id_message: str, status: str) -> None:
        """A status change (sent, delivered, read, failed) of an outgoing message."""

    async def on_state(self, instance_id: int, state: str) -> None:
        """The account's connection state changed (authorized, notAuthorized, starting, …)."""


class Upstream(Protocol):
    """A messenger behind the gateway."""

    kind: str

    async def start(self, sink: InboundSink) -> None:
        """Start receiving; events go to ``sink``."""

    async def stop(self) -> None:
        """Stop receiving and release connections."""

    async def send(
        self,
        instance: Instance,
        message: Message,
        body: AsyncIterator[bytes] | None,
    ) -> str:
        """Hand an outgoing message (and its file's bytes, streamed) to the messenger.

        Returns the messenger's id of the message. Raises ``UpstreamError``.
        """
        ...

    def fetch_file(self, instance_id: int, file: FileRecord) -> AsyncIterator[bytes]:
        """Stream a file's bytes from the messenger; raises ``UpstreamFileGone`` if it is gone."""
        ...

    async def check_account(self, phone: int) -> str | None:
        """The chatId of the account with that phone number, or None."""
        ...

    async def reboot(self, instance: Instance) -> None:
        """Reconnect the account (state goes starting, then back)."""

    async def logout(self, instance: Instance) -> None:
        """Log the account out (state notAuthorized until it logs in again)."""

    async def qr(self, instance: Instance) -> bytes | None:
        """A PNG QR code to log the account in, or None when it is logged in."""
        ...
