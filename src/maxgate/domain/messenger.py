"""The messenger port: what maxgate needs from a messenger (sandbox, MAX Bot API, …), and the
shapes in which a messenger reports what happens. The domain depends on this; the adapters in
``maxgate.upstream`` implement it.

Every instance has an upstream *kind* (``Instance.upstream``: ``sandbox`` today); the runtime
keeps one adapter per kind. Events reach the domain through one path, the ``InboundSink`` an
adapter is started with (no second stream). What a kind can do is its ``capabilities()``: a v3
method that needs the messenger (``MESSENGER_METHODS``) and is not among them is refused by
``require_method`` before its handler runs, never answered with a made-up success.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Protocol, cast

from maxgate.domain.records import (
    FileRecord,
    Instance,
    LinkPreview,
    Location,
    Message,
    SharedContact,
)
from maxgate.errors import ApiError, UpstreamError


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
    # The messenger's own id of the message (MAX's mid), when it differs from idMessage.
    upstream_id: str | None = None
    # What a locationMessage, contactMessage or extendedTextMessage carries besides its text.
    location: Location | None = None
    contact: SharedContact | None = None
    preview: LinkPreview | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Contact:
    """A person in the account's address book, as the messenger knows them."""

    chat_id: str
    name: str
    phone: int = 0  # 0 when the messenger does not tell


@dataclasses.dataclass(frozen=True, slots=True)
class ChatInfo:
    """One of the account's chats on the messenger (a person or a group)."""

    chat_id: str
    type: str  # user | group
    name: str
    phone: int = 0  # a person's number when known; 0 for groups


@dataclasses.dataclass(frozen=True, slots=True)
class ContactInfo:
    """What the messenger tells of one person (``getContactInfo``)."""

    chat_id: str
    name: str
    contact_name: str = ""  # the name in the account's address book
    phone: int = 0  # 0 when the messenger does not tell
    avatar: str = ""  # a URL of the person's picture; "" when none


class InboundSink(Protocol):
    """Where an upstream reports what happens (the journal implements it)."""

    async def on_message(self, message: InboundMessage) -> None:
        """A new incoming message for an instance."""

    async def on_edit(self, message: InboundMessage) -> None:
        """A message reported before was edited: ``message`` is its new state (its text, or a
        file's caption), found by chat and idMessage, else by ``upstream_id``."""

    async def on_delete(
        self,
        instance_id: int,
        *,
        upstream_id: str | None = None,
        chat_id: str | None = None,
        id_message: str | None = None,
    ) -> None:
        """A message reported before was removed for everybody, named by the messenger's own
        id or by chat and idMessage."""

    async def on_chat(self, instance_id: int, chat_id: str, *, name: str, phone: int) -> None:
        """What the messenger knows of one of the instance's chats (name, contact's number)."""

    async def on_status(self, instance_id: int, chat_id: str, id_message: str, status: str) -> None:
        """A status change (sent, delivered, read, failed) of an outgoing message."""

    async def on_state(self, instance_id: int, state: str) -> None:
        """The account's connection state changed (authorized, notAuthorized, starting, …)."""


class Upstream(Protocol):
    """A messenger behind the gateway: one adapter per kind serves all instances of that kind.

    Methods that take an ``Instance`` act on that instance's account; failures of the messenger
    raise ``UpstreamError`` (``UpstreamFileGone`` for a file it no longer has).
    """

    kind: str

    def capabilities(self) -> frozenset[str]:
        """The v3 methods (canonical names, e.g. ``"sendMessage"``) this kind can honour among
        ``MESSENGER_METHODS``; ``GATEWAY_METHODS`` are answered by maxgate alone."""
        ...

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
        """Stream a file's bytes from the messenger.

        ``file.upstream_ref`` is what the adapter put in ``InboundFile.ref``; when the address
        in it has expired (a messenger's download URLs are temporary), the adapter resolves the
        file again through its message before giving up. Raises ``UpstreamFileGone`` when the
        messenger no longer has the file.
        """
        ...

    async def check_account(self, phone: int) -> str | None:
        """The chatId of the account with that phone number, or None.

        Kept for the ``checkAccount`` handler until it calls ``resolve_phone`` with its
        instance; the per-instance router answers it through the default kind.
        """
        ...

    async def resolve_phone(self, instance: Instance, phone: int) -> str | None:
        """The chatId under which ``instance``'s account reaches that phone number, or None."""
        ...

    async def state(self, instance: Instance) -> str:
        """The account's connection state as the messenger sees it now (a v3 ``stateInstance``:
        ``authorized``, ``notAuthorized``, ``starting``, ``blocked`` …)."""
        ...

    async def reboot(self, instance: Instance) -> None:
        """Reconnect the account (state goes starting, then back)."""

    async def logout(self, instance: Instance) -> None:
        """Log the account out (state notAuthorized until it logs in again)."""

    async def qr(self, instance: Instance) -> bytes | None:
        """A PNG QR code to log the account in, or None when it is already authorised.

        The login completes on the messenger's side (a phone scans the code); the state change
        arrives through the sink. With two-factor authentication the account then waits for
        ``send_password``.
        """
        ...

    async def send_password(self, instance: Instance, password: str) -> bool:
        """Answer the two-factor challenge of a login in progress: True when the account is
        now authorised, False for a wrong password. Raises ``UpstreamError`` when no login is
        waiting for a password."""
        ...

    async def contacts(self, instance: Instance) -> list[Contact]:
        """The account's contacts (people only)."""
        ...

    async def chats(self, instance: Instance) -> list[ChatInfo]:
        """The account's chats on the messenger: people and groups."""
        ...

    async def history(self, instance: Instance, chat_id: str, since: int) -> list[InboundMessage]:
        """The messages of one chat from ``since`` (Unix seconds) on, oldest first, in the form
        the sink takes: after a reconnect the domain hands them to ``on_message`` again, which
        ignores the idMessages it has (a backfill without gaps or duplicates). The account's
        own messages come with ``from_me``."""
        ...


class MessageActions(Protocol):
    """What an adapter does besides sending, for the service methods (``editMessage``,
    ``deleteMessage``, ``readChat``, ``sendTyping``, ``getContactInfo``, ``getAvatar``).

    Kept apart from ``Upstream``: an adapter has these only for the methods its
    ``capabilities()`` name (``actions_of``); one it lacks raises ``UpstreamError``.
    """

    async def edit_message(self, instance: Instance, message: Message, text: str) -> None:
        """Change the text of an outgoing message the messenger has (``message`` as
        journaled, its ``upstream_id`` the messenger's own id)."""

    async def delete_message(self, instance: Instance, message: Message) -> None:
        """Remove a message for everybody in its chat."""

    async def read_chat(self, instance: Instance, chat_id: str, id_message: str | None) -> None:
        """Mark one incoming message of a chat read (all of them when ``id_message`` is
        None): its sender sees "read"."""

    async def send_typing(
        self, instance: Instance, chat_id: str, *, milliseconds: int, recording: bool
    ) -> None:
        """Show "typing…" (or "recording…") in a chat for about ``milliseconds``."""

    async def contact_info(self, instance: Instance, chat_id: str) -> ContactInfo | None:
        """What the messenger tells of a person, or None when it knows no such chat."""

    async def avatar(self, instance: Instance, chat_id: str) -> str:
        """The URL of a person's or group's picture; "" when it has none."""


ACTIONS = (
    "edit_message",
    "delete_message",
    "read_chat",
    "send_typing",
    "contact_info",
    "avatar",
)


def actions_of(upstream: Upstream) -> MessageActions:
    """``upstream`` as ``MessageActions``; UpstreamError for an adapter without them (a kind
    whose capabilities name none of those methods never gets this far)."""
    if not all(callable(getattr(upstream, name, None)) for name in ACTIONS):
        raise UpstreamError(f"the {upstream.kind} upstream has no service actions")
    return cast(MessageActions, upstream)


GATEWAY_METHODS = frozenset(
    {
        # Answered from maxgate's own store, whatever the upstream: settings, state as last
        # reported, journals, queues, notifications, and files (a file maxgate no longer holds
        # is fetched again through ``fetch_file``, which every kind implements).
        "getSettings",
        "setSettings",
        "getStateInstance",
        "getAccountSettings",
        "getChatHistory",
        "getMessage",
        "lastIncomingMessages",
        "lastOutgoingMessages",
        "getChats",
        "receiveNotification",
        "deleteNotification",
        "getWebhooksCount",
        "clearWebhooksQueue",
        "showMessagesQueue",
        "clearMessagesQueue",
        "getMessagesCount",
        "uploadFile",
        "downloadFile",
    }
)
"""The v3 methods every instance has, whatever its kind."""

SERVED_MESSENGER_METHODS = frozenset(
    {
        "sendMessage",
        "sendFileByUpload",
        "sendFileByUrl",
        "checkAccount",
        "reboot",
        "logout",
        "qr",
        "sendAuthorizationPassword",
        # issue 13: sending and service methods
        "sendLocation",
        "sendContact",
        "forwardMessages",
        "sendTyping",
        "editMessage",
        "deleteMessage",
        "readChat",
        "getContacts",
        "getContactInfo",
        "getAvatar",
    }
)
"""The messenger methods served today."""

MESSENGER_METHODS = SERVED_MESSENGER_METHODS | {
    # Named by the MAX connector issues (11, 12); listed before they exist so that an
    # upstream that cannot do them is refused from their first day.
    "createGroup",
}
"""The v3 methods that need the messenger: an instance has one only when its upstream's
``capabilities()`` names it. Every method of the API is in exactly one of the two sets
(``tests/api/test_capabilities.py``)."""

NOT_AVAILABLE_STATUS = 400


def require_method(kind: str, capabilities: frozenset[str], method: str) -> None:
    """Refuse a v3 method the instance's upstream cannot honour.

    ``method`` is the canonical name; ``kind`` the instance's upstream kind; ``capabilities``
    that kind's (empty for a kind this server has no adapter for). A messenger method
    (``MESSENGER_METHODS``) outside them raises ``ApiError`` 400
    ``Method <method> is not available for this instance kind: <kind>``.
    """
    if method in MESSENGER_METHODS and method not in capabilities:
        raise ApiError(
            NOT_AVAILABLE_STATUS,
            f"Method {method} is not available for this instance kind: {kind}",
        )
