"""A client library for GREEN-API v3 servers (maxgate or the vendor's), shaped like httpx.

    from maxgate.client import Client

    with Client(api_url="http://127.0.0.1:8080", id_instance=3100000001, api_token="…") as c:
        sent = c.send_message("10000000", "Hello")
        for notification in c.notifications():
            print(notification.body.type_webhook)

``AsyncClient`` has the same methods, awaited. Results are msgspec Structs; every failure is a
:class:`MaxgateClientError`. The token is never part of an error message or a repr.

One source for both classes: ``AsyncClient`` (``_async.py``) is written by hand and ``Client``
(``_sync.py``) is generated from it by ``scripts/unasync`` (the unasync library drops
``async``/``await`` and renames ``aclose``, ``aread``, ``afeed`` to their sync twins), as
httpcore generates its sync half; a test fails when the committed ``_sync.py`` is not what the
script writes. What is not I/O is shared as plain modules: ``_wire`` (the request and answer of
every method), ``_download`` (resume and hash state), ``_upload`` (streamed bodies) and
``_retry``. A sans-IO table of method descriptions with two thin executors was the other way;
it fits one-request methods, but ``download_link`` (a resume loop), ``notifications`` (a
generator that deletes as it goes) and the retried streamed uploads are control flow, which a
table cannot hold, so they would still be written twice. Generated code keeps both classes
plain methods that read, type-check and show in ``help()`` like hand-written ones.
"""

from maxgate.client._async import AsyncClient
from maxgate.client._download import content_hash, link_file_name, safe_file_name
from maxgate.client._exceptions import (
    ApiStatusError,
    BadRequestError,
    DecodeError,
    DownloadError,
    ForbiddenError,
    GoneError,
    HashMismatchError,
    MaxgateClientError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    TransportError,
    UnauthorizedError,
)
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
    Downloaded,
    DownloadLink,
    ExtendedTextMessageData,
    FileMessageData,
    Forwarded,
    InstanceData,
    InstanceSettings,
    JournalItem,
    LoggedOut,
    MessageData,
    Notification,
    NotificationBody,
    PasswordResult,
    PasswordStatus,
    QrCode,
    QueuedMessage,
    QueuedMessageBody,
    Rebooted,
    SenderData,
    SentFile,
    SentMessage,
    SettingsSaved,
    StateInstance,
    TextMessageData,
    UploadedFile,
)
from maxgate.client._sync import Client
from maxgate.client._upload import Progress
from maxgate.client._wire import redact_url_tokens

__all__ = [
    "AccountCheck",
    "AccountSettings",
    "ApiStatusError",
    "AsyncClient",
    "Avatar",
    "BadRequestError",
    "Chat",
    "ChatRead",
    "Cleared",
    "Client",
    "Contact",
    "ContactInfo",
    "Count",
    "DecodeError",
    "DeleteResult",
    "DownloadError",
    "DownloadLink",
    "Downloaded",
    "ExtendedTextMessageData",
    "FileMessageData",
    "ForbiddenError",
    "Forwarded",
    "GoneError",
    "HashMismatchError",
    "InstanceData",
    "InstanceSettings",
    "JournalItem",
    "LoggedOut",
    "MaxgateClientError",
    "MessageData",
    "NotFoundError",
    "Notification",
    "NotificationBody",
    "PasswordResult",
    "PasswordStatus",
    "PayloadTooLargeError",
    "Progress",
    "QrCode",
    "QueuedMessage",
    "QueuedMessageBody",
    "RateLimitError",
    "Rebooted",
    "SenderData",
    "SentFile",
    "SentMessage",
    "ServerError",
    "SettingsSaved",
    "StateInstance",
    "TextMessageData",
    "TransportError",
    "UnauthorizedError",
    "UploadedFile",
    "content_hash",
    "link_file_name",
    "redact_url_tokens",
    "safe_file_name",
]
