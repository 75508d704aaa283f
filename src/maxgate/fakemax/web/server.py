"""``WebFake``: the web fake's world behind one aiohttp server on 127.0.0.1 — the WebSocket
PyMax's ``WebClient`` connects to (``/websocket``), the HTTP side its uploads and downloads
use (``/uploads/…``, ``/files/…``) and the control API (``/_control/…``) — plus the control
methods a Python test calls directly.

One server serves both sides because uploads are HTTP POSTs, which the ``websockets``
library's server cannot take; aiohttp is already PyMax's own HTTP client. ``WebClient`` takes
any ``ws://`` URL through ``ExtraConfig.url`` (``transport/websocket.py`` hands it to
``websockets.asyncio.client.connect``), and its uploads pass their ``ssl`` context to aiohttp,
which ignores it for ``http://`` URLs: no TLS is needed on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Coroutine
from types import TracebackType
from typing import Any

from aiohttp import WSMsgType, web

from maxgate.fakemax.web import control, frames, shapes, transfer
from maxgate.fakemax.web.config import WebFakeConfig
from maxgate.fakemax.web.frames import Cmd, Compression
from maxgate.fakemax.web.handlers import Connection, WebError
from maxgate.fakemax.web.opcodes import Op
from maxgate.fakemax.web.world import Chat, Message, Person, StoredFile, World

log = logging.getLogger("maxgate.fakemax.web")
MAX_FRAME = 16 * 1024 * 1024  # PyMax's client takes 10 MB frames; be a little wider


class _Peer:
    """A connection's socket and the lock that keeps its frames whole."""

    def __init__(self, ws: web.WebSocketResponse, conn: Connection) -> None:
        self.ws = ws
        self.conn = conn
        self.lock = asyncio.Lock()
        self.closing = False  # no more answers: the socket is about to close


@dataclasses.dataclass
class Faults:
    """Failures a test asks for: the socket closes on the next ``drop_requests[opcode]``
    requests of that opcode, unanswered and unhandled; the next ``drop_uploads`` upload POSTs
    lose their connection after the first bytes, storing nothing."""

    drop_requests: dict[int, int] = dataclasses.field(default_factory=dict)
    drop_uploads: int = 0


class WebFake:
    """A fake MAX web (user-account) server. ``async with WebFake() as fake:`` serves it on a
    free port of 127.0.0.1; point PyMax at ``fake.ws_url``."""

    def __init__(self, config: WebFakeConfig | None = None, *, host: str = "127.0.0.1") -> None:
        self.config = config or WebFakeConfig()
        self.compression = Compression(self.config.compression)
        self.world = World(qr_ttl_seconds=self.config.qr_ttl_seconds)
        self.host = host
        self.port = 0
        self.unserved: list[int] = []  # opcodes asked for that the fake does not serve
        self.peers: list[_Peer] = []
        self.shown_qr: list[str] = []  # every QR link handed out, oldest first
        self.faults = Faults()
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.app = web.Application(client_max_size=1024**3)
        self.app[transfer.FAKE] = self
        self.app.add_routes([web.get("/websocket", self._websocket), *transfer.ROUTES])
        self.app.add_routes(control.ROUTES)

    # --- serving ---------------------------------------------------------------------------

    async def start(self, port: int = 0) -> None:
        """Listen on ``host:port`` (0: a free port, then in ``self.port``)."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        await self.disconnect_all()
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WebFake:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """The HTTP side: ``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """What to pass as PyMax's ``ExtraConfig(url=…)``."""
        return f"ws://{self.host}:{self.port}/websocket"

    def file_url(self, stored: StoredFile) -> str:
        """A fresh temporary download URL of ``stored``."""
        token = self.world.new_link(stored, self.config.link_lifetime_seconds)
        return f"{self.base_url}/files/{token}"

    def upload_url(self, slot: str) -> str:
        """The URL the client POSTs an upload's bytes to."""
        return f"{self.base_url}/uploads/{slot}"

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        peer = _Peer(ws, Connection(self, origin=request.headers.get("Origin")))
        self.peers.append(peer)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.BINARY:
                    await self._request(peer, msg.data)
                elif msg.type is WSMsgType.TEXT:
                    await self._request(peer, msg.data.encode())
        finally:
            with contextlib.suppress(ValueError):
                self.peers.remove(peer)
        return ws

    async def _request(self, peer: _Peer, data: bytes) -> None:
        try:
            frame = frames.decode(data)
        except frames.FrameError as exc:
            log.warning("fakemax web: unreadable frame: %s", exc)
            await peer.ws.close(code=1002, message=str(exc)[:120].encode())
            return
        if peer.closing:
            return
        if self.faults.drop_requests.get(frame.opcode, 0) > 0:
            self.faults.drop_requests[frame.opcode] -= 1
            peer.closing = True
            await self._close(peer, 1011)
            return
        try:
            cmd, answer = Cmd.RESPONSE, await peer.conn.handle(frame.opcode, frame.payload)
        except WebError as exc:
            cmd, answer = Cmd.ERROR, shapes.error(exc.code, exc.message)
            # A refused token ends the connection too, so that nothing else (a PING answer)
            # is in flight while PyMax tears down after the error: on Python 3.11 a reply
            # racing a cancel makes asyncio.wait_for swallow the cancel, and PyMax's close()
            # then waits out its 30 s ping sleep (CPython gh-86296, fixed in 3.12).
            peer.closing = exc.code == "FAIL_LOGIN_TOKEN" and frame.opcode == Op.LOGIN
        await self._send(peer, cmd, frame.seq, frame.opcode, answer)
        if peer.closing:
            await self._close(peer)

    async def _send(self, peer: _Peer, cmd: int, seq: int, opcode: int, payload: Any) -> None:
        body = frames.encode(
            cmd=cmd,
            seq=seq,
            opcode=opcode,
            payload=payload,
            compression=self.compression,
            min_bytes=self.config.compress_min_bytes,
        )
        async with peer.lock:
            if not peer.ws.closed:
                await peer.ws.send_bytes(body)

    # --- pushing events --------------------------------------------------------------------

    def _peers_of(self, account_id: int) -> list[_Peer]:
        return [p for p in self.peers if p.conn.account_id == account_id]

    async def push(self, account_id: int, opcode: int, payload: dict[str, Any]) -> int:
        """Send an event frame (cmd 0, as PyMax dispatches them) to every connection logged
        into ``account_id``; how many got it."""
        peers = self._peers_of(account_id)
        for peer in peers:
            await self._send(peer, Cmd.REQUEST, 0, opcode, payload)
        return len(peers)

    async def echo(self, origin: Connection, chat: Chat, message: Message) -> None:
        """A message the account sent reaches its other devices as NOTIF_MESSAGE."""
        for peer in self._peers_of(message.sender):
            if peer.conn is not origin:
                payload = shapes.message_event(message, chat, self.file_url)
                await self._send(peer, Cmd.REQUEST, 0, Op.NOTIF_MESSAGE, payload)

    def close_later(self, conn: Connection) -> None:
        """Close ``conn``'s socket once its current answer is out (LOGOUT)."""
        peer = next((p for p in self.peers if p.conn is conn), None)
        if peer is not None:
            self._spawn(self._close(peer))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self, peer: _Peer, code: int = 1000) -> None:
        async with peer.lock:
            await peer.ws.close(code=code)

    async def attach_ready(self, stored: StoredFile, account_id: int) -> None:
        """NOTIF_ATTACH after the processing delay: PyMax waits for it before MSG_SEND."""
        if self.config.attach_ready_seconds:
            await asyncio.sleep(self.config.attach_ready_seconds)
        stored.ready = True
        key = {"file": "fileId", "video": "videoId", "audio": "audioId"}.get(stored.kind)
        if key is not None:
            await self.push(account_id, Op.NOTIF_ATTACH, {key: stored.file_id})

    def attach_ready_later(self, stored: StoredFile, account_id: int) -> None:
        """``attach_ready`` in the background (the upload's HTTP answer goes first)."""
        self._spawn(self.attach_ready(stored, account_id))

    # --- control: what a test does ---------------------------------------------------------

    @property
    def account(self) -> Person:
        """The account clients log into (a scan authorises it unless told otherwise)."""
        return self.world.account

    def scan_qr(self, link: str | None = None, *, account_id: int | None = None) -> None:
        """The phone scans a QR link (the latest handed out when ``link`` is None)."""
        if link is None:
            if not self.shown_qr:
                raise LookupError("no QR link has been handed out yet")
            link = self.shown_qr[-1]
        qr = self.world.qr_by_link(link)
        if qr is None:
            raise LookupError(f"no QR login has the link {link!r}")
        qr.scanned_by = account_id if account_id is not None else self.account.user_id

    def require_password(
        self, password: str | None, *, hint: str | None = None, account_id: int | None = None
    ) -> None:
        """Give the account a 2FA password (None: remove it)."""
        person = self.world.people[account_id or self.account.user_id]
        person.password, person.hint = password, hint

    async def revoke(self, token: str | None = None, *, account_id: int | None = None) -> int:
        """MAX ends sessions: one token, or every session of the account. Their connections
        get a LOGOUT event and are closed; the token then answers FAIL_LOGIN_TOKEN. How many
        sessions ended."""
        wanted = account_id or self.account.user_id
        ended = [
            s
            for s in self.world.sessions.values()
            if not s.revoked and (s.token == token if token else s.account_id == wanted)
        ]
        for session in ended:
            session.revoked = True
        for peer in [p for p in self.peers if any(p.conn.session is s for s in ended)]:
            await self._send(peer, Cmd.REQUEST, 0, Op.LOGOUT, {})
            await self._close(peer)
        return len(ended)

    async def disconnect_all(self, code: int = 1001) -> int:
        """Close every client connection (sessions stay valid); how many."""
        peers = list(self.peers)
        for peer in peers:
            await self._close(peer, code)
        return len(peers)

    def add_user(
        self, first_name: str, last_name: str | None = None, *, phone: int | None = None
    ) -> Person:
        """Someone the account knows (in its contacts)."""
        person = self.world.add_person(first_name, last_name, phone=phone)
        self.account.contacts.add(person.user_id)
        return person

    async def user_sends(
        self,
        user_id: int,
        text: str = "",
        *,
        files: list[tuple[str, str, bytes]] | None = None,
        from_account: bool = False,
    ) -> Message:
        """``user_id`` writes to the account in their dialog (``from_account``: the account
        writes to ``user_id`` from its phone); ``files`` are ``(kind, name, bytes)``. The
        account's connections get NOTIF_MESSAGE."""
        if user_id not in self.world.people:
            raise LookupError(f"no user {user_id}")
        stored = [self.world.add_file(kind, name, data) for kind, name, data in files or []]
        account_id = self.account.user_id
        chat = self.world.dialog(account_id, user_id)
        sender = account_id if from_account else user_id
        message = self.world.add_message(chat, sender, text, stored)
        payload = shapes.message_event(message, chat, self.file_url)
        await self.push(account_id, Op.NOTIF_MESSAGE, payload)
        return message

    def _find(self, chat_id: int, message_id: int) -> tuple[Chat, Message]:
        message = self.world.message(chat_id, message_id)
        if message is None:
            raise LookupError(f"no message {message_id} in chat {chat_id}")
        return self.world.chats[chat_id], message

    async def edit_message(self, chat_id: int, message_id: int, text: str) -> Message:
        """The sender edits a message: NOTIF_MESSAGE with ``status: EDITED``."""
        chat, message = self._find(chat_id, message_id)
        message.text, message.edited = text, True
        payload = shapes.message_event(message, chat, self.file_url)
        await self.push(self.account.user_id, Op.NOTIF_MESSAGE, payload)
        return message

    async def delete_message(self, chat_id: int, message_id: int) -> None:
        """The sender deletes a message for everyone: NOTIF_MSG_DELETE."""
        chat, message = self._find(chat_id, message_id)
        message.removed = True
        payload = shapes.message_deleted(chat.chat_id, [message_id])
        await self.push(self.account.user_id, Op.NOTIF_MSG_DELETE, payload)

    async def user_reads(self, user_id: int, mark: int | None = None) -> int:
        """``user_id`` reads their dialog with the account up to ``mark`` (ms; default: now):
        NOTIF_MARK. Returns the mark."""
        chat = self.world.dialog(self.account.user_id, user_id)
        mark = mark if mark is not None else max((m.time for m in chat.messages), default=0)
        payload = shapes.read_mark(chat.chat_id, user_id, mark)
        await self.push(self.account.user_id, Op.NOTIF_MARK, payload)
        return mark

    def expire_links(self, file_id: int | None = None) -> int:
        """Every download URL handed out so far stops working (of one file, or all)."""
        return self.world.expire_links(file_id)

    def delete_file(self, file_id: int) -> None:
        """MAX loses a file for good."""
        self.world.delete_file(file_id)

    def sent_by_account(self, chat_id: int) -> list[Message]:
        """What the account wrote in a chat (through MSG_SEND or ``from_account``)."""
        chat = self.world.chats.get(chat_id)
        if chat is None:
            return []
        return [m for m in chat.messages if m.sender == self.account.user_id]
