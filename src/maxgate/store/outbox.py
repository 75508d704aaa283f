"""Outbox rows: the durable queue of outgoing messages, their claims and leases.

An entry is ``pending`` (waiting, due at ``not_before``) or ``sending`` (claimed by ``owner``
until ``lease_until``); a finished one is deleted. The rules — when an instance's turn has come,
when a claim may be taken over — are ``maxgate.domain.outbox``'s; a claim runs in one write
transaction that holds the instance's row (``maxgate.store.instances.lock_pacing``).
"""

from __future__ import annotations

import sqlalchemy as sa

from maxgate.store import tables as t
from maxgate.store.database import Database, Row, Transaction

_O = t.outbox.c
_SENDING = _O.state == "sending"
_PENDING = _O.state == "pending"


async def enqueue(conn: Transaction, instance_id: int, message_id: int, at: float) -> None:
    """Queue a journaled message (by its row id) for the messenger, due at once."""
    await conn.execute(
        t.outbox.insert().values(
            instance_id=instance_id,
            message_id=message_id,
            state="pending",
            not_before=0.0,
            created_at=at,
        )
    )


async def sending_owners(db: Database) -> list[str]:
    """Every owner holding an entry ``sending``."""
    query = sa.select(_O.owner).where(_SENDING, _O.owner.is_not(None)).distinct()
    async with db.read() as conn:
        return [str(owner) for owner in (await conn.execute(query)).scalars()]


async def release(db: Database, owner: str) -> int:
    """Hand ``owner``'s claims back to the queue (those still its own); returns how many."""
    async with db.write() as conn:
        result = await conn.execute(
            t.outbox.update()
            .where(_SENDING, _O.owner == owner)
            .values(state="pending", owner=None, lease_until=None)
        )
        return int(result.rowcount or 0)


async def queues(db: Database) -> list[Row]:
    """Every instance with entries pending or sending: ``(instance_id, the earliest
    not_before of its pending entries, its next_send_at, the lease of its entry in flight — 0
    when it has none — and that entry's owner)``; the last two are None when none is sending."""
    query = (
        sa.select(
            _O.instance_id,
            sa.func.min(sa.case((_PENDING, _O.not_before))),
            sa.func.max(t.instances.c.next_send_at),
            sa.func.max(sa.case((_SENDING, sa.func.coalesce(_O.lease_until, 0.0)))),
            sa.func.max(sa.case((_SENDING, _O.owner))),
        )
        .select_from(t.outbox.join(t.instances, t.instances.c.id == _O.instance_id))
        .where(_O.state.in_(("pending", "sending")))
        .group_by(_O.instance_id)
    )
    async with db.read() as conn:
        return list((await conn.execute(query)).all())


async def in_flight(conn: Transaction, instance_id: int) -> Row | None:
    """The instance's oldest entry ``sending``, or None."""
    query = (
        sa.select(t.outbox).where(_O.instance_id == instance_id, _SENDING).order_by(_O.id).limit(1)
    )
    return (await conn.execute(query)).first()


async def next_due(conn: Transaction, instance_id: int, now: float) -> Row | None:
    """The instance's oldest entry ``pending`` and due at ``now``, or None."""
    query = (
        sa.select(t.outbox)
        .where(_O.instance_id == instance_id, _PENDING, _O.not_before <= now)
        .order_by(_O.id)
        .limit(1)
    )
    return (await conn.execute(query)).first()


async def claim(
    conn: Transaction, entry: Row, *, owner: str, now: float, lease_until: float
) -> bool:
    """Claim ``entry`` (a row of ``in_flight`` or ``next_due``) for ``owner`` until
    ``lease_until``, counting an attempt. An entry that was ``sending`` is taken over only if it
    is still as it was read (a late renewal by its owner keeps it). Whether it was claimed."""
    query = t.outbox.update().where(_O.id == entry.id)
    if entry.state == "sending":
        query = query.where(
            _SENDING,
            _O.owner.is_not_distinct_from(entry.owner),
            _O.lease_until.is_not_distinct_from(entry.lease_until),
        )
    result = await conn.execute(
        query.values(
            state="sending",
            attempts=entry.attempts + 1,
            claimed_at=now,
            owner=owner,
            lease_until=lease_until,
        )
    )
    return bool(result.rowcount == 1)


async def renew(db: Database, entry_id: int, owner: str, until: float) -> bool:
    """Extend ``owner``'s lease of an entry it still holds; False when it no longer does."""
    async with db.write() as conn:
        result = await conn.execute(
            t.outbox.update()
            .where(_O.id == entry_id, _SENDING, _O.owner == owner)
            .values(lease_until=until)
        )
    return bool(result.rowcount == 1)


async def retry_later(db: Database, entry_id: int, owner: str, not_before: float) -> None:
    """Put ``owner``'s entry back in the queue, due at ``not_before`` (not if taken over)."""
    async with db.write() as conn:
        await conn.execute(
            t.outbox.update()
            .where(_O.id == entry_id, _O.owner == owner)
            .values(state="pending", not_before=not_before, owner=None, lease_until=None)
        )


async def finish(db: Database, entry_id: int) -> None:
    """Remove a settled entry."""
    async with db.write() as conn:
        await conn.execute(t.outbox.delete().where(_O.id == entry_id))


async def pending_message_ids(db: Database, instance_id: int) -> list[int]:
    """The message row ids of an instance's pending entries, oldest first."""
    query = sa.select(_O.message_id).where(_O.instance_id == instance_id, _PENDING).order_by(_O.id)
    async with db.read() as conn:
        return [int(pk) for pk in (await conn.execute(query)).scalars()]


async def count_pending(db: Database, instance_id: int) -> int:
    """How many entries of an instance are pending."""
    query = sa.select(sa.func.count()).select_from(t.outbox)
    async with db.read() as conn:
        found = await conn.execute(query.where(_O.instance_id == instance_id, _PENDING))
        return int(found.scalar_one())


async def waiting_messages(conn: Transaction, instance_id: int) -> list[Row]:
    """The messages of an instance's pending entries (``id``, ``chat_id``, ``id_message``),
    oldest first, in the open transaction ``conn``."""
    m = t.messages.c
    query = (
        sa.select(m.id, m.chat_id, m.id_message)
        .select_from(t.outbox.join(t.messages, m.id == _O.message_id))
        .where(_O.instance_id == instance_id, _PENDING)
        .order_by(_O.id)
    )
    return list((await conn.execute(query)).all())


async def drop_pending(conn: Transaction, instance_id: int) -> None:
    """Remove an instance's pending entries, in the open transaction ``conn``."""
    await conn.execute(t.outbox.delete().where(_O.instance_id == instance_id, _PENDING))


async def count_all_pending(conn: Transaction) -> int:
    """How many entries of all instances are pending."""
    query = sa.select(sa.func.count()).select_from(t.outbox).where(_PENDING)
    return int((await conn.execute(query)).scalar_one())
