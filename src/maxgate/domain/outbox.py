"""The outgoing queue: a durable outbox table drained by a worker, paced per instance.

Claiming happens in one write transaction that holds the instance's row (``FOR UPDATE`` on
PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises all writers): an entry is claimed only when
the instance has no entry ``sending`` under a live lease and its ``next_send_at`` has come, and
the claim moves ``next_send_at`` on by ``delaySendMessagesMilliseconds``. So however many server
processes drain one database, an instance's messages leave one at a time, in order, and paced.

A claim is a lease. It records its ``owner`` — ``host/scope/pid/token``: the host name, a hash
of the host, its boot and its PID namespace (the processes whose PIDs this one can check), the
process id and a token of the ``Outbox`` (one per process in a server; tests run several) — and
``lease_until``, ``LEASE`` seconds ahead, which the sender renews every ``LEASE / 3`` while the
hand-over runs, however long a file takes. A ``sending`` entry blocks its instance only while
its lease is live and its owner may be alive. Otherwise the next claim of the instance takes it
over, before anything queued after it (it is the oldest in flight, so order is kept), and sends
it again. A crash is thus noticed:

* at once when the owner is a process of the same scope that no longer runs (``os.kill(pid,
  0)`` fails; a zombie counts as gone): ``recover()`` at start hands such entries back to the
  queue, and a claim or dispatch pass that meets one takes it over;
* within ``LEASE`` seconds otherwise: another machine's process, or a PID that is alive again
  because another program reuses it (safe: we only wait for the lease).

A graceful ``close()`` hands its own entries back at once. Entries of a process that lost its
lease (stalled for longer than ``LEASE``) are taken over; when that process wakes its renewal
finds the entry no longer its own, it logs a warning and finishes its hand-over, and its retry
never resets an entry another process holds. Leases compare wall clocks of the processes, so
machines sharing a database need synchronised clocks (skew well under ``LEASE * 2/3``). An entry
claimed before leases existed (no ``lease_until``) counts as expired.

Delivery is at-least-once: an entry is handed over again only when its previous hand-over never
finished (crash, cancelled send, lost lease), and the messenger side drops a repeated idMessage.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

from maxgate.domain.drains import Drains
from maxgate.domain.files import Files
from maxgate.domain.instances import Instances
from maxgate.domain.journal import Journal
from maxgate.domain.messenger import Upstream
from maxgate.domain.records import Message
from maxgate.errors import MaxgateError
from maxgate.store import instances as instance_rows
from maxgate.store import outbox as rows
from maxgate.store.database import Database, Row

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
LEASE = 15.0  # seconds a claim lives unless renewed; renewed every LEASE / 3 while sending

# The owners of the Outboxes open in this process: an owner naming this process's PID but not
# listed here is an earlier process that had the same PID (a container restarted, say).
_live_owners: set[str] = set()


@functools.cache
def _scope() -> str:
    """Which processes' PIDs this process can check: its host, boot and PID namespace."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip())
    with contextlib.suppress(OSError):
        parts.append(os.readlink("/proc/self/ns/pid"))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def _new_owner() -> str:
    host = socket.gethostname().replace("/", "_")[:64]
    return f"{host}/{_scope()}/{os.getpid()}/{secrets.token_hex(8)}"


def owner_is_gone(owner: str | None) -> bool:
    """Whether ``owner`` is a process this one can check (same scope) that no longer runs.

    False whenever that is not certain — another host's or namespace's process, a PID that is
    alive (perhaps reused by another program), a malformed owner: such claims wait for their
    lease to run out.
    """
    if owner is None:
        return False
    try:
        _host, scope, pid_text, _token = owner.rsplit("/", 3)
        pid = int(pid_text)
    except ValueError:
        return False
    if scope != _scope() or pid <= 0:
        return False
    if pid == os.getpid():
        return owner not in _live_owners
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it runs, as another user
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A process that has exited but was not reaped yet (Linux; False where unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[:1]  # the name, in parentheses, may hold spaces
    return state in (["Z"], ["X"])


class Outbox:
    """Drains the outbox table into the upstream."""

    def __init__(
        self,
        db: Database,
        instances: Instances,
        journal: Journal,
        files: Files,
        upstream: Upstream,
    ) -> None:
        self.db = db
        self.instances = instances
        self.journal = journal
        self.files = files
        self.upstream = upstream
        self._drains = Drains("sending")
        self._owner: str | None = None
        self._owner_pid = 0

    @property
    def owner(self) -> str:
        """Who this outbox's claims belong to (``host/scope/pid/token``); new after a fork."""
        if self._owner is None or self._owner_pid != os.getpid():
            self._owner = _new_owner()
            self._owner_pid = os.getpid()
        _live_owners.add(self._owner)
        return self._owner

    def notify(self) -> None:
        """Something was queued: look at the outbox now instead of at the next tick."""
        self._drains.wake.set()

    async def recover(self) -> int:
        """At start: hand back to the queue, at once, the entries whose owner is a process of
        this host that no longer runs. Entries of other hosts wait for their lease to run out
        (then a claim takes them over). Returns how many were handed back."""
        gone = [owner for owner in await rows.sending_owners(self.db) if owner_is_gone(owner)]
        released = 0
        for owner in gone:
            released += await self._release(owner)
        if released:
            log.warning("%s outgoing message(s) of stopped processes back in the queue", released)
        return released

    async def _release(self, owner: str) -> int:
        """Return ``owner``'s claims to the queue (still theirs: a takeover is not undone)."""
        return await rows.release(self.db, owner)

    async def run(self, *, tick: float = 1.0) -> None:
        """Work forever: hand ready entries to the upstream, one task per instance."""
        await self._drains.run(self.dispatch, tick=tick)

    async def dispatch(self) -> float:
        """Start a send task for every instance with a ready entry; returns seconds to wait."""
        now = time.time()
        wait = 1.0
        # lease_until and owner: of the entry in flight (its lease 0 when it has none), or None
        for instance_id, not_before, next_send_at, lease_until, owner in await rows.queues(self.db):
            if self._drains.busy(instance_id):
                continue
            if lease_until is not None and lease_until > now and not owner_is_gone(owner):
                wait = min(wait, lease_until - now)  # a live sender holds the instance
                continue
            due = next_send_at or 0.0
            if lease_until is None:  # nothing in flight: the head entry's own time counts
                due = max(due, not_before)
            if due > now:
                wait = min(wait, due - now)
                continue
            self._drains.start(instance_id, self._drain)
        return max(wait, 0.01)

    async def _drain(self, instance_id: int) -> None:
        while (entry := await self._claim(instance_id)) is not None:
            await self._send(entry)

    async def _claim(self, instance_id: int) -> Row | None:
        """Claim the instance's next entry if its turn has come; None otherwise.

        The next entry is the one in flight when its sender is gone or its lease ran out (it is
        taken over and sent again), else the oldest pending one that is due.
        """
        me = self.owner
        now = time.time()
        async with self.db.write() as conn:
            instance = await instance_rows.lock_pacing(conn, instance_id)
            if instance is None or instance.next_send_at > now:
                return None
            in_flight = await rows.in_flight(conn, instance_id)
            if in_flight is not None:
                if (in_flight.lease_until or 0.0) > now and not owner_is_gone(in_flight.owner):
                    return None  # order: the previous message is still being handed over
                row = in_flight  # taken over, only if still as read (rows.claim)
            else:
                row = await rows.next_due(conn, instance_id, now)
                if row is None:
                    return None
            if not await rows.claim(conn, row, owner=me, now=now, lease_until=now + LEASE):
                return None  # its owner renewed it after all
            if in_flight is not None:
                log.warning(
                    "outgoing message entry %s of instance %s: its sender %s is gone or its "
                    "lease ran out; sending it again",
                    row.id,
                    instance_id,
                    row.owner,
                )
            delay = int(json.loads(instance.settings).get("delaySendMessagesMilliseconds", 500))
            await instance_rows.set_next_send_at(conn, instance_id, now + delay / 1000)
            return row

    async def _send(self, entry: Row) -> None:
        owner = self.owner
        message = await self.journal.get_by_pk(entry.message_id)
        instance = await self.instances.get(entry.instance_id)
        if message is None or instance is None or instance.deleted:
            if message is not None:
                await self.journal.fail(message, "the instance was deleted")
            await self._finish(entry.id)
            return
        try:
            async with self._leased(entry.id, owner):
                body = await self.files.open(message.file) if message.file else None
                upstream_id = await self.upstream.send(instance, message, body)
        except MaxgateError as exc:
            await self._retry_or_fail(entry, message, str(exc), owner)
            return
        await self.journal.set_upstream_id(message, upstream_id)
        await self.journal.on_status(instance.id, message.chat_id, message.id_message, "sent")
        await self._finish(entry.id)

    @contextlib.asynccontextmanager
    async def _leased(self, entry_id: int, owner: str) -> AsyncIterator[None]:
        """Keep the entry's lease alive for the duration of the block."""
        renewal = asyncio.create_task(self._renew(entry_id, owner), name="maxgate-outbox-lease")
        try:
            yield
        finally:
            renewal.cancel()
            await asyncio.wait([renewal])  # no renewal after the entry is settled

    async def _renew(self, entry_id: int, owner: str) -> None:
        while True:
            await asyncio.sleep(LEASE / 3)
            try:
                renewed = await rows.renew(self.db, entry_id, owner, time.time() + LEASE)
            except MaxgateError:
                log.warning("renewing the lease of outbox entry %s failed", entry_id, exc_info=True)
                continue
            if not renewed:
                log.warning(
                    "outbox entry %s is no longer ours (its lease ran out and another process "
                    "took it over): finishing this hand-over anyway; the messenger drops the "
                    "repeated idMessage",
                    entry_id,
                )
                return

    async def _retry_or_fail(self, entry: Row, message: Message, reason: str, owner: str) -> None:
        if entry.attempts + 1 >= MAX_ATTEMPTS:
            log.warning("giving up on message %s: %s", message.id_message, reason)
            await self.journal.fail(message, reason)
            await self._finish(entry.id)
            return
        backoff = min(60.0, 2.0 ** (entry.attempts + 1))
        await rows.retry_later(self.db, entry.id, owner, time.time() + backoff)

    async def _finish(self, entry_id: int) -> None:
        await rows.finish(self.db, entry_id)

    async def pending(self, instance_id: int) -> list[Message]:
        """Messages of an instance still waiting for the messenger, oldest first."""
        message_ids = await rows.pending_message_ids(self.db, instance_id)
        found = [await self.journal.get_by_pk(pk) for pk in message_ids]
        return [m for m in found if m is not None]

    async def count(self, instance_id: int) -> int:
        """How many messages of an instance wait for the messenger."""
        return await rows.count_pending(self.db, instance_id)

    async def clear(self, instance_id: int) -> int:
        """Drop an instance's waiting messages (they become ``failed``, with notifications)."""
        instance = await self.instances.get(instance_id)
        if instance is None:
            return 0
        async with self.db.write() as conn:
            waiting = await rows.waiting_messages(conn, instance_id)
            if not waiting:
                return 0
            await rows.drop_pending(conn, instance_id)
            await self.journal.fail_many(conn, instance, waiting, "cleared from the queue")
        if self.journal.notifications is not None:
            self.journal.notifications.wake(instance_id)
        return len(waiting)

    async def close(self) -> None:
        """Cancel the sends in flight and hand their entries back to the queue at once (a
        restart, or another process, sends them again without waiting for their lease)."""
        await self._drains.close()
        owner = self._owner
        if owner is None or self._owner_pid != os.getpid():
            return
        _live_owners.discard(owner)
        try:
            await self._release(owner)
        except MaxgateError:
            log.warning(
                "could not return the outgoing messages in flight to the queue; they are sent "
                "again when their lease runs out",
                exc_info=True,
            )
