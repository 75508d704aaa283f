"""What the web fake answers to each request frame of one WebSocket connection.

The request payloads are those PyMax 2.5.0 builds; where each was read:

* SESSION_INIT — ``WebHandshakePayload.to_payload`` (``pymax/api/session/payloads.py``):
  ``{userAgent: {deviceType: "WEB", …}, deviceId}``; the answer must be a non-empty map
  (``require_payload_model(…, HandshakeResponse)``, ``api/session/service.py``). The fake
  refuses any other ``deviceType``: it fakes the web client only, never the mobile one.
* GET_QR, GET_QR_STATUS, LOGIN_BY_QR, AUTH_LOGIN_CHECK_PASSWORD — ``AuthService.request_qr``,
  ``check_qr``, ``confirm_qr``, ``check_password`` (``api/auth/service.py``) and
  ``QrAuthFlow`` (``auth/qr.py``); answers ``RequestQrResponse``, ``CheckQrResponse``,
  ``CheckCodeResponse`` (``tokenAttrs.LOGIN.token`` or ``passwordChallenge``) and
  ``CheckPasswordResponse`` (``types/domain/auth.py``).
* LOGIN — ``WebSyncPayload`` (``api/auth/payloads.py``: token, chatsCount, sync markers);
  answers ``LoginResponse`` (``types/domain/login.py``). A revoked or unknown token answers
  ``FAIL_LOGIN_TOKEN``, the code ``App._is_invalid_login_token_error`` (``app.py``) looks for
  (PyMax issue #106 shows it in the wild; the rest of that error's text is the fake's guess).
  So does a token sent from another ``deviceId`` than the one it was issued to.
* MSG_SEND — ``SendMessagePayload`` (``api/messages/payloads.py``): ``{chatId, message: {text,
  cid, elements, attaches, link}, notify}``, attachments as ``AttachFilePayload``,
  ``VideoAttachPayload``, ``AttachPhotoPayload`` (``api/uploads/payloads.py``); answered with
  the message wrapper PyMax's ``Message`` unwraps.
* FILE_UPLOAD, VIDEO_UPLOAD, PHOTO_UPLOAD — ``UploadPayload`` and ``UploadService``
  (``api/uploads/service.py``); answers ``FileUploadResponse`` / ``VideoUploadResponse``
  (``info[0]``: url, fileId or videoId, token) and, for photos, a ``url`` whose query carries
  ``photoIds`` (``api/uploads/models.py``).
* FILE_DOWNLOAD, VIDEO_PLAY — ``GetFilePayload``, ``GetVideoPayload`` (``get_file_by_id``,
  ``get_video_by_id`` in ``api/messages/service.py``).
* CHAT_HISTORY, MSG_GET, CHAT_MARK — ``ChatHistoryPayload``, ``GetMessagesPayload``,
  ``ReadMessagesPayload``; answers ``{messages: [...]}`` and ``ReadState``.
* CONTACT_INFO, CONTACT_INFO_BY_PHONE, CHAT_INFO, CHATS_LIST — ``UserService.fetch_users``,
  ``search_by_phone`` (``api/users/service.py``), ``ChatService.get_chats``, ``fetch_chats``
  (``api/chats/service.py``): ``{contacts}``, ``{contact}``, ``{chats}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from maxgate.fakemax.web import shapes
from maxgate.fakemax.web.opcodes import Op
from maxgate.fakemax.web.world import Chat, QrLogin, Session, StoredFile, now_ms

if TYPE_CHECKING:
    from maxgate.fakemax.web.server import WebFake

Payload = dict[str, Any]
Handler = Callable[["Connection", Payload], Awaitable[Payload]]
CONFIG_HASH = "fakemax-0000000000000000-00000000-0000000000000000-0000000000000000-0"

# Opcodes a client may send before it has logged in.
BEFORE_LOGIN = {
    Op.PING,
    Op.SESSION_INIT,
    Op.GET_QR,
    Op.GET_QR_STATUS,
    Op.LOGIN_BY_QR,
    Op.AUTH_LOGIN_CHECK_PASSWORD,
    Op.LOGIN,
}


class WebError(Exception):
    """A request the fake refuses: sent back as a cmd 3 frame with a ``MaxApiError``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass
class Connection:
    """One client connection and what it has told the fake so far."""

    fake: WebFake
    origin: str | None = None
    device_id: str | None = None
    user_agent: Payload | None = None
    session: Session | None = None
    opcodes: list[int] = dataclasses.field(default_factory=list)  # every opcode received

    @property
    def account_id(self) -> int | None:
        """The account logged in on this connection, while its session is valid."""
        if self.session is None or self.session.revoked:
            return None
        return self.session.account_id

    async def handle(self, opcode: int, payload: Payload) -> Payload:
        """The answer to one request, or ``WebError``."""
        self.opcodes.append(opcode)
        try:
            op = Op(opcode)
        except ValueError:
            op = None
        handler = HANDLERS.get(op) if op is not None else None
        if handler is None:
            self.fake.unserved.append(opcode)
            raise WebError("proto.opcode", f"fakemax does not serve opcode {opcode}")
        if op != Op.SESSION_INIT and op != Op.PING and self.device_id is None:
            raise WebError("proto.state", f"opcode {opcode} before SESSION_INIT")
        if op not in BEFORE_LOGIN and self.account_id is None:
            raise WebError("FAIL_LOGIN_TOKEN", f"opcode {opcode} needs a logged-in session")
        return await handler(self, payload)

    # --- helpers ---------------------------------------------------------------------------

    def link(self, stored: StoredFile) -> str:
        return self.fake.file_url(stored)

    def my_chat(self, payload: Payload) -> Chat:
        chat_id = payload.get("chatId")
        account_id = self.account_id
        if not isinstance(chat_id, int) or account_id is None:
            raise WebError("proto.payload", f"chatId must be a number, not {chat_id!r}")
        chat = self.fake.world.chats.get(chat_id)
        if chat is None:
            other = chat_id ^ account_id
            if other in self.fake.world.people:
                return self.fake.world.dialog(account_id, other)
        if chat is None or account_id not in chat.members:
            raise WebError("chat.not.found", f"No chat {chat_id} for this account")
        return chat

    def token_login(self, account_id: int) -> Payload:
        session = self.fake.world.new_session(account_id, self.device_id or "")
        return {"tokenAttrs": {"LOGIN": {"token": session.token}}}


def _int(payload: Payload, name: str) -> int:
    value = payload.get(name)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if not isinstance(value, int):
        raise WebError("proto.payload", f"{name} must be a number, not {value!r}")
    return value


def _str(payload: Payload, name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise WebError("proto.payload", f"{name} must be a non-empty string, not {value!r}")
    return value


# --- session and login -----------------------------------------------------------------------


async def ping(conn: Connection, payload: Payload) -> Payload:
    return {}


async def session_init(conn: Connection, payload: Payload) -> Payload:
    agent = payload.get("userAgent")
    if not isinstance(agent, dict) or agent.get("deviceType") != "WEB":
        kind = agent.get("deviceType") if isinstance(agent, dict) else None
        raise WebError("proto.device", f"fakemax fakes the web client only, not {kind!r}")
    conn.device_id = _str(payload, "deviceId")
    conn.user_agent = agent
    return {"location": "RU", "app-update-type": 0}


async def get_qr(conn: Connection, payload: Payload) -> Payload:
    qr = conn.fake.world.new_qr()
    conn.fake.shown_qr.append(qr.link)
    return {
        "trackId": qr.track_id,
        "qrLink": qr.link,
        "expiresAt": qr.expires_at,
        "pollingInterval": conn.fake.config.qr_poll_interval_ms,
        "ttl": int(conn.fake.config.qr_ttl_seconds * 1000),
    }


def _qr(conn: Connection, payload: Payload) -> QrLogin:
    qr = conn.fake.world.qr_logins.get(_str(payload, "trackId"))
    if qr is None:
        raise WebError("qr.not.found", "No such QR login")
    return qr


async def get_qr_status(conn: Connection, payload: Payload) -> Payload:
    qr = _qr(conn, payload)
    available = qr.scanned_by is not None and not qr.used and qr.expires_at > now_ms()
    return {"status": {"expiresAt": qr.expires_at, "loginAvailable": available}}


async def login_by_qr(conn: Connection, payload: Payload) -> Payload:
    qr = _qr(conn, payload)
    if qr.expires_at <= now_ms():
        raise WebError("qr.expired", "The QR code has expired")
    if qr.scanned_by is None or qr.used:
        raise WebError("qr.not.confirmed", "The QR code has not been scanned")
    qr.used = True
    account = conn.fake.world.people[qr.scanned_by]
    if account.password is not None:
        challenge = conn.fake.world.new_challenge(account.user_id)
        return {"passwordChallenge": {"trackId": challenge.track_id, "hint": account.hint}}
    return conn.token_login(account.user_id)


async def check_password(conn: Connection, payload: Payload) -> Payload:
    challenge = conn.fake.world.challenges.get(_str(payload, "trackId"))
    if challenge is None:
        raise WebError("track.not.found", "No such password challenge")
    account = conn.fake.world.people[challenge.account_id]
    challenge.attempts += 1
    if payload.get("password") != account.password:
        raise WebError("error.password.invalid", "Неверный пароль")
    del conn.fake.world.challenges[challenge.track_id]
    return conn.token_login(account.user_id)


async def login(conn: Connection, payload: Payload) -> Payload:
    session = conn.fake.world.sessions.get(_str(payload, "token"))
    if session is None or session.revoked:
        raise WebError("FAIL_LOGIN_TOKEN", "login token was revoked")
    if session.device_id != conn.device_id:
        # PyMax keeps the device id with the token and hands it to SESSION_INIT again
        # (App.start in app.py); the fake holds a client to that, strictly.
        raise WebError("FAIL_LOGIN_TOKEN", "login token belongs to another device")
    conn.session = session
    world = conn.fake.world
    account = world.people[session.account_id]
    chats = [c for c in world.chats.values() if account.user_id in c.members]
    return {
        "profile": shapes.profile(account),
        "chats": [shapes.chat(c, conn.link) for c in chats],
        "contacts": [shapes.user(world.people[i]) for i in sorted(account.contacts)],
        "messages": {},
        "time": now_ms(),
        "config": {"hash": CONFIG_HASH},
    }


async def logout(conn: Connection, payload: Payload) -> Payload:
    if conn.session is not None:
        conn.session.revoked = True
    conn.fake.close_later(conn)
    return {}


# --- people and chats ------------------------------------------------------------------------


async def contact_info(conn: Connection, payload: Payload) -> Payload:
    ids = payload.get("contactIds") or []
    people = conn.fake.world.people
    return {"contacts": [shapes.user(people[i]) for i in ids if i in people]}


async def contact_by_phone(conn: Connection, payload: Payload) -> Payload:
    person = conn.fake.world.by_phone(_str(payload, "phone"))
    if person is None:
        raise WebError("not.found", "Пользователь не найден")
    return {"contact": shapes.user(person)}


async def chat_info(conn: Connection, payload: Payload) -> Payload:
    account_id = conn.account_id
    chats = conn.fake.world.chats
    wanted = [chats[i] for i in payload.get("chatIds") or [] if i in chats]
    return {"chats": [shapes.chat(c, conn.link) for c in wanted if account_id in c.members]}


async def chats_list(conn: Connection, payload: Payload) -> Payload:
    account_id = conn.account_id
    mine = [c for c in conn.fake.world.chats.values() if account_id in c.members]
    return {"chats": [shapes.chat(c, conn.link) for c in mine]}


async def chat_history(conn: Connection, payload: Payload) -> Payload:
    chat = conn.my_chat(payload)
    start = payload.get("from")
    start = start if isinstance(start, int) else now_ms()
    backward, forward = int(payload.get("backward") or 0), int(payload.get("forward") or 0)
    live = [m for m in chat.messages if not m.removed]
    older = [m for m in live if m.time <= start]
    newer = [m for m in live if m.time > start]
    picked = (older[-backward:] if backward else []) + newer[:forward]
    return {"messages": [shapes.message(m, conn.link) for m in picked]}


async def msg_get(conn: Connection, payload: Payload) -> Payload:
    chat = conn.my_chat(payload)
    ids = set(payload.get("messageIds") or [])
    found = [m for m in chat.messages if m.message_id in ids and not m.removed]
    return {"messages": [shapes.message(m, conn.link) for m in found]}


async def chat_mark(conn: Connection, payload: Payload) -> Payload:
    chat = conn.my_chat(payload)
    chat.mark = max(chat.mark, _int(payload, "mark"))
    return {"unread": 0, "mark": chat.mark}


# --- messages and files ----------------------------------------------------------------------


def _attached(conn: Connection, attach: Any) -> StoredFile:
    if not isinstance(attach, dict):
        raise WebError("proto.payload", f"an attachment must be a map, not {attach!r}")
    files = conn.fake.world.files.values()
    kind = attach.get("_type")
    if kind == "PHOTO":
        token = attach.get("photoToken")
        found = next((f for f in files if f.kind == "photo" and f.token == token), None)
    elif kind in ("FILE", "VIDEO", "AUDIO"):
        key = {"FILE": "fileId", "VIDEO": "videoId", "AUDIO": "audioId"}[kind]
        found = conn.fake.world.files.get(attach.get(key, -1))
        if found is None and kind == "AUDIO":
            token = attach.get("token")
            found = next((f for f in files if f.kind == "audio" and f.token == token), None)
    else:
        raise WebError("proto.payload", f"fakemax cannot send an attachment of _type {kind!r}")
    if found is None or found.deleted:
        raise WebError("attachment.not.found", f"No such attachment: {attach!r}")
    if not found.ready:
        raise WebError("attachment.not.ready", "Attachment is not ready")
    return found


async def msg_send(conn: Connection, payload: Payload) -> Payload:
    chat = conn.my_chat(payload)
    body = payload.get("message")
    if not isinstance(body, dict):
        raise WebError("proto.payload", "message must be a map")
    files = [_attached(conn, a) for a in body.get("attaches") or []]
    text = body.get("text") or ""
    if not text and not files:
        raise WebError("proto.payload", "a message needs text or attaches")
    link = body.get("link")
    reply_to = link.get("messageId") if isinstance(link, dict) else None
    account_id = conn.account_id
    assert account_id is not None
    message = conn.fake.world.add_message(
        chat, account_id, text, files, cid=body.get("cid"), reply_to=reply_to
    )
    await conn.fake.echo(conn, chat, message)
    return shapes.message_event(message, chat, conn.link)


async def _upload_slot(conn: Connection, kind: str) -> tuple[str, StoredFile]:
    account_id = conn.account_id
    assert account_id is not None
    upload = conn.fake.world.new_upload(kind, account_id)
    return conn.fake.upload_url(upload.slot), upload.file


async def file_upload(conn: Connection, payload: Payload) -> Payload:
    url, stored = await _upload_slot(conn, "file")
    return {"info": [{"url": url, "fileId": stored.file_id, "token": stored.token}]}


async def video_upload(conn: Connection, payload: Payload) -> Payload:
    # type 2 with uploaderType 1 is a voice message (UploadService.upload_voice).
    kind = "audio" if payload.get("type") == 2 else "video"
    url, stored = await _upload_slot(conn, kind)
    return {"info": [{"url": url, "videoId": stored.file_id, "token": stored.token}]}


async def photo_upload(conn: Connection, payload: Payload) -> Payload:
    url, stored = await _upload_slot(conn, "photo")
    return {"url": f"{url}?photoIds={stored.file_id}"}


def _message_file(conn: Connection, payload: Payload, key: str, kind: str) -> StoredFile:
    chat = conn.my_chat(payload)
    message = conn.fake.world.message(chat.chat_id, _int(payload, "messageId"))
    if message is None:
        raise WebError("message.not.found", "No such message")
    file_id = _int(payload, key)
    stored = next((f for f in message.files if f.file_id == file_id and f.kind == kind), None)
    if stored is None:
        raise WebError("attachment.not.found", f"No {kind} {file_id} in that message")
    if stored.deleted:
        raise WebError("file.not.found", "The file no longer exists")
    return stored


async def file_download(conn: Connection, payload: Payload) -> Payload:
    stored = _message_file(conn, payload, "fileId", "file")
    return shapes.file_request(conn.link(stored))


async def video_play(conn: Connection, payload: Payload) -> Payload:
    stored = _message_file(conn, payload, "videoId", "video")
    return shapes.video_request(conn.link(stored))


HANDLERS: dict[Op, Handler] = {
    Op.PING: ping,
    Op.SESSION_INIT: session_init,
    Op.GET_QR: get_qr,
    Op.GET_QR_STATUS: get_qr_status,
    Op.LOGIN_BY_QR: login_by_qr,
    Op.AUTH_LOGIN_CHECK_PASSWORD: check_password,
    Op.LOGIN: login,
    Op.LOGOUT: logout,
    Op.CONTACT_INFO: contact_info,
    Op.CONTACT_INFO_BY_PHONE: contact_by_phone,
    Op.CHAT_INFO: chat_info,
    Op.CHATS_LIST: chats_list,
    Op.CHAT_HISTORY: chat_history,
    Op.MSG_GET: msg_get,
    Op.CHAT_MARK: chat_mark,
    Op.MSG_SEND: msg_send,
    Op.FILE_UPLOAD: file_upload,
    Op.VIDEO_UPLOAD: video_upload,
    Op.PHOTO_UPLOAD: photo_upload,
    Op.FILE_DOWNLOAD: file_download,
    Op.VIDEO_PLAY: video_play,
}
