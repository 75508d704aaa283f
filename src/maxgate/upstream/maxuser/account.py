"""One MAX account inside the worker process: its PyMax ``WebClient``, login and connection.

maxgate owns the policy PyMax would otherwise apply by itself: the client is always made with
``telemetry=False``, ``reconnect=False`` and ``relogin=False``; a dropped connection is made
again here with backoff from the stored session; a session MAX revoked (``LOGOUT`` pushed, or
``FAIL_LOGIN_TOKEN`` at login) is dropped and the account waits in ``notAuthorized`` until the
operator asks for a QR code again — it never logs in again by itself.

Every PyMax ``connect()`` and ``close()`` is bounded: on Python 3.11 ``close()`` can wait out
PyMax's 30-second ping sleep when a reply races a cancel (CPython gh-86296, see
``maxgate/fakemax/web/server.py``), so a close that does not finish in ``CLOSE_TIMEOUT`` is left
to end in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pymax import ExtraConfig, QrAuthFlow, WebClient
from pymax.exceptions import ApiError
from pymax.protocol import InboundFrame
from pymax.protocol.enums import Opcode
from pymax.session.models import SessionInfo
from pymax.types.domain.message import Message

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 30.0  # seconds a connect with a stored session may take (handshake + login)
QR_LOGIN_TIMEOUT = 600.0  # seconds a QR login may take in all (each QR expires sooner)
CLOSE_TIMEOUT = 5.0  # seconds a close may take before it is left to finish on its own
QR_WAIT = 10.0  # seconds a `login` request waits for MAX to hand out a QR link
PROBE_INTERVAL = 30.0  # seconds between the watchdog's pings of a connected account
PROBE_TIMEOUT = 10.0
PASSWORD_ATTEMPTS = 3
LOGIN_ATTEMPTS = 5  # QR logins an account may start within LOGIN_WINDOW seconds
LOGIN_WINDOW = 600.0
RECONNECT_PAUSES = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
SENT_MEMORY = 1000  # ids of messages sent through the API, not reported again as from the phone

Emit = Callable[[dict[str, Any]], Awaitable[None]]


class LoginError(Exception):
    """A request about a login that cannot be honoured now (a sentence for the operator)."""


class _Store:
    """PyMax's ``StoreProtocol`` for one account: the session in memory here, every change
    reported to the gateway, which keeps it in maxgate's database."""

    def __init__(self, account: Account, session: SessionInfo | None) -> None:
        self.account = account
        self.session = session

    def __repr__(self) -> str:
        return f"<maxuser session store of instance {self.account.instance_id}>"

    async def _changed(self) -> None:
        await self.account.report_session(self.session)

    async def save_session(self, session_info: SessionInfo) -> None:
        self.session = session_info
        await self._changed()
        if self.account.state == "notAuthorized":  # a QR login went through: logging in now
            await self.account.set_state("starting")

    async def update_token(self, old_token: str, new_token: str, /) -> None:
        if self.session is not None and self.session.token == old_token:
            self.session = self.session.model_copy(update={"token": new_token})
            await self._changed()

    async def load_session(self) -> SessionInfo | None:
        return self.session

    async def load_session_by_device_id(self, device_id: str) -> SessionInfo | None:
        return self.session if self.session and self.session.device_id == device_id else None

    async def load_session_by_phone(self, phone: str) -> SessionInfo | None:
        return self.session if self.session and self.session.phone == phone else None

    async def delete_session(self, token: str, /) -> None:
        if self.session is not None and self.session.token == token:
            self.session = None
            await self._changed()

    async def close(self) -> None:
        return None


class _Qr:
    """PyMax's ``QrHandler``: keeps the link MAX handed out, for the gateway's ``qr``."""

    def __init__(self, account: Account) -> None:
        self.account = account

    async def show_qr(self, qr_url: str) -> None:
        self.account.qr_link = qr_url
        self.account.qr_shown.set()


class _Passwords:
    """PyMax's ``PasswordProvider``: waits for the operator's answer (``send_password``)."""

    def __init__(self, account: Account) -> None:
        self.account = account

    async def get_password(self, hint: str | None = None) -> str:
        account = self.account
        if account.password_answer is not None and not account.password_answer.done():
            account.password_answer.set_result(False)  # the previous answer was refused
        account.password_wanted = asyncio.get_running_loop().create_future()
        account.password_hint = hint
        account.password_asked.set()
        return await account.password_wanted


def _name(user: Any) -> str:
    names = getattr(user, "names", None) or []
    if not names:
        return ""
    first = names[0]
    full = first.name or " ".join(p for p in (first.first_name, first.last_name) if p)
    return str(full or "")


class Account:
    """One ``maxuser`` instance's MAX account, run by ``run`` until cancelled."""

    def __init__(self, instance_id: int, url: str, session: SessionInfo | None, emit: Emit) -> None:
        self.instance_id = instance_id
        self.url = url
        self.emit = emit
        self.store = _Store(self, session)
        self.state = ""
        self.client: WebClient | None = None
        self.account_id: int | None = None
        self.qr_link: str | None = None
        self.qr_shown = asyncio.Event()
        self.login_wanted = asyncio.Event()
        self.logging_in = False  # a QR login runs now
        self.login_attempts: list[float] = []  # time.monotonic() of each QR login started
        self.password_wanted: asyncio.Future[str] | None = None
        self.password_answer: asyncio.Future[bool] | None = None
        self.password_hint: str | None = None
        self.password_asked = asyncio.Event()
        self.revoked = False
        self.wake = asyncio.Event()  # reboot, logout: leave the current connection now
        self.logging_out = False
        self.last_pong = 0.0  # time.time() of the last answered ping (0: none yet)
        self.last_event = 0.0  # time.time() of the last frame MAX pushed
        self.sent: list[int] = []  # ids of messages sent through the API, newest last
        self.task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<maxuser account of instance {self.instance_id} {self.state}>"

    # --- reporting ---------------------------------------------------------------------------

    async def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            await self.emit({"event": "state", "instance": self.instance_id, "state": state})

    async def report_session(self, session: SessionInfo | None) -> None:
        body = session.model_dump(mode="json") if session is not None else None
        await self.emit(
            {
                "event": "session",
                "instance": self.instance_id,
                "session": body,
                "account_id": self.account_id,
            }
        )

    def health(self) -> dict[str, Any]:
        """What the gateway's watchdog looks at."""
        connected = self.client is not None and self.client.is_connected
        return {
            "state": self.state,
            "connected": connected,
            "last_pong": self.last_pong,
            "last_event": self.last_event,
        }

    # --- the account's life ------------------------------------------------------------------

    async def run(self) -> None:
        failures = 0
        while True:
            self.revoked = False
            if self.store.session is None:
                await self.set_state("notAuthorized")
                await self.login_wanted.wait()
                self.login_wanted.clear()
                self.logging_in = True
                timeout = QR_LOGIN_TIMEOUT
            else:
                await self.set_state("starting")
                timeout = CONNECT_TIMEOUT
            client = self._client()
            try:
                async with asyncio.timeout(timeout):
                    await client.connect()
                if not client.is_connected or client.me is None:
                    raise ConnectionError("MAX closed the connection during login")
            except Exception as exc:  # whatever PyMax raises, the account lives on
                await self._close(client)
                code = exc.error if isinstance(exc, ApiError) else None
                if code in ("FAIL_LOGIN_TOKEN", "FAIL_LOGOUT_ALL"):
                    log.warning("instance %d: MAX refused the session", self.instance_id)
                    await self._drop_session()
                    continue
                if self.store.session is None:
                    # PyMax's "QR authentication expired", a refused 2FA, a lost socket.
                    log.info("instance %d: QR login ended: %r", self.instance_id, exc)
                    self._login_over()
                    continue
                failures = await self._failed(failures, f"{type(exc).__name__}: {exc}")
                continue
            failures = 0
            self._login_over()
            me = client.me
            if me is not None:
                self.account_id = me.contact.id
                await self.report_session(self.store.session)
            self.last_pong = time.time()
            await self.set_state("authorized")
            await self._connected(client)
            await self._close(client)
            if self.logging_out:
                self.logging_out = False
                await self._drop_session()
            elif self.revoked:
                log.warning("instance %d: MAX ended the session (logged out)", self.instance_id)
                await self._drop_session()

    async def _failed(self, failures: int, why: str) -> int:
        pause = RECONNECT_PAUSES[min(failures, len(RECONNECT_PAUSES) - 1)]
        log.warning("instance %d: %s; connecting again in %g s", self.instance_id, why, pause)
        await self.set_state("starting")
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(pause):
                await self.wake.wait()
        return failures + 1

    def _login_over(self) -> None:
        self.logging_in = False
        self.qr_link = None
        self.qr_shown.clear()
        self.password_asked.clear()
        if self.password_answer is not None and not self.password_answer.done():
            self.password_answer.set_result(self.store.session is not None)
        self.password_wanted = self.password_answer = None

    async def _drop_session(self) -> None:
        if self.store.session is not None:
            self.store.session = None
            await self.report_session(None)

    def _client(self) -> WebClient:
        config = ExtraConfig(
            url=self.url,
            telemetry=False,
            reconnect=False,
            relogin=False,
            store=self.store,
            persist_session=True,
            request_timeout=PROBE_TIMEOUT,
            password_max_attempts=PASSWORD_ATTEMPTS,
            log_level="WARNING",  # PyMax logs whole frames (tokens) at DEBUG
        )
        flow = QrAuthFlow(_Qr(self), _Passwords(self))
        client = WebClient(extra_config=config, auth_flow=flow)

        @client.on_raw()
        async def seen(frame: InboundFrame, _: WebClient) -> None:
            self.last_event = time.time()
            if frame.opcode == Opcode.LOGOUT:
                self.revoked = True

        @client.on_message()
        async def received(message: Message, _: WebClient) -> None:
            await self._received(message)

        self.client = client
        return client

    async def _connected(self, client: WebClient) -> None:
        """Wait while the connection lasts (or until woken), pinging it for the watchdog."""
        self.wake.clear()
        next_probe = time.monotonic() + PROBE_INTERVAL
        while client.is_connected and not self.wake.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await self.wake.wait()
            if time.monotonic() >= next_probe and client.is_connected:
                next_probe = time.monotonic() + PROBE_INTERVAL
                await self._probe(client)

    async def _probe(self, client: WebClient) -> None:
        # PyMax has no public ping; its own loop pings every 30 s but tells nobody when it
        # last succeeded, so the watchdog's ping goes through the same invoke.
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await client._app.invoke(Opcode.PING, {"interactive": False})
            self.last_pong = time.time()
        except (ApiError, ConnectionError, OSError, TimeoutError, RuntimeError) as exc:
            log.warning("instance %d: ping failed: %s", self.instance_id, exc)

    async def _close(self, client: WebClient) -> None:
        closing = asyncio.create_task(client.close(), name=f"maxuser-close-{self.instance_id}")
        done, _ = await asyncio.wait({closing}, timeout=CLOSE_TIMEOUT)
        if not done:
            log.warning("instance %d: PyMax's close() hangs; left to end", self.instance_id)
        elif not closing.cancelled() and closing.exception() is not None:
            log.warning("instance %d: close failed: %s", self.instance_id, closing.exception())
        if self.client is client:
            self.client = None

    async def close(self) -> None:
        """Stop running the account (its session stays valid)."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.client is not None:
            await self._close(self.client)

    # --- what the gateway asks ---------------------------------------------------------------

    async def login(self) -> dict[str, Any]:
        """The QR link of the login in progress (one is started when none is), or
        ``{"authorized": true}``."""
        if self.state == "authorized":
            return {"authorized": True}
        if self.store.session is not None:
            raise LoginError("the account is connecting with its session; try again shortly")
        if self.password_asked.is_set():
            return {"password": True, "hint": self.password_hint}
        if not self.logging_in and not self.login_wanted.is_set():
            self._count_attempt()
        self.login_wanted.set()
        try:
            async with asyncio.timeout(QR_WAIT):
                await self.qr_shown.wait()
        except TimeoutError:
            raise LoginError("MAX did not hand out a QR code in time") from None
        if self.qr_link is None:
            raise LoginError("the QR login ended; ask again")
        return {"link": self.qr_link}

    def _count_attempt(self) -> None:
        now = time.monotonic()
        self.login_attempts = [t for t in self.login_attempts if now - t < LOGIN_WINDOW]
        if len(self.login_attempts) >= LOGIN_ATTEMPTS:
            wait = LOGIN_WINDOW - (now - self.login_attempts[0])
            raise LoginError(
                f"too many login attempts: {LOGIN_ATTEMPTS} QR codes in {LOGIN_WINDOW / 60:g} "
                f"minutes; try again in {wait:.0f} s"
            )
        self.login_attempts.append(now)

    async def send_password(self, password: str) -> bool:
        """Answer the 2FA challenge of the login in progress: whether MAX took it."""
        wanted = self.password_wanted
        if wanted is None or wanted.done():
            raise LoginError("no login is waiting for a password; scan a QR code first")
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.password_answer = answer
        self.password_asked.clear()
        wanted.set_result(password)
        async with asyncio.timeout(CONNECT_TIMEOUT):
            return await answer

    async def reboot(self) -> None:
        """Leave the connection and connect again from the session."""
        self.wake.set()

    async def logout(self) -> None:
        """End the session on MAX and forget it: notAuthorized until a new QR login."""
        client = self.client
        if client is not None and client.is_connected and self.state == "authorized":
            try:
                async with asyncio.timeout(PROBE_TIMEOUT):
                    await client.logout()
            except (ApiError, ConnectionError, OSError, TimeoutError) as exc:
                log.warning("instance %d: logout on MAX failed: %s", self.instance_id, exc)
            self.logging_out = True
            self.wake.set()
        else:
            await self._drop_session()
            self.wake.set()

    async def send_text(self, chat_id: str, text: str, quoted: str | None) -> str:
        """Send a text to a v3 chatId (a person's MAX user id, or a group's negative id);
        MAX's id of the message."""
        client = self.client
        if client is None or not client.is_connected or self.state != "authorized":
            raise LoginError(f"the account is not connected (state {self.state or 'unknown'})")
        target = int(chat_id)
        if target > 0 and self.account_id is not None:
            target = client.get_chat_id(self.account_id, target)  # a dialog: XOR of the two
        reply_to = int(quoted) if quoted and quoted.isdigit() else None
        sent = await client.send_message(target, text, reply_to=reply_to)
        self.sent.append(sent.id)
        del self.sent[:-SENT_MEMORY]
        return str(sent.id)

    async def find_phone(self, phone: int) -> str | None:
        """The chatId (MAX user id) of the account with that phone number, or None."""
        client = self.client
        if client is None or not client.is_connected or self.state != "authorized":
            raise LoginError(f"the account is not connected (state {self.state or 'unknown'})")
        try:
            found = await client.search_by_phone(f"+{phone}")
        except ApiError as exc:
            # The fake's code is "not.found"; what MAX itself answers is not documented, so
            # only codes naming "not found" mean "no such account" — anything else is an error.
            code = exc.error or ""
            if "not.found" in code or "not_found" in code:
                return None
            raise LoginError(f"MAX refused the lookup: {exc.error}") from exc
        return str(found.id)

    # --- what MAX pushes ---------------------------------------------------------------------

    async def _received(self, message: Message) -> None:
        if message.id in self.sent:
            return  # sent through the API: journaled already
        me = self.account_id
        raw_chat = message.chat_id
        if raw_chat is None:
            return
        from_me = me is not None and message.sender == me
        if raw_chat >= 0 and me is not None:
            chat_id, chat_type = str(raw_chat ^ me), "user"
        else:
            chat_id, chat_type = str(raw_chat), "group"
        if not message.text:
            log.info("instance %d: a message without text is not journaled yet", self.instance_id)
            return
        sender_name, sender_phone = "", 0
        client = self.client
        if client is not None and message.sender is not None:
            user = client.get_cached_user(message.sender)
            if user is None and not from_me:
                with contextlib.suppress(ApiError, ConnectionError, OSError, TimeoutError):
                    user = await client.get_user(message.sender)
            sender_name = _name(user)
            phone = getattr(user, "phone", None)
            sender_phone = phone if isinstance(phone, int) else 0
        await self.emit(
            {
                "event": "message",
                "instance": self.instance_id,
                "message": {
                    "chat_id": chat_id,
                    "chat_type": chat_type,
                    "chat_name": sender_name if chat_type == "user" and not from_me else "",
                    "sender_id": str(message.sender or ""),
                    "sender_name": sender_name,
                    "sender_phone": sender_phone,
                    "id_message": str(message.id),
                    "timestamp": message.time // 1000,
                    "type_message": "textMessage",
                    "text": message.text,
                    "from_me": from_me,
                    "upstream_id": str(message.id),
                },
            }
        )
