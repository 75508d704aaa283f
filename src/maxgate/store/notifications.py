"""Notification rows: the per-instance FIFO of ``receiveNotification`` and the webhooks.

A row's id is its ``receiptId``; an instance's queue is its rows in id order. Rows are added in
the transaction of the journal change they report (``add`` / ``add_sync``). What the webhook
worker does to them — leases, attempts — is ``maxgate.store.webhooks``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from maxgate.store import tables as t
from maxgate.store.database import Database, Row, SyncTransaction, Transaction
from maxgate.store.lookups import lookup

_N = t.notifications.c
_HEAD = lookup(
    sa.select(_N.id, _N.body, _N.file_id)
    .where(_N.instance_id == sa.bindparam("instance_id"))
    .order_by(_N.id)
    .limit(1)
)
_LAST_ID = lookup(sa.select(sa.func.max(_N.id).label("last_id")))
INSERT = t.notifications.insert()
"""The statement adding a row (a test replaces it with one that fails)."""


async def add(conn: Transaction, row: dict[str, Any]) -> None:
    """Queue a notification row (``instance_id``, ``type_webhook``, ``body``, ``file_id``,
    ``created_at``) in the open transaction ``conn``."""
    await conn.execute(INSERT, row)


def add_sync(conn: SyncTransaction, row: dict[str, Any]) -> None:
    """``add`` in a ``Database.transact`` block."""
    conn.execute(INSERT, row)


async def head(db: Database, instance_id: int) -> Row | None:
    """The oldest row of an instance's queue (``id``, ``body``, ``file_id``), or None."""
    return await db.fetch_one(_HEAD, {"instance_id": instance_id})


async def last_id(db: Database) -> int:
    """The newest receiptId of every queue (0 when all are empty)."""
    row = await db.fetch_one(_LAST_ID, {})
    return int((row[0] if row else None) or 0)


async def delete(db: Database, instance_id: int, receipt_id: int) -> bool:
    """Remove one row of an instance's queue; False when there is no such receipt."""
    async with db.write() as conn:
        result = await conn.execute(
            t.notifications.delete().where(_N.instance_id == instance_id, _N.id == receipt_id)
        )
    return bool(result.rowcount)


async def count(db: Database, instance_id: int) -> int:
    """How many rows an instance's queue holds."""
    query = sa.select(sa.func.count()).select_from(t.notifications)
    async with db.read() as conn:
        return int((await conn.execute(query.where(_N.instance_id == instance_id))).scalar_one())


async def clear(db: Database, instance_id: int) -> int:
    """Drop an instance's whole queue; returns how many rows."""
    async with db.write() as conn:
        result = await conn.execute(t.notifications.delete().where(_N.instance_id == instance_id))
    return int(result.rowcount)


async def drop_older_than(db: Database, cutoff: float) -> int:
    """Drop the rows of every queue created before ``cutoff``; returns how many."""
    async with db.write() as conn:
        result = await conn.execute(t.notifications.delete().where(_N.created_at < cutoff))
    return int(result.rowcount)


async def count_all(conn: Transaction) -> int:
    """How many rows all queues hold."""
    query = sa.select(sa.func.count()).select_from(t.notifications)
    return int((await conn.execute(query)).scalar_one())
