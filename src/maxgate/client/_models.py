"""Typed results of the v3 methods, decoded straight from the wire by msgspec.

Field names are snake_case; the wire's camelCase is mapped by ``rename="camel"``. Every field a
server may leave out has a default, and unknown fields are ignored, so a newer server does not
break an older client.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "AccountCheck",
    "AccountSettings",
    "Avatar",
    "Chat",
    "ChatRead",
    "Cleared",
    "Contact",
    "ContactInfo",
    "Count",
    "DeleteResult",
    "DownloadLink",
    "Downloaded",
    "ExtendedTextMessageData",
    "FileMessageData",
    "Forwarded",
    "InstanceData",
    "InstanceSettings",
    "JournalItem",
    "LoggedOut",
    "MessageData",
    "Notification",
    "NotificationBody",
    "PasswordResult",
    "PasswordStatus",
    "QrCode",
    "QueuedMessage",
    "QueuedMessageBody",
    "Rebooted",
    "SenderData",
    "SentFile",
    "SentMessage",
    "SettingsSaved",
    "StateInstance",
    "TextMessageData",
    "UploadedFile",
]

YesNo = Literal["yes", "no"]


class _Wire(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    """Base of the wire structs: camelCase on the wire, immutable, keyword construction."""


class SentMessage(_Wire, frozen=True):
    """sendMessage, sendLocation, sendContact: the id of the queued message; editMessage: the
    id of the edited one (unchanged)."""

    id_message: str


class SentFile(_Wire, frozen=True):
    """sendFileByUpload / sendFileByUrl: the id of the queued message and a link to its file."""

    id_message: str
    url_file: str = ""


class UploadedFile(_Wire, frozen=True):
    """uploadFile: a link to the stored file, usable with sendFileByUrl."""

    url_file: str


class DownloadLink(_Wire, frozen=True):
    """downloadFile: a working link to a message's file (signed; it carries no token)."""

    download_url: str


class JournalItem(_Wire, frozen=True):
    """One message of a journal (getChatHistory, getMessage, last*Messages; spec §4.2)."""

    type: str
    id_message: str
    timestamp: int = 0
    type_message: str = ""
    chat_id: str = ""
    sender_id: str = ""
    sender_name: str = ""
    sender_contact_name: str | None = None
    status_message: str | None = None
    send_by_api: bool | None = None
    description: str | None = None
    text_message: str | None = None
    download_url: str | None = None
    caption: str | None = None
    file_name: str | None = None
    jpeg_thumbnail: str | None = None
    mime_type: str | None = None
    is_animated: bool | None = None
    is_forwarded: bool = False
    forwarding_score: int = 0
    quoted_message: dict[str, Any] | None = None
    location: dict[str, Any] | None = None
    contact: dict[str, Any] | None = None
    is_edited: bool = False
    is_deleted: bool = False


class Forwarded(_Wire, frozen=True):
    """forwardMessages: the new idMessage of each forwarded copy, in the order asked."""

    messages: list[str]


class Chat(_Wire, frozen=True):
    """getChats: a chat and its phone number (0 when unknown or a group)."""

    chat_id: str
    phone_number: int = 0


class ChatRead(_Wire, frozen=True):
    """readChat."""

    set_read: bool


class Contact(_Wire, frozen=True):
    """getContacts: one contact; ``type`` is ``user`` or ``group``."""

    chat_id: str
    name: str = ""
    contact_name: str = ""
    type: str = ""
    phone_number: int = 0


class ContactInfo(_Wire, frozen=True):
    """getContactInfo: what the messenger tells of a person (empty fields when unknown)."""

    chat_id: str = ""
    avatar: str = ""
    name: str = ""
    contact_name: str = ""
    phone_number: int = 0


class Avatar(_Wire, frozen=True):
    """getAvatar: a link to the picture of a person or group, ``""`` when none is set."""

    url_avatar: str = ""


class StateInstance(_Wire, frozen=True):
    """getStateInstance: ``notAuthorized``, ``authorized``, ``blocked``, ``starting``, …"""

    state_instance: str


class InstanceSettings(_Wire, frozen=True):
    """getSettings (spec §4.3). ``webhook_url_token`` and ``webhook_secret`` (maxgate's HMAC key
    for webhook signatures) come back masked."""

    wid: str = ""
    type_instance: str = ""
    webhook_url: str = ""
    webhook_url_token: str = ""
    webhook_secret: str = ""
    delay_send_messages_milliseconds: int = 0
    mark_incoming_messages_readed: str = ""
    mark_incoming_messages_readed_on_reply: str = ""
    outgoing_webhook: str = ""
    outgoing_message_webhook: str = ""
    outgoing_api_message_webhook: str = msgspec.field(default="", name="outgoingAPIMessageWebhook")
    incoming_webhook: str = ""
    state_webhook: str = ""


class SettingsSaved(_Wire, frozen=True):
    """setSettings."""

    save_settings: bool


class AccountSettings(_Wire, frozen=True):
    """getAccountSettings: the account behind the instance."""

    phone: str = ""
    chat_id: str = ""
    avatar: str = ""
    state_instance: str = ""
    device_id: str = ""


class Rebooted(_Wire, frozen=True):
    """reboot."""

    is_reboot: bool


class LoggedOut(_Wire, frozen=True):
    """logout."""

    is_logout: bool


class QrCode(_Wire, frozen=True):
    """qr: ``type`` is ``qrCode`` (``message`` a base64 PNG to scan) or ``alreadyLogged``."""

    type: str
    message: str = ""


class PasswordStatus(_Wire, frozen=True):
    """Whether the password logged the account in: ``status`` is ``success`` or ``fail``, and
    ``reason`` says why not (``already_registered``, ``invalid_password``,
    ``authorization_not_started``, ``timeout``)."""

    status: str
    reason: str = ""


class PasswordResult(_Wire, frozen=True):
    """sendAuthorizationPassword: the request was taken (``status``); ``data`` tells the rest."""

    status: bool
    data: PasswordStatus


class AccountCheck(_Wire, frozen=True):
    """checkAccount: whether a phone number has an account, and its chatId."""

    exist: bool
    chat_id: str = ""


class QueuedMessageBody(_Wire, frozen=True):
    """What a waiting outgoing message will send."""

    chat_id: str
    message: str | None = None
    file_name: str | None = None
    caption: str | None = None
    url_file: str | None = None


class QueuedMessage(_Wire, frozen=True):
    """showMessagesQueue: one outgoing message not yet handed to the messenger."""

    message_id: str = msgspec.field(name="messageID")
    type: str
    body: QueuedMessageBody


class Cleared(_Wire, frozen=True):
    """clearMessagesQueue / clearWebhooksQueue."""

    is_cleared: bool


class Count(_Wire, frozen=True):
    """getMessagesCount / getWebhooksCount."""

    count: int


class DeleteResult(_Wire, frozen=True):
    """deleteNotification: ``result`` is false (with a ``reason``) for an unknown receipt."""

    result: bool
    reason: str = ""


class InstanceData(_Wire, frozen=True):
    """Which instance a notification belongs to."""

    id_instance: int = 0
    wid: str = ""
    type_instance: str = ""


class SenderData(_Wire, frozen=True):
    """Who wrote a message, and in which chat."""

    chat_id: str = ""
    sender: str = ""
    chat_name: str = ""
    sender_name: str = ""
    sender_contact_name: str = ""
    sender_phone_number: int = 0
    chat_type: str = ""


class TextMessageData(_Wire, frozen=True):
    """A plain text message."""

    text_message: str = ""


class ExtendedTextMessageData(_Wire, frozen=True):
    """A text message with a link preview."""

    text: str = ""
    description: str = ""
    title: str = ""
    jpeg_thumbnail: str = ""
    preview_type: str = ""


class FileMessageData(_Wire, frozen=True):
    """A file message: its link, name and type."""

    download_url: str = ""
    caption: str = ""
    file_name: str = ""
    jpeg_thumbnail: str = ""
    mime_type: str = ""
    is_animated: bool = False
    forwarding_score: int = 0
    is_forwarded: bool = False


class MessageData(_Wire, frozen=True):
    """What a message holds; one of the ``*_data`` fields is set, by ``type_message``."""

    type_message: str = ""
    text_message_data: TextMessageData | None = None
    extended_text_message_data: ExtendedTextMessageData | None = None
    file_message_data: FileMessageData | None = None
    quoted_message: dict[str, Any] | None = None


class NotificationBody(_Wire, frozen=True):
    """A notification (spec §4.1): a message, an outgoing status or a state change.

    Which fields are set depends on ``type_webhook``: messages have ``sender_data`` and
    ``message_data``; ``outgoingMessageStatus`` has ``chat_id`` and ``status``;
    ``stateInstanceChanged`` has ``state_instance``.
    """

    type_webhook: str
    instance_data: InstanceData | None = None
    timestamp: int = 0
    id_message: str = ""
    sender_data: SenderData | None = None
    message_data: MessageData | None = None
    chat_id: str = ""
    status: str = ""
    description: str = ""
    state_instance: str = ""

    @property
    def file(self) -> FileMessageData | None:
        """The file of a file message, else None."""
        return self.message_data.file_message_data if self.message_data else None

    @property
    def message_chat_id(self) -> str:
        """The chat a message or status belongs to."""
        return self.sender_data.chat_id if self.sender_data else self.chat_id


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """receiveNotification: a queued notification and the receipt that deletes it.

    ``body`` is the typed notification; ``raw`` the same body as the server sent it (plain JSON
    values, unknown fields included), for printing or forwarding unchanged.
    """

    receipt_id: int
    body: NotificationBody
    raw: dict[str, Any]


class Downloaded(msgspec.Struct, frozen=True, kw_only=True):
    """What a download wrote.

    ``path`` is the file written (None for a file object), ``size`` its full size and
    ``sha256`` its hash; ``verified`` tells whether that hash was checked against a content
    hash the server announced (its ETag). ``kept`` counts the bytes of a partial file from an
    earlier run that were kept (resumed), ``resumes`` how many times the transfer was continued
    from bytes already held (a partial file of an earlier run counts once, and each time a
    broken-off body was picked up again).
    """

    path: str | None
    size: int
    sha256: str
    verified: bool
    kept: int = 0
    resumes: int = 0
