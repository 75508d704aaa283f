"""The MAX user-account connector (kind ``maxuser``), gateway side: ``MaxUser`` implements the
messenger port by talking to the worker process that owns the PyMax clients (``worker.py``;
the channel is ``channel.py``). Nothing here imports PyMax, so maxgate runs without the
``max-user`` extra; only the worker needs it.

``run`` (a background worker of a serving process) starts the worker process, restarts it with
growing pauses when it dies, opens every live ``maxuser`` instance in it from its stored
session (made by this process, the CLI or another replica) and closes deleted ones. A watchdog
looks at the worker's health events: a worker silent for ``WORKER_SILENCE`` seconds is killed
(and restarted); an authorised account whose pings have gone unanswered for ``stuck_after``
seconds is marked stuck (``stuck()``, for ``/ready``) and rebooted.

Sending is paced per account on top of the outbox's ``delaySendMessagesMilliseconds``: at least
``send_interval`` seconds (``SEND_INTERVAL``) between two messages of one account, whatever the
instance's setting says — the operator's protection against a ban.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import importlib.util
import io
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import segno

from maxgate.domain.messenger import ChatInfo, Contact, InboundMessage, InboundSink
from maxgate.domain.records import FileRecord, Instance, Message
from maxgate.errors import StoreError, UpstreamError
from maxgate.store import maxuser as store
from maxgate.store import messages as message_rows
from maxgate.store.database import Database
from maxgate.upstream.maxuser.channel import HEARTBEAT, WorkerProcess

log = logging.getLogger(__name__)

WARNING = (
    "MAX's terms of use forbid scripts and clients it has not permitted, and accounts driven "
    "by unofficial clients have been banned: every maxuser account is used at its owner's risk"
)
"""Said in the log at start, by ``maxgate instance create --upstream maxuser`` and in
docs/max-user.md."""

CAPABILITIES = frozenset(
    {"sendMessage", "checkAccount", "qr", "logout", "reboot", "sendAuthorizationPassword"}
)
"""What a maxuser instance can do among the messenger methods today (text only; files,
contacts, phone lookups and groups later: docs/max-user.md)."""

DEFAULT_URL = "wss://api.oneme.ru/websocket"  # PyMax's own (ExtraConfig.url)
SEND_INTERVAL = 3.0  # seconds at least between two messages one account sends
SCAN_INTERVAL = 2.0  # seconds between looks for maxuser instances made or deleted elsewhere
STUCK_AFTER = 90.0  # seconds without an answered ping before an account is stuck
WORKER_SILENCE = 4 * HEARTBEAT  # seconds without a health event before the worker is killed
RESTART_PAUSES = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
HEALTHY_RUN = 60.0  # a worker that lived this long starts the pauses from the first again
LOGIN_TIMEOUT = 20.0  # seconds a `qr` call waits for the worker


def available() -> bool:
    """Whether PyMax (the ``max-user`` extra) is installed."""
    return importlib.util.find_spec("pymax") is not None


def qr_png(link: str) -> bytes:
    """The PNG of a QR code of ``link``."""
    png = io.BytesIO()
    segno.make(link, error="m").save(png, kind="png", scale=6, border=4)
    return png.getvalue()


@dataclasses.dataclass
class _Health:
    """What the worker last said about one account."""

    state: str = ""
    connected: bool = False
    last_pong: float = 0.0
    last_event: float = 0.0


class MaxUser:
    """The adapter of every ``maxuser`` instance of a server."""

    kind = store.KIND

    def __init__(
        self,
        db: Database,
        *,
        url: str = DEFAULT_URL,
        send_interval: float = SEND_INTERVAL,
        scan_interval: float = SCAN_INTERVAL,
        stuck_after: float = STUCK_AFTER,
        lock_path: Path | None = None,
    ) -> None:
        self.db = db
        self.url = url
        self.send_interval = send_interval
        self.scan_interval = scan_interval
        self.stuck_after = stuck_after
        # One process of a server runs the connector: two PyMax clients on one session would
        # fight over it (the others answer that the connector does not run there).
        self.lock_path = lock_path
        self._lock_fd: int | None = None
        self._sink: InboundSink | None = None
        self._worker: WorkerProcess | None = None
        self._opened: set[int] = set()
        self._states: dict[int, str] = {}
        self._health: dict[int, _Health] = {}
        self._heard = 0.0  # time.monotonic() of the worker's last health event
        self._stuck: dict[int, float] = {}  # instance id -> when it was found stuck
        self._next_send: dict[int, float] = {}
        self._send_locks: dict[int, asyncio.Lock] = {}
        self._rescan = asyncio.Event()
        self.restarts = 0  # worker processes started after the first

    def __repr__(self) -> str:
        return f"MaxUser(url={self.url!r}, accounts={len(self._opened)}, worker={self._worker})"

    @property
    def sink(self) -> InboundSink:
        if self._sink is None:
            raise UpstreamError("the MAX user connector was not started")
        return self._sink

    @property
    def worker_pid(self) -> int | None:
        """The worker process's id while one runs."""
        return self._worker.pid if self._worker is not None else None

    def capabilities(self) -> frozenset[str]:
        """What a user account can honour today (``CAPABILITIES``)."""
        return CAPABILITIES

    def stuck(self) -> dict[int, str]:
        """The instances whose session the watchdog found stuck, with why."""
        return {i: f"no answered ping for {self.stuck_after:g} s" for i in self._stuck}

    async def enroll(self, instance_id: int) -> None:
        """A new instance: no session yet (``notAuthorized`` until its QR is scanned)."""
        await store.save(self.db, instance_id, None)
        await self.sink.on_state(instance_id, "notAuthorized")
        self._rescan.set()

    async def start(self, sink: InboundSink) -> None:
        """Take the sink events go to. The worker process is ``run``'s, a background worker
        of a serving process (a CLI command that opens the runtime starts none)."""
        self._sink = sink

    async def stop(self) -> None:
        """Stop the worker process (``run`` stops it too when cancelled)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            await worker.close()

    # --- the worker process ------------------------------------------------------------------

    async def run(self) -> None:
        """Run the worker process while maxuser instances exist, restarted with growing pauses
        whenever it ends, until cancelled."""
        failures = 0
        warned = False
        try:
            while True:
                try:
                    live = await self._live()
                except StoreError:
                    log.exception("could not list the maxuser instances; retrying")
                    live = []
                if not live:
                    await self._pause(self.scan_interval)
                    continue
                if not available():
                    log.error(
                        "maxuser instances exist but PyMax is not installed: "
                        "pip install 'maxgate[max-user]'"
                    )
                    return
                if not self._own_lock():
                    await self._pause(self.scan_interval * 5)
                    continue
                if not warned:
                    log.warning("%s.", WARNING)
                    warned = True
                started = time.monotonic()
                try:
                    await self._run_worker()
                except OSError as exc:
                    log.error("could not start the maxuser worker: %s", exc)
                lived = time.monotonic() - started
                if lived >= HEALTHY_RUN:
                    failures = 0
                pause = RESTART_PAUSES[min(failures, len(RESTART_PAUSES) - 1)]
                failures += 1
                log.warning("maxuser worker ended after %.0f s; restarting in %g s", lived, pause)
                await asyncio.sleep(pause)
                self.restarts += 1
        finally:
            await self.stop()
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # closing it releases the lock
                self._lock_fd = None

    def _own_lock(self) -> bool:
        """Whether this process holds the connector's lock (taken now if free)."""
        if self.lock_path is None or self._lock_fd is not None:
            return True
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            log.info("another process of this server runs the maxuser connector")
            return False
        self._lock_fd = fd
        return True

    async def _run_worker(self) -> None:
        worker = WorkerProcess(self._event)
        self._opened.clear()
        self._health.clear()
        self._stuck.clear()
        await worker.start()
        self._worker = worker
        self._heard = time.monotonic()
        ended = asyncio.create_task(worker.wait())
        try:
            while not ended.done():
                try:
                    await self.sync()
                except StoreError:
                    log.exception("could not list the maxuser instances; retrying")
                except UpstreamError as exc:
                    log.warning("maxuser worker: %s", exc)
                await self._watch(worker)
                self._rescan.clear()
                wake = asyncio.create_task(self._rescan.wait())
                await asyncio.wait(
                    {ended, wake}, timeout=self.scan_interval, return_when="FIRST_COMPLETED"
                )
                wake.cancel()
        finally:
            if not ended.done():
                await worker.close()
            with contextlib.suppress(Exception):
                await ended
            if self._worker is worker:
                self._worker = None

    async def _pause(self, seconds: float) -> None:
        self._rescan.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._rescan.wait()

    async def _live(self) -> list[store.Account]:
        return await store.live(self.db)

    async def sync(self) -> None:
        """Open every live maxuser instance in the worker, and close deleted ones."""
        worker = self._worker
        if worker is None:
            return
        live = {account.instance_id: account for account in await self._live()}
        for instance_id in [i for i in self._opened if i not in live]:
            await worker.request("close", instance=instance_id)
            self._opened.discard(instance_id)
            self._states.pop(instance_id, None)
        for instance_id, account in live.items():
            if instance_id in self._opened:
                continue
            self._states.setdefault(instance_id, account.state)
            session = json.loads(account.session) if account.session else None
            await worker.request(
                "open",
                instance=instance_id,
                url=self.url,
                session=session,
                account_id=account.account_id,
            )
            self._opened.add(instance_id)

    async def _watch(self, worker: WorkerProcess) -> None:
        """The watchdog: a silent worker is killed; a stuck account rebooted."""
        now = time.monotonic()
        if now - self._heard > WORKER_SILENCE:
            log.error("maxuser worker silent for %.0f s; killing it", now - self._heard)
            worker.kill()
            return
        wall = time.time()
        for instance_id, health in self._health.items():
            stuck = (
                health.state == "authorized"
                and health.connected
                and wall - health.last_pong > self.stuck_after
            )
            if not stuck:
                self._stuck.pop(instance_id, None)
                continue
            found = self._stuck.get(instance_id)
            if found is None or wall - found > self.stuck_after:
                log.warning("instance %d: session stuck (no ping answered); rebooting", instance_id)
                self._stuck[instance_id] = wall
                with contextlib.suppress(UpstreamError):
                    await worker.request("reboot", instance=instance_id)

    async def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "health":
            self._heard = time.monotonic()
            for key, values in (event.get("accounts") or {}).items():
                self._health[int(key)] = _Health(**values)
            return
        instance_id = int(event["instance"])
        if kind == "state":
            state = str(event["state"])
            if self._states.get(instance_id) != state:
                self._states[instance_id] = state
                await self.sink.on_state(instance_id, state)
        elif kind == "session":
            session = event.get("session")
            account_id = event.get("account_id")
            await store.save(
                self.db,
                instance_id,
                json.dumps(session) if session else None,
                account_id=account_id if isinstance(account_id, int) else None,
            )
        elif kind == "message":
            await self.sink.on_message(InboundMessage(instance_id=instance_id, **event["message"]))
        else:
            log.debug("maxuser worker: event %s ignored", kind)

    async def _request(self, op: str, instance: Instance, **fields: Any) -> Any:
        worker = self._worker
        if worker is None or instance.id not in self._opened:
            raise UpstreamError(
                "the MAX user connector is not running for this instance yet "
                "(it runs in `maxgate serve`); try again shortly"
            )
        return await worker.request(op, instance=instance.id, **fields)

    # --- the messenger port ------------------------------------------------------------------

    async def state(self, instance: Instance) -> str:
        """The account's state as the worker last reported it (else as stored)."""
        return self._states.get(instance.id, instance.state)

    async def qr(self, instance: Instance) -> bytes | None:
        """The QR code of the login in progress (a new one is asked for when none is, or the
        last expired); None when the account is authorised."""
        if self._states.get(instance.id) == "authorized":
            return None
        answer = await self._request("login", instance, wait=LOGIN_TIMEOUT)
        if answer.get("authorized"):
            return None
        if answer.get("password"):
            raise UpstreamError(
                "the QR code was scanned; the account waits for its two-factor password "
                "(sendAuthorizationPassword)"
            )
        return qr_png(str(answer["link"]))

    async def send_password(self, instance: Instance, password: str) -> bool:
        """Answer the 2FA challenge of the login in progress."""
        return bool(await self._request("password", instance, password=password))

    async def reboot(self, instance: Instance) -> None:
        """Leave the connection and connect again from the session."""
        await self._request("reboot", instance)

    async def logout(self, instance: Instance) -> None:
        """End the session on MAX and forget it (notAuthorized until a new QR login)."""
        await self._request("logout", instance)

    async def send(
        self, instance: Instance, message: Message, body: AsyncIterator[bytes] | None
    ) -> str:
        """Send a text, paced per account; returns MAX's id of the message."""
        if message.file is not None:
            raise UpstreamError("a maxuser instance sends no files yet")
        quoted = None
        if message.quoted_id:
            row = await message_rows.by_key(
                self.db, instance.id, message.chat_id, message.quoted_id
            )
            found = getattr(row, "upstream_id", None) if row is not None else None
            quoted = str(found) if found else message.quoted_id
        lock = self._send_locks.setdefault(instance.id, asyncio.Lock())
        async with lock:
            wait = self._next_send.get(instance.id, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                sent = await self._request(
                    "send",
                    instance,
                    chat_id=message.chat_id,
                    text=message.text or "",
                    quoted=quoted,
                )
            finally:
                self._next_send[instance.id] = time.monotonic() + self.send_interval
        return str(sent)

    def fetch_file(self, instance_id: int, file: FileRecord) -> AsyncIterator[bytes]:
        return self._no_files()

    async def _no_files(self) -> AsyncIterator[bytes]:
        raise UpstreamError("a maxuser instance receives no files yet")
        yield b""  # pragma: no cover - makes this an async generator

    # Not there yet: refused before a handler runs (capabilities); these answer a caller that
    # asks anyway.
    async def resolve_phone(self, instance: Instance, phone: int) -> str | None:
        """The chatId (MAX user id) of the account with that phone number, or None."""
        found = await self._request("phone", instance, phone=phone)
        return str(found) if found is not None else None

    async def check_account(self, phone: int) -> str | None:
        raise UpstreamError("a maxuser lookup needs its instance (resolve_phone)")

    async def contacts(self, instance: Instance) -> list[Contact]:
        raise UpstreamError("a maxuser instance does not list contacts yet")

    async def chats(self, instance: Instance) -> list[ChatInfo]:
        raise UpstreamError("a maxuser instance does not list chats yet")

    async def history(self, instance: Instance, chat_id: str, since: int) -> list[InboundMessage]:
        raise UpstreamError("a maxuser instance does not read history back yet")
