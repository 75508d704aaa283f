# Generated from _async.py by scripts/unasync: edit that file, not this one.
"""``Client``: the blocking GREEN-API v3 client.

Over 500 lines because it is one class with a method per v3 method, and ``_async.py`` is the
one source of both clients (``_sync.py`` is generated from it by scripts/unasync); the request
and answer of each method (``_wire``), the download state (``_download``), the streamed bodies
(``_upload``) and the retry budget (``_retry``) already live beside it: what is left is the
I/O of each call.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from maxgate.client import _wire as wire
from maxgate.client._base import (
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_RECEIVE_TIMEOUT,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    LINK,
    Options,
    http_options,
    install_log_redaction,
)
from maxgate.client._download import (
    Sink,
    Step,
    Target,
    Transfer,
    resolve_target,
    stall_pause,
)
from maxgate.client._exceptions import DownloadError, RateLimitError
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
    Forwarded,
    InstanceSettings,
    JournalItem,
    LoggedOut,
    Notification,
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
from maxgate.client._upload import Body, FileSource, Progress, Source

T = TypeVar("T")


class Client:
    """A blocking client of one GREEN-API v3 instance (maxgate or any compatible server).

    Every option is keyword-only. ``transport`` is httpx's seam: pass
    ``httpx.MockTransport(handler)`` or any ``httpx.BaseTransport`` to run against a fake or an
    in-process app. Rate-limited calls (429) are retried up to ``retries`` times, waiting what
    ``Retry-After`` asks, as long as the waits add up to at most ``max_retry_wait`` seconds.
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        *,
        api_url: str,
        id_instance: int | str,
        api_token: str,
        media_url: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._options = Options(
            api_url=api_url,
            id_instance=id_instance,
            api_token=api_token,
            media_url=media_url,
            timeout=timeout,
            retries=retries,
            max_retry_wait=max_retry_wait,
        )
        install_log_redaction()
        self._http = httpx.Client(transport=transport, **http_options(self._options))

    def __repr__(self) -> str:
        return self._options.repr(type(self).__name__)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- plumbing ----------------------------------------------------------------------------

    def _call(self, call: wire.Call[T], body: Body | None = None) -> T:
        options = self._options
        budget = options.budget()
        while True:
            extra: dict[str, Any] = {}
            if body is not None:
                extra = {"content": iter(body), "headers": body.headers}
            try:
                response = self._http.request(**options.request(call, **extra))
            except httpx.HTTPError as exc:
                raise options.transport_error(call.method, exc) from exc
            if response.status_code == 200:
                return wire.decode(call, response.content)
            error = options.status_error(call.method, response)
            if isinstance(error, RateLimitError) and (body is None or body.source.replayable):
                delay = budget.delay(error.retry_after)
                if delay is not None:
                    time.sleep(delay)
                    continue
            raise error

    # --- sending -----------------------------------------------------------------------------

    def send_message(
        self,
        chat_id: str,
        message: str,
        *,
        quoted_message_id: str | None = None,
        link_preview: bool | None = None,
        typing_time: int | None = None,
    ) -> SentMessage:
        """sendMessage: queue a text message (up to 4000 characters)."""
        call = wire.send_message(
            chat_id,
            message,
            quoted_message_id=quoted_message_id,
            link_preview=link_preview,
            typing_time=typing_time,
        )
        return self._call(call)

    def send_location(
        self,
        chat_id: str,
        latitude: float,
        longitude: float,
        *,
        name_location: str | None = None,
        address: str | None = None,
        quoted_message_id: str | None = None,
    ) -> SentMessage:
        """sendLocation: queue a location (latitude -90 to 90, longitude -180 to 180)."""
        call = wire.send_location(
            chat_id,
            latitude,
            longitude,
            name_location=name_location,
            address=address,
            quoted_message_id=quoted_message_id,
        )
        return self._call(call)

    def send_contact(
        self,
        chat_id: str,
        phone_contact: int,
        *,
        first_name: str | None = None,
        middle_name: str | None = None,
        last_name: str | None = None,
        company: str | None = None,
        quoted_message_id: str | None = None,
    ) -> SentMessage:
        """sendContact: queue a contact card (``phone_contact`` is 11 or 12 digits, no ``+``;
        the server wants at least one of the names or ``company``)."""
        names = {
            "firstName": first_name,
            "middleName": middle_name,
            "lastName": last_name,
            "company": company,
        }
        call = wire.send_contact(
            chat_id, phone_contact, names=names, quoted_message_id=quoted_message_id
        )
        return self._call(call)

    def forward_messages(
        self, chat_id: str, chat_id_from: str, messages: Sequence[str]
    ) -> Forwarded:
        """forwardMessages: copy messages (their idMessage, up to 100) of ``chat_id_from`` to
        ``chat_id``; each copy gets a new idMessage."""
        return self._call(wire.forward_messages(chat_id, chat_id_from, messages))

    def send_file_by_upload(
        self,
        chat_id: str,
        file: FileSource,
        *,
        file_name: str | None = None,
        caption: str | None = None,
        quoted_message_id: str | None = None,
        progress: Progress | None = None,
    ) -> SentFile:
        """sendFileByUpload: send a file (a path or an open binary file), streamed.

        ``file_name`` defaults to the path's name; ``progress(sent, total)`` is called as the
        file's bytes are handed to the connection.
        """
        source = Source(file, file_name=file_name)
        fields = wire.upload_fields(
            chat_id, source.file_name, caption=caption, quoted_message_id=quoted_message_id
        )
        return self._call(wire.SEND_FILE_BY_UPLOAD, Body(source, fields=fields, progress=progress))

    def send_file_by_url(
        self,
        chat_id: str,
        url_file: str,
        file_name: str,
        *,
        caption: str | None = None,
        quoted_message_id: str | None = None,
    ) -> SentFile:
        """sendFileByUrl: send a file the server fetches from a URL (or one of its own links)."""
        call = wire.send_file_by_url(
            chat_id, url_file, file_name, caption=caption, quoted_message_id=quoted_message_id
        )
        return self._call(call)

    def upload_file(
        self, file: FileSource, *, file_name: str | None = None, progress: Progress | None = None
    ) -> UploadedFile:
        """uploadFile: store a file (streamed) and get a link for :meth:`send_file_by_url`."""
        source = Source(file, file_name=file_name)
        return self._call(wire.UPLOAD_FILE, Body(source, progress=progress, name_header=True))

    # --- service -----------------------------------------------------------------------------

    def edit_message(self, chat_id: str, id_message: str, message: str) -> SentMessage:
        """editMessage: change the text of a sent text message (up to 4000 characters)."""
        return self._call(wire.edit_message(chat_id, id_message, message))

    def delete_message(self, chat_id: str, id_message: str) -> None:
        """deleteMessage: remove a sent message for everybody."""
        self._call(wire.delete_message(chat_id, id_message))

    def send_typing(
        self, chat_id: str, *, typing_time: int | None = None, typing_type: str | None = None
    ) -> None:
        """sendTyping: show "typing…" for ``typing_time`` ms (1000 to 20000, server default
        1000); ``typing_type="recording"`` shows "recording…" instead."""
        self._call(wire.send_typing(chat_id, typing_time, typing_type))

    def read_chat(self, chat_id: str, *, id_message: str | None = None) -> ChatRead:
        """readChat: mark the chat's incoming messages read (only ``id_message``, if given)."""
        return self._call(wire.read_chat(chat_id, id_message))

    def get_contacts(self) -> list[Contact]:
        """getContacts: the account's contacts."""
        return self._call(wire.GET_CONTACTS)

    def get_contact_info(self, chat_id: str) -> ContactInfo:
        """getContactInfo: what the messenger tells of a person (not of a group)."""
        return self._call(wire.get_contact_info(chat_id))

    def get_avatar(self, chat_id: str) -> Avatar:
        """getAvatar: the picture of a person or group."""
        return self._call(wire.get_avatar(chat_id))

    # --- receiving ---------------------------------------------------------------------------

    def download_file_link(self, chat_id: str, id_message: str) -> DownloadLink:
        """downloadFile: a working link to the file of a received or sent message."""
        return self._call(wire.download_file(chat_id, id_message))

    def download_file(
        self,
        chat_id: str,
        id_message: str,
        to: Target,
        *,
        progress: Progress | None = None,
        resume: bool = True,
    ) -> Downloaded:
        """Download a message's file to ``to`` (a path, a directory or a binary file).

        Calls downloadFile for the link, then :meth:`download_link`.
        """
        link = self.download_file_link(chat_id, id_message)
        return self.download_link(link.download_url, to, progress=progress, resume=resume)

    def download_link(
        self, url: str, to: Target, *, progress: Progress | None = None, resume: bool = True
    ) -> Downloaded:
        """Stream a file link to ``to``, resuming and checking the hash.

        ``to`` is a file path, a directory (the file keeps the link's name) or an open binary
        file. With ``resume`` (the default) an existing file at the path is taken as the start
        of the download and continued with ``Range``; if the connection drops mid-transfer,
        the download continues from where it stopped (``retries`` times without progress).
        ``If-Range`` makes sure the pieces are of one version. When the server's ETag is a
        SHA-256 (maxgate's is), the result is checked against it: ``HashMismatchError``
        otherwise; a partial file from an earlier run that turns out to belong to another file
        is downloaded again from the start. ``progress(done, total)`` follows the bytes.
        """
        target = resolve_target(to, url)
        options = self._options
        with Sink(target, resume=resume) as sink:
            transfer = Transfer.open(sink, progress=progress)
            budget, stalls = options.budget(), 0
            while True:
                before = transfer.offset
                try:
                    step = self._fetch(url, transfer)
                except httpx.HTTPError as exc:
                    stalls = 0 if transfer.offset > before else stalls + 1
                    if stalls > options.retries:
                        raise options.transport_error(LINK, exc) from exc
                    if transfer.offset > 0:
                        transfer.interrupted()
                    if stalls:
                        time.sleep(stall_pause(stalls))
                    continue
                except RateLimitError as exc:
                    delay = budget.delay(exc.retry_after)
                    if delay is None:
                        raise
                    time.sleep(delay)
                    continue
                if step is Step.AGAIN:
                    stalls = 0 if transfer.offset > before else stalls + 1
                    if stalls > options.retries:
                        raise DownloadError(
                            f"the download stopped at byte {transfer.offset} of "
                            f"{transfer.total} and could not be resumed"
                        )
                    if transfer.offset > 0:
                        transfer.interrupted()
                    if stalls:
                        time.sleep(stall_pause(stalls))
                    continue
                done = transfer.finish()
                if done is not None:
                    return done

    def _fetch(self, url: str, transfer: Transfer) -> Step:
        """One request of a download; returns whether it is done or must go on."""
        headers = transfer.request_headers()
        with self._http.stream("GET", url, headers=headers, follow_redirects=True) as response:
            step = transfer.begin(response.status_code, response.headers)
            if step is Step.FAIL:
                response.read()
                raise self._options.status_error(LINK, response)
            if step is not Step.BODY:
                return step
            for chunk in response.iter_bytes():
                transfer.feed(chunk)
        return transfer.end()

    def receive_notification(self, *, receive_timeout: int | None = None) -> Notification | None:
        """receiveNotification: the oldest notification, or None if none came in
        ``receive_timeout`` seconds (5 to 60; the server's default is 5)."""
        return self._call(wire.receive_notification(receive_timeout))

    def delete_notification(self, receipt_id: int) -> DeleteResult:
        """deleteNotification: drop a received notification from the queue."""
        return self._call(wire.delete_notification(receipt_id))

    def notifications(
        self, *, receive_timeout: int = DEFAULT_RECEIVE_TIMEOUT
    ) -> Generator[Notification, None]:
        """Notifications as they arrive, long-polling receiveNotification; endless.

        Each notification is deleted from the server's queue when you ask for the next one,
        that is once the body of your ``for`` loop is done with it. If the loop stops (``break``,
        an exception), the last notification is not deleted and is delivered again next time:
        delivery is at least once.
        """
        pending: int | None = None
        while True:
            if pending is not None:
                self.delete_notification(pending)
                pending = None
            notification = self.receive_notification(receive_timeout=receive_timeout)
            if notification is None:
                continue
            pending = notification.receipt_id
            yield notification

    # --- journals ----------------------------------------------------------------------------

    def get_chat_history(self, chat_id: str, *, count: int | None = None) -> list[JournalItem]:
        """getChatHistory: the newest messages of a chat, newest first (server default 100)."""
        return self._call(wire.get_chat_history(chat_id, count))

    def get_message(self, chat_id: str, id_message: str) -> JournalItem:
        """getMessage: one message of a chat."""
        return self._call(wire.get_message(chat_id, id_message))

    def last_incoming_messages(self, *, minutes: int | None = None) -> list[JournalItem]:
        """lastIncomingMessages: received in the last ``minutes`` (server default 1440)."""
        return self._call(wire.last_messages("incoming", minutes))

    def last_outgoing_messages(self, *, minutes: int | None = None) -> list[JournalItem]:
        """lastOutgoingMessages: sent in the last ``minutes`` (server default 1440)."""
        return self._call(wire.last_messages("outgoing", minutes))

    def get_chats(self) -> list[Chat]:
        """getChats: the instance's chats."""
        return self._call(wire.GET_CHATS)

    # --- account -----------------------------------------------------------------------------

    def get_state_instance(self) -> StateInstance:
        """getStateInstance: the messenger connection state."""
        return self._call(wire.GET_STATE_INSTANCE)

    def get_settings(self) -> InstanceSettings:
        """getSettings: the instance's settings."""
        return self._call(wire.GET_SETTINGS)

    def set_settings(
        self,
        *,
        webhook_url: str | None = None,
        webhook_url_token: str | None = None,
        webhook_secret: str | None = None,
        delay_send_messages_milliseconds: int | None = None,
        mark_incoming_messages_readed: bool | YesNo | None = None,
        mark_incoming_messages_readed_on_reply: bool | YesNo | None = None,
        outgoing_webhook: bool | YesNo | None = None,
        outgoing_message_webhook: bool | YesNo | None = None,
        outgoing_api_message_webhook: bool | YesNo | None = None,
        incoming_webhook: bool | YesNo | None = None,
        state_webhook: bool | YesNo | None = None,
    ) -> SettingsSaved:
        """setSettings: change the settings given (at least one); ``True`` means ``"yes"``."""
        call = wire.set_settings(
            webhook_url=webhook_url,
            webhook_url_token=webhook_url_token,
            webhook_secret=webhook_secret,
            delay_send_messages_milliseconds=delay_send_messages_milliseconds,
            yes_no={
                "markIncomingMessagesReaded": mark_incoming_messages_readed,
                "markIncomingMessagesReadedOnReply": mark_incoming_messages_readed_on_reply,
                "outgoingWebhook": outgoing_webhook,
                "outgoingMessageWebhook": outgoing_message_webhook,
                "outgoingAPIMessageWebhook": outgoing_api_message_webhook,
                "incomingWebhook": incoming_webhook,
                "stateWebhook": state_webhook,
            },
        )
        return self._call(call)

    def get_account_settings(self) -> AccountSettings:
        """getAccountSettings: the account behind the instance."""
        return self._call(wire.GET_ACCOUNT_SETTINGS)

    def reboot(self) -> Rebooted:
        """reboot: reconnect the account to the messenger."""
        return self._call(wire.REBOOT)

    def logout(self) -> LoggedOut:
        """logout: log the account out (log in again with :meth:`qr`)."""
        return self._call(wire.LOGOUT)

    def qr(self) -> QrCode:
        """qr: a QR code to log the account in, or ``alreadyLogged``."""
        return self._call(wire.QR)

    def send_authorization_password(self, password: str) -> PasswordResult:
        """sendAuthorizationPassword: finish a :meth:`qr` login with the account's two-factor
        password; ``data.status`` is ``success`` or ``fail`` (``data.reason`` says why)."""
        return self._call(wire.send_authorization_password(password))

    def check_account(self, phone_number: int) -> AccountCheck:
        """checkAccount: whether a phone number has an account."""
        return self._call(wire.check_account(phone_number))

    # --- queues ------------------------------------------------------------------------------

    def show_messages_queue(self) -> list[QueuedMessage]:
        """showMessagesQueue: outgoing messages not yet handed to the messenger."""
        return self._call(wire.SHOW_MESSAGES_QUEUE)

    def clear_messages_queue(self) -> Cleared:
        """clearMessagesQueue: drop the waiting outgoing messages."""
        return self._call(wire.CLEAR_MESSAGES_QUEUE)

    def get_messages_count(self) -> Count:
        """getMessagesCount: how many outgoing messages wait."""
        return self._call(wire.GET_MESSAGES_COUNT)

    def get_webhooks_count(self) -> Count:
        """getWebhooksCount: how many notifications wait."""
        return self._call(wire.GET_WEBHOOKS_COUNT)

    def clear_webhooks_queue(self) -> Cleared:
        """clearWebhooksQueue: drop the waiting notifications."""
        return self._call(wire.CLEAR_WEBHOOKS_QUEUE)
