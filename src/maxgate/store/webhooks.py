"""Webhook delivery's side of the notification queue: queue heads, leases, settlements.

The worker (``maxgate.domain.webhooks``) claims the head of an instance's queue — up to a batch
of rows, leased until a time — in a write transaction holding the instance's row, so any number
of processes deliver an instance's notifications one at a time and in order; it then deletes
what was delivered, schedules a failed head again and releases the rest.
"""

from __future__ import annotations

import sqlalchemy as sa

from maxgate.store import instances
from maxgate.store import tables as t
from maxgate.store.database import Database, Row, SyncTransaction

_N = t.notifications.c
_HEADS = sa.select(_N.instance_id, _N.next_attempt_at, _N.lease_until).where(
    _N.id.in_(sa.select(sa.func.min(_N.id)).group_by(_N.instance_id))
)
_CLAIMABLE = (
    sa.select(_N.id, _N.body, _N.file_id, _N.attempts, _N.next_attempt_at, _N.lease_until)
    .where(_N.instance_id == sa.bindparam("instance_id"))
    .order_by(_N.id)
    .limit(sa.bindparam("batch", type_=sa.Integer))
)
_LEASE = (
    t.notifications.update()
    .where(
        _N.instance_id == sa.bindparam("owner"),
        _N.id.between(sa.bindparam("first"), sa.bindparam("last")),
    )
    .values(lease_until=sa.bindparam("until"))
)
_DELETE = t.notifications.delete().where(_N.id.in_(sa.bindparam("ids", expanding=True)))
_RELEASE = (
    t.notifications.update()
    .where(_N.id.in_(sa.bindparam("ids", expanding=True)))
    .values(lease_until=0)
)
_RESCHEDULE = (
    t.notifications.update()
    .where(_N.id == sa.bindparam("receipt"))
    .values(
        attempts=sa.bindparam("attempts"),
        next_attempt_at=sa.bindparam("next_at"),
        lease_until=0,
        last_error=sa.bindparam("error"),
    )
)


async def heads(db: Database) -> list[Row]:
    """The head of every non-empty queue: ``instance_id``, ``next_attempt_at``,
    ``lease_until``."""
    async with db.read() as conn:
        return list((await conn.execute(_HEADS)).all())


def claim_sync(
    conn: SyncTransaction, instance_id: int, *, now: float, until: float, batch: int
) -> list[Row]:
    """Lease the first ``batch`` rows of an instance's queue until ``until`` when its head is
    neither leased nor waiting for a retry at ``now``; returns them (``id``, ``body``,
    ``file_id``, ``attempts``, …), or ``[]``. Runs in a ``Database.transact`` block, holding
    the instance's row."""
    instances.lock_sync(conn, instance_id)
    rows = conn.execute(_CLAIMABLE, {"instance_id": instance_id, "batch": batch}).all()
    if not rows or rows[0].lease_until > now or rows[0].next_attempt_at > now:
        return []
    lease = {"owner": instance_id, "first": rows[0].id, "last": rows[-1].id, "until": until}
    conn.execute(_LEASE, lease)
    return list(rows)


async def settle(
    db: Database,
    *,
    delivered: list[int],
    failed: tuple[int, int, float, str] | None,
    released: list[int],
) -> None:
    """In one write transaction: delete the ``delivered`` receipts; record a failed one —
    (receipt, attempts, next attempt at, error) — for a retry; release the ``released``
    ones' lease."""
    async with db.write() as conn:
        if delivered:
            await conn.execute(_DELETE, {"ids": delivered})
        if failed is not None:
            receipt, attempts, next_at, error = failed
            values = {"receipt": receipt, "attempts": attempts, "next_at": next_at, "error": error}
            await conn.execute(_RESCHEDULE, values)
        if released:
            await conn.execute(_RELEASE, {"ids": released})
