"""The wire side of the client, without I/O: URLs, the calls of every v3 method, decoding.

``Client`` and ``AsyncClient`` share all of this; they only differ in how they send.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import msgspec

from maxgate.client._exceptions import ApiStatusError, DecodeError, status_error
from maxgate.client._models import (
    AccountCheck,
    AccountSettings,
    Avatar,
    Chat,
    ChatRead,
    Cleared,
    Contact,
    ContactInfo,
    Count,
    DeleteResult,
    DownloadLink,
    Forwarded,
    InstanceSettings,
    JournalItem,
    LoggedOut,
    Notification,
    NotificationBody,
    PasswordResult,
    QrCode,
    QueuedMessage,
    Rebooted,
    SentFile,
    SentMessage,
    SettingsSaved,
    StateInstance,
    UploadedFile,
    YesNo,
)

T = TypeVar("T")

REDACTED = "***"
# `/waInstance{id}/{method}/{token}`: the token is the third segment whatever its format.
_TOKEN_IN_PATH = re.compile(r"(waInstance\d+/[^/?#\s'\"]+/)[^/?#\s'\"]+")


def redact_url_tokens(text: str) -> str:
    """``text`` with the token of every v3 URL in it replaced by ``***``."""
    return _TOKEN_IN_PATH.sub(r"\g<1>" + REDACTED, text)


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """Where an instance's methods live, and the secret that goes into their path."""

    api_url: str
    media_url: str
    id_instance: str
    token: str = dataclasses.field(repr=False)

    @classmethod
    def build(
        cls, *, api_url: str, media_url: str | None, id_instance: int | str, api_token: str
    ) -> Endpoint:
        """Check and normalise the options of a client."""
        if not api_url.startswith(("http://", "https://")):
            raise ValueError(f"api_url must be an http:// or https:// URL, got {api_url!r}")
        ident = str(id_instance).strip()
        if not ident.isdigit():
            raise ValueError(f"id_instance must be digits, got {ident!r}")
        if not api_token or "/" in api_token or any(c.isspace() for c in api_token):
            raise ValueError("api_token must be a non-empty string without '/' or spaces")
        return cls(api_url.rstrip("/"), (media_url or api_url).rstrip("/"), ident, api_token)

    def url(self, method: str, *, media: bool = False, extra: str | None = None) -> str:
        """The URL of a method: ``{apiUrl}/waInstance{id}/{method}/{token}[/{extra}]``."""
        base = self.media_url if media else self.api_url
        url = f"{base}/waInstance{self.id_instance}/{method}/{quote(self.token, safe='')}"
        return url if extra is None else f"{url}/{quote(extra, safe='')}"

    def redact(self, text: str) -> str:
        """``text`` without the token (for error messages built from foreign text)."""
        text = text.replace(self.token, REDACTED)
        return redact_url_tokens(text)


@dataclasses.dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request of a v3 method, and the type its 200 answer decodes into."""

    method: str
    verb: str
    result: Any  # a msgspec-decodable type whose instances are T
    json: Any = None
    params: Mapping[str, str] | None = None
    extra: str | None = None
    media: bool = False
    extra_read_time: float = 0.0  # long polls hold the answer back for this long
    decoder: Callable[[bytes], T] | None = None  # instead of decoding into ``result``


def decode(call: Call[T], content: bytes) -> T:
    """The 200 answer of a call as its typed result."""
    if call.decoder is not None:
        return call.decoder(content)
    try:
        value: T = msgspec.json.decode(content, type=call.result)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"{call.method}: unexpected answer: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise DecodeError(f"{call.method}: the answer is not JSON: {exc}") from exc
    return value


class _ErrorBody(msgspec.Struct):
    message: str = ""
    error: str = ""


def error_for(
    method: str,
    status: int,
    content: bytes,
    *,
    retry_after: float | None = None,
    endpoint: Endpoint | None = None,
) -> ApiStatusError:
    """The exception for a non-200 answer, carrying the ``message`` of its JSON error body."""
    message = ""
    try:
        body = msgspec.json.decode(content, type=_ErrorBody)
        message = body.message or body.error
    except (msgspec.DecodeError, msgspec.ValidationError):
        # Not our error shape (a proxy's HTML page, say): keep the first line of text.
        text = content[:200].decode("utf-8", "replace").strip()
        message = text.splitlines()[0] if text else ""
    if not message:
        message = f"HTTP {status}"
    if endpoint is not None:
        message = endpoint.redact(message)
    return status_error(status, message, method=method, retry_after=retry_after)


def _body(**fields: Any) -> dict[str, Any]:
    """A JSON body without the optional fields left as None."""
    return {k: v for k, v in fields.items() if v is not None}


def nothing(method: str) -> Callable[[bytes], None]:
    """The decoder of an answer that carries nothing: ``{}`` (maxgate) or an empty body (the
    vendor's, for some methods); anything but a JSON object is a DecodeError."""

    def decode_nothing(content: bytes) -> None:
        if not content.strip():
            return
        try:
            msgspec.json.decode(content, type=dict[str, Any])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise DecodeError(f"{method}: unexpected answer: {exc}") from exc

    return decode_nothing


# --- Sending ---------------------------------------------------------------------------------


def send_message(
    chat_id: str,
    message: str,
    *,
    quoted_message_id: str | None,
    link_preview: bool | None,
    typing_time: int | None,
) -> Call[SentMessage]:
    """sendMessage."""
    body = _body(
        chatId=chat_id,
        message=message,
        quotedMessageId=quoted_message_id,
        linkPreview=link_preview,
        typingTime=typing_time,
    )
    return Call("sendMessage", "POST", SentMessage, json=body)


def send_file_by_url(
    chat_id: str,
    url_file: str,
    file_name: str,
    *,
    caption: str | None,
    quoted_message_id: str | None,
) -> Call[SentFile]:
    """sendFileByUrl."""
    body = _body(
        chatId=chat_id,
        urlFile=url_file,
        fileName=file_name,
        caption=caption,
        quotedMessageId=quoted_message_id,
    )
    return Call("sendFileByUrl", "POST", SentFile, json=body)


SEND_FILE_BY_UPLOAD: Call[SentFile] = Call("sendFileByUpload", "POST", SentFile, media=True)
UPLOAD_FILE: Call[UploadedFile] = Call("uploadFile", "POST", UploadedFile, media=True)


def upload_fields(
    chat_id: str, file_name: str, *, caption: str | None, quoted_message_id: str | None
) -> dict[str, str]:
    """The text fields of sendFileByUpload's form."""
    return _body(
        chatId=chat_id, fileName=file_name, caption=caption, quotedMessageId=quoted_message_id
    )


def send_location(
    chat_id: str,
    latitude: float,
    longitude: float,
    *,
    name_location: str | None,
    address: str | None,
    quoted_message_id: str | None,
) -> Call[SentMessage]:
    """sendLocation."""
    body = _body(
        chatId=chat_id,
        latitude=latitude,
        longitude=longitude,
        nameLocation=name_location,
        address=address,
        quotedMessageId=quoted_message_id,
    )
    return Call("sendLocation", "POST", SentMessage, json=body)


def send_contact(
    chat_id: str,
    phone_contact: int,
    *,
    names: Mapping[str, str | None],
    quoted_message_id: str | None,
) -> Call[SentMessage]:
    """sendContact: ``names`` are the card's firstName, middleName, lastName, company."""
    contact = _body(phoneContact=phone_contact, **names)
    body = _body(chatId=chat_id, contact=contact, quotedMessageId=quoted_message_id)
    return Call("sendContact", "POST", SentMessage, json=body)


def forward_messages(chat_id: str, chat_id_from: str, messages: Sequence[str]) -> Call[Forwarded]:
    """forwardMessages."""
    if isinstance(messages, str):
        raise TypeError("messages is a sequence of idMessage, not one string")
    body = {"chatId": chat_id, "chatIdFrom": chat_id_from, "messages": list(messages)}
    return Call("forwardMessages", "POST", Forwarded, json=body)


# --- Service ---------------------------------------------------------------------------------


def edit_message(chat_id: str, id_message: str, message: str) -> Call[SentMessage]:
    """editMessage."""
    body = {"chatId": chat_id, "idMessage": id_message, "message": message}
    return Call("editMessage", "POST", SentMessage, json=body)


def delete_message(chat_id: str, id_message: str) -> Call[None]:
    """deleteMessage."""
    body = {"chatId": chat_id, "idMessage": id_message}
    return Call("deleteMessage", "POST", None, json=body, decoder=nothing("deleteMessage"))


def send_typing(chat_id: str, typing_time: int | None, typing_type: str | None) -> Call[None]:
    """sendTyping."""
    body = _body(chatId=chat_id, typingTime=typing_time, typingType=typing_type)
    return Call("sendTyping", "POST", None, json=body, decoder=nothing("sendTyping"))


def read_chat(chat_id: str, id_message: str | None) -> Call[ChatRead]:
    """readChat."""
    return Call("readChat", "POST", ChatRead, json=_body(chatId=chat_id, idMessage=id_message))


GET_CONTACTS: Call[list[Contact]] = Call("getContacts", "GET", list[Contact])


def get_contact_info(chat_id: str) -> Call[ContactInfo]:
    """getContactInfo."""
    return Call("getContactInfo", "POST", ContactInfo, json={"chatId": chat_id})


def get_avatar(chat_id: str) -> Call[Avatar]:
    """getAvatar."""
    return Call("getAvatar", "POST", Avatar, json={"chatId": chat_id})


# --- Receiving -------------------------------------------------------------------------------


def download_file(chat_id: str, id_message: str) -> Call[DownloadLink]:
    """downloadFile."""
    return Call(
        "downloadFile", "POST", DownloadLink, json={"chatId": chat_id, "idMessage": id_message}
    )


def receive_notification(receive_timeout: int | None) -> Call[Notification | None]:
    """receiveNotification: the head of the queue, or None when it stayed empty."""
    params = None if receive_timeout is None else {"receiveTimeout": str(receive_timeout)}
    wait = float(receive_timeout if receive_timeout is not None else 5)
    return Call(
        "receiveNotification",
        "GET",
        None,
        params=params,
        extra_read_time=wait,
        decoder=notification,
    )


class _Envelope(msgspec.Struct, rename="camel"):
    receipt_id: int
    body: msgspec.Raw


def notification(content: bytes) -> Notification | None:
    """receiveNotification's answer: a notification, or None when the queue stayed empty."""
    try:
        envelope = msgspec.json.decode(content, type=_Envelope | None)
        if envelope is None:
            return None
        raw = msgspec.json.decode(envelope.body, type=dict[str, Any])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(f"receiveNotification: unexpected answer: {exc}") from exc
    try:
        body = msgspec.convert(raw, NotificationBody, strict=False)
    except msgspec.ValidationError as exc:
        raise DecodeError(
            f"receiveNotification: receipt {envelope.receipt_id} is not a notification: {exc}"
        ) from exc
    return Notification(receipt_id=envelope.receipt_id, body=body, raw=raw)


def delete_notification(receipt_id: int) -> Call[DeleteResult]:
    """deleteNotification."""
    return Call("deleteNotification", "DELETE", DeleteResult, extra=str(receipt_id))


# --- Journals --------------------------------------------------------------------------------


def get_chat_history(chat_id: str, count: int | None) -> Call[list[JournalItem]]:
    """getChatHistory."""
    return Call(
        "getChatHistory", "POST", list[JournalItem], json=_body(chatId=chat_id, count=count)
    )


def get_message(chat_id: str, id_message: str) -> Call[JournalItem]:
    """getMessage."""
    return Call(
        "getMessage", "POST", JournalItem, json={"chatId": chat_id, "idMessage": id_message}
    )


def last_messages(direction: str, minutes: int | None) -> Call[list[JournalItem]]:
    """lastIncomingMessages / lastOutgoingMessages."""
    method = "lastIncomingMessages" if direction == "incoming" else "lastOutgoingMessages"
    params = None if minutes is None else {"minutes": str(minutes)}
    return Call(method, "GET", list[JournalItem], params=params)


GET_CHATS: Call[list[Chat]] = Call("getChats", "GET", list[Chat])

# --- Account ---------------------------------------------------------------------------------

GET_STATE_INSTANCE: Call[StateInstance] = Call("getStateInstance", "GET", StateInstance)
GET_SETTINGS: Call[InstanceSettings] = Call("getSettings", "GET", InstanceSettings)
GET_ACCOUNT_SETTINGS: Call[AccountSettings] = Call("getAccountSettings", "GET", AccountSettings)


REBOOT: Call[Rebooted] = Call("reboot", "GET", Rebooted)
LOGOUT: Call[LoggedOut] = Call("logout", "GET", LoggedOut)
QR: Call[QrCode] = Call("qr", "GET", QrCode)


def _yes_no(value: bool | YesNo | None) -> str | None:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def set_settings(
    *,
    webhook_url: str | None,
    webhook_url_token: str | None,
    webhook_secret: str | None,
    delay_send_messages_milliseconds: int | None,
    yes_no: Mapping[str, bool | YesNo | None],
) -> Call[SettingsSaved]:
    """setSettings from the keyword arguments that were given."""
    body = _body(
        webhookUrl=webhook_url,
        webhookUrlToken=webhook_url_token,
        webhookSecret=webhook_secret,
        delaySendMessagesMilliseconds=delay_send_messages_milliseconds,
        **{name: _yes_no(value) for name, value in yes_no.items()},
    )
    if not body:
        raise ValueError("set_settings needs at least one setting")
    return Call("setSettings", "POST", SettingsSaved, json=body)


def send_authorization_password(password: str) -> Call[PasswordResult]:
    """sendAuthorizationPassword."""
    return Call("sendAuthorizationPassword", "POST", PasswordResult, json={"password": password})


def check_account(phone_number: int) -> Call[AccountCheck]:
    """checkAccount."""
    return Call("checkAccount", "POST", AccountCheck, json={"phoneNumber": phone_number})


# --- Queues ----------------------------------------------------------------------------------

SHOW_MESSAGES_QUEUE: Call[list[QueuedMessage]] = Call(
    "showMessagesQueue", "GET", list[QueuedMessage]
)
CLEAR_MESSAGES_QUEUE: Call[Cleared] = Call("clearMessagesQueue", "GET", Cleared)
GET_MESSAGES_COUNT: Call[Count] = Call("getMessagesCount", "GET", Count)
GET_WEBHOOKS_COUNT: Call[Count] = Call("getWebhooksCount", "GET", Count)
CLEAR_WEBHOOKS_QUEUE: Call[Cleared] = Call("clearWebhooksQueue", "GET", Cleared)
