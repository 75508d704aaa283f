"""Instance rows: looked up by id, chatId or phone; created, listed, changed, marked deleted.

The rows' ``settings`` column is JSON text; what the settings mean is ``maxgate.domain``'s.
Functions taking a ``Database`` open their own transaction; those taking a ``Transaction`` run
in the caller's (several changes that must commit together).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from maxgate.store import tables as t
from maxgate.store.database import Database, Row, SyncTransaction, Transaction
from maxgate.store.dialects import lock_rows, locks_rows
from maxgate.store.lookups import lookup

_I = t.instances.c
_BY_ID = lookup(sa.select(t.instances).where(_I.id == sa.bindparam("instance_id")))
_LIVE_BY_CHAT_ID = lookup(
    sa.select(t.instances).where(_I.chat_id == sa.bindparam("chat_id"), _I.deleted_at.is_(None))
)
_LOCK = sa.select(_I.id).where(_I.id == sa.bindparam("instance_id"))
_LIVE_BY_PHONE = lookup(
    sa.select(t.instances).where(_I.phone == sa.bindparam("phone"), _I.deleted_at.is_(None))
)


async def by_id(db: Database, instance_id: int) -> Row | None:
    """The instance's row (deleted ones included), or None."""
    return await db.fetch_one(_BY_ID, {"instance_id": instance_id})


async def live_by_chat_id(db: Database, chat_id: str) -> Row | None:
    """The row of the live instance with that chatId, or None."""
    return await db.fetch_one(_LIVE_BY_CHAT_ID, {"chat_id": chat_id})


async def live_by_phone(db: Database, phone: int) -> Row | None:
    """The row of the live instance with that phone number, or None."""
    return await db.fetch_one(_LIVE_BY_PHONE, {"phone": phone})


async def top_id(db: Database) -> int:
    """The highest instance id so far (0 when there is none)."""
    async with db.read() as conn:
        top = (await conn.execute(sa.select(sa.func.max(_I.id)))).scalar()
    return int(top or 0)


async def insert(db: Database, row: dict[str, Any]) -> None:
    """Add an instance; ``StoreConflict`` when its id (or chatId) is taken."""
    async with db.write() as conn:
        await conn.execute(t.instances.insert().values(**row))


async def all_rows(db: Database, *, include_deleted: bool = False) -> list[Row]:
    """Every instance's row, oldest first; live ones only unless ``include_deleted``."""
    query = sa.select(t.instances).order_by(_I.id)
    if not include_deleted:
        query = query.where(_I.deleted_at.is_(None))
    async with db.read() as conn:
        return list((await conn.execute(query)).all())


async def mark_deleted(db: Database, instance_id: int, at: float) -> bool:
    """Mark a live instance deleted at ``at``; False when there is no such live instance."""
    async with db.write() as conn:
        result = await conn.execute(
            t.instances.update()
            .where(_I.id == instance_id, _I.deleted_at.is_(None))
            .values(deleted_at=at)
        )
    return result.rowcount == 1


async def settings_of(conn: Transaction, instance_id: int) -> str:
    """An instance's settings (JSON text), in the open transaction ``conn``."""
    found = await conn.execute(sa.select(_I.settings).where(_I.id == instance_id))
    return str(found.scalar_one())


async def set_settings(conn: Transaction, instance_id: int, settings: str) -> None:
    """Replace an instance's settings (JSON text), in the open transaction ``conn``."""
    await conn.execute(t.instances.update().where(_I.id == instance_id).values(settings=settings))


async def set_state(conn: Transaction, instance_id: int, state: str) -> None:
    """Record an instance's messenger state, in the open transaction ``conn``."""
    await conn.execute(t.instances.update().where(_I.id == instance_id).values(state=state))


async def lock_pacing(conn: Transaction, instance_id: int) -> Row | None:
    """Hold the instance's row for the rest of the write transaction ``conn`` and read its
    ``next_send_at`` and ``settings`` (None when there is no such instance): the outbox claims
    of every process take turns on it."""
    query = sa.select(_I.next_send_at, _I.settings).where(_I.id == instance_id)
    return (await conn.execute(lock_rows(conn.dialect.name, query))).first()


async def set_next_send_at(conn: Transaction, instance_id: int, at: float) -> None:
    """When the instance's next outgoing message may leave, in the open transaction ``conn``."""
    await conn.execute(t.instances.update().where(_I.id == instance_id).values(next_send_at=at))


def lock_sync(conn: SyncTransaction, instance_id: int) -> None:
    """Hold the instance's row for the rest of the write transaction ``conn``
    (``Database.transact``): webhook claims of every process take turns on it. Nothing to do
    on SQLite, whose write transactions already exclude each other (``dialects.locks_rows``)."""
    if locks_rows(conn.dialect.name):
        conn.execute(_LOCK.with_for_update(), {"instance_id": instance_id})
