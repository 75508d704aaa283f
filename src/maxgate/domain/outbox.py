"""The outgoing queue: a durable outbox table drained by a worker, paced per instance.

Claiming happens in one write transaction that holds the instance's row (``FOR UPDATE`` on
PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises all writers): an entry is claimed only when
the instance has no entry ``sending`` and its ``next_send_at`` has come, and the claim moves
``next_send_at`` on by ``delaySendMessagesMilliseconds``. So however many server processes drain
one database, an instance's messages leave one at a time, in order, and paced. Entries a crash
left ``sending`` go back to ``pending`` once their claim is older than ``STALE_CLAIM`` (and on
start); delivery is at-least-once, and the messenger side drops a repeated idMessage.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import sqlalchemy as sa

from maxgate.domain.drains import Drains
from maxgate.domain.files import Files
from maxgate.domain.instances import Instances
from maxgate.domain.journal import Journal
from maxgate.domain.records import Message
from maxgate.errors import MaxgateError
from maxgate.store import tables as t
from maxgate.store.database import Database
from maxgate.upstream.base import Upstream

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
STALE_CLAIM = 600.0  # a send in flight longer than this is presumed dead (crashed process)


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

    def notify(self) -> None:
        """Something was queued: look at the outbox now instead of at the next tick."""
        self._drains.wake.set()

    async def recover(self, *, older_than: float = STALE_CLAIM) -> None:
        """Return entries a crash left half-sent (claimed over ``older_than`` ago) to the queue."""
        cutoff = time.time() - older_than
        async with self.db.write() as conn:
            await conn.execute(
                t.outbox.update()
                .where(
                    t.outbox.c.state == "sending",
                    sa.or_(t.outbox.c.claimed_at.is_(None), t.outbox.c.claimed_at <= cutoff),
                )
                .values(state="pending")
            )

    async def run(self, *, tick: float = 1.0) -> None:
        """Work forever: hand ready entries to the upstream, one task per instance."""
        await self._drains.run(self.dispatch, tick=tick)

    async def dispatch(self) -> float:
        """Start a send task for every instance with a ready entry; returns seconds to wait."""
        now = time.time()
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(
                        t.outbox.c.instance_id,
                        sa.func.min(t.outbox.c.not_before),
                        sa.func.max(t.instances.c.next_send_at),
                    )
                    .select_from(
                        t.outbox.join(t.instances, t.instances.c.id == t.outbox.c.instance_id)
                    )
                    .where(t.outbox.c.state == "pending")
                    .group_by(t.outbox.c.instance_id)
                )
            ).all()
        wait = 1.0
        for instance_id, not_before, next_send_at in rows:
            if self._drains.busy(instance_id):
                continue
            due = max(not_before, next_send_at or 0.0)
            if due > now:
                wait = min(wait, due - now)
                continue
            self._drains.start(instance_id, self._drain)
        return max(wait, 0.01)

    async def _drain(self, instance_id: int) -> None:
        while (entry := await self._claim(instance_id)) is not None:
            await self._send(entry)

    async def _claim(self, instance_id: int) -> Any:
        """Claim the instance's next entry if its turn has come; None otherwise."""
        now = time.time()
        async with self.db.write() as conn:
            lock = sa.select(t.instances.c.next_send_at, t.instances.c.settings).where(
                t.instances.c.id == instance_id
            )
            if self.db.dialect == "postgresql":
                lock = lock.with_for_update()
            owner = (await conn.execute(lock)).first()
            if owner is None or owner.next_send_at > now:
                return None
            in_flight = (
                await conn.execute(
                    sa.select(t.outbox.c.id)
                    .where(t.outbox.c.instance_id == instance_id, t.outbox.c.state == "sending")
                    .limit(1)
                )
            ).first()
            if in_flight is not None:
                return None  # order: the previous message is still being handed over
            row = (
                await conn.execute(
                    sa.select(t.outbox)
                    .where(
                        t.outbox.c.instance_id == instance_id,
                        t.outbox.c.state == "pending",
                        t.outbox.c.not_before <= now,
                    )
                    .order_by(t.outbox.c.id)
                    .limit(1)
                )
            ).first()
            if row is None:
                return None
            await conn.execute(
                t.outbox.update()
                .where(t.outbox.c.id == row.id)
                .values(state="sending", attempts=row.attempts + 1, claimed_at=now)
            )
            delay = int(json.loads(owner.settings).get("delaySendMessagesMilliseconds", 500))
            await conn.execute(
                t.instances.update()
                .where(t.instances.c.id == instance_id)
                .values(next_send_at=now + delay / 1000)
            )
            return row

    async def _send(self, entry: Any) -> None:
        message = await self.journal.get_by_pk(entry.message_id)
        instance = await self.instances.get(entry.instance_id)
        if message is None or instance is None or instance.deleted:
            if message is not None:
                await self.journal.fail(message, "the instance was deleted")
            await self._finish(entry.id)
            return
        try:
            body = await self.files.open(message.file) if message.file else None
            upstream_id = await self.upstream.send(instance, message, body)
        except MaxgateError as exc:
            await self._retry_or_fail(entry, message, str(exc))
            return
        async with self.db.write() as conn:
            await conn.execute(
                t.messages.update()
                .where(t.messages.c.id == message.pk)
                .values(upstream_id=upstream_id)
            )
        await self.journal.on_status(instance.id, message.chat_id, message.id_message, "sent")
        await self._finish(entry.id)

    async def _retry_or_fail(self, entry: Any, message: Message, reason: str) -> None:
        if entry.attempts + 1 >= MAX_ATTEMPTS:
            log.warning("giving up on message %s: %s", message.id_message, reason)
            await self.journal.fail(message, reason)
            await self._finish(entry.id)
            return
        backoff = min(60.0, 2.0 ** (entry.attempts + 1))
        async with self.db.write() as conn:
            await conn.execute(
                t.outbox.update()
                .where(t.outbox.c.id == entry.id)
                .values(state="pending", not_before=time.time() + backoff)
            )

    async def _finish(self, entry_id: int) -> None:
        async with self.db.write() as conn:
            await conn.execute(t.outbox.delete().where(t.outbox.c.id == entry_id))

    async def pending(self, instance_id: int) -> list[Message]:
        """Messages of an instance still waiting for the messenger, oldest first."""
        async with self.db.read() as conn:
            ids = (
                await conn.execute(
                    sa.select(t.outbox.c.message_id)
                    .where(t.outbox.c.instance_id == instance_id, t.outbox.c.state == "pending")
                    .order_by(t.outbox.c.id)
                )
            ).scalars()
            message_ids = list(ids)
        found = [await self.journal.get_by_pk(pk) for pk in message_ids]
        return [m for m in found if m is not None]

    async def count(self, instance_id: int) -> int:
        """How many messages of an instance wait for the messenger."""
        async with self.db.read() as conn:
            return int(
                (
                    await conn.execute(
                        sa.select(sa.func.count())
                        .select_from(t.outbox)
                        .where(t.outbox.c.instance_id == instance_id, t.outbox.c.state == "pending")
                    )
                ).scalar_one()
            )

    async def clear(self, instance_id: int) -> int:
        """Drop an instance's waiting messages (they become ``failed``, with notifications)."""
        instance = await self.instances.get(instance_id)
        if instance is None:
            return 0
        async with self.db.write() as conn:
            waiting = (
                await conn.execute(
                    sa.select(t.messages.c.id, t.messages.c.chat_id, t.messages.c.id_message)
                    .select_from(
                        t.outbox.join(t.messages, t.messages.c.id == t.outbox.c.message_id)
                    )
                    .where(t.outbox.c.instance_id == instance_id, t.outbox.c.state == "pending")
                    .order_by(t.outbox.c.id)
                )
            ).all()
            if not waiting:
                return 0
            await conn.execute(
                t.outbox.delete().where(
                    t.outbox.c.instance_id == instance_id, t.outbox.c.state == "pending"
                )
            )
            await self.journal.fail_many(conn, instance, list(waiting), "cleared from the queue")
        if self.journal.notifications is not None:
            self.journal.notifications.wake(instance_id)
        return len(waiting)

    async def close(self) -> None:
        """Cancel the send tasks in flight (their entries are recovered on the next start)."""
        await self._drains.close()
