"""Chat rows: the chats of an instance's journal, with what is known of them (name, phone).

A chat row is touched by every message in it (``last_at``); its name and the contact's number
are kept once known (``touch``). The upsert statements are built once per dialect and take the
values as parameters: building one with ``.values()`` on every message costs SQLAlchemy a
cache-key walk of half a millisecond.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from maxgate.store import tables as t
from maxgate.store.database import Database, SyncTransaction, Transaction
from maxgate.store.dialects import upsert

_C = t.chats.c
_COLUMNS = ("instance_id", "chat_id", "type", "name", "phone", "last_at")
_UPSERTS: dict[tuple[str, bool], sa.Executable] = {}


def _upsert(dialect: str, named: bool) -> sa.Executable:
    """INSERT … ON CONFLICT for chats; ``named``: the values carry a name to keep."""
    statement = _UPSERTS.get((dialect, named))
    if statement is None:
        statement = upsert(
            dialect,
            t.chats,
            {c: sa.bindparam(c) for c in _COLUMNS},
            keys=["instance_id", "chat_id"],
            update=["last_at", "name"] if named else ["last_at"],
            fill=["phone"],  # a known number is kept when a message does not carry it
        )
        _UPSERTS[(dialect, named)] = statement
    return statement


async def touch(conn: Transaction, values: dict[str, Any]) -> None:
    """Record a chat (``instance_id``, ``chat_id``, ``type``, ``name``, ``phone``,
    ``last_at``): a new one is added, a known one gets the new ``last_at``, the name when one
    is given, and the phone when it is not 0."""
    await conn.execute(_upsert(conn.dialect.name, bool(values["name"])), values)


def touch_sync(conn: SyncTransaction, values: dict[str, Any]) -> None:
    """``touch`` in a ``Database.transact`` block."""
    conn.execute(_upsert(conn.dialect.name, bool(values["name"])), values)


async def name_of(conn: Transaction, instance_id: int, chat_id: str) -> str:
    """The chat's name ("" when unknown or there is no such chat)."""
    query = sa.select(_C.name).where(_C.instance_id == instance_id, _C.chat_id == chat_id)
    return str((await conn.execute(query)).scalar() or "")


async def of_instance(db: Database, instance_id: int) -> list[dict[str, Any]]:
    """An instance's chats, most recent first: ``chat_id``, ``phone``, ``name``, ``type``."""
    query = (
        sa.select(_C.chat_id, _C.phone, _C.name, _C.type)
        .where(_C.instance_id == instance_id)
        .order_by(_C.last_at.desc())
    )
    async with db.read() as conn:
        return [dict(r._mapping) for r in (await conn.execute(query)).all()]
