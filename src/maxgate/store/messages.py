"""Message rows: the journal of every message an instance sent or received.

A message row is read together with its file's columns, prefixed ``f_`` (``f_id`` is None when
it has no file). Functions taking a ``Database`` open their own transaction; those taking a
``Transaction`` run in the caller's, and the ``*_sync`` ones in a ``Database.transact`` block.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from maxgate.store import tables as t
from maxgate.store.database import Database, Row, SyncTransaction, Transaction
from maxgate.store.lookups import lookup

_M = t.messages.c
_KEY = (
    _M.instance_id == sa.bindparam("instance_id"),
    _M.chat_id == sa.bindparam("chat_id"),
    _M.id_message == sa.bindparam("id_message"),
)
MESSAGE_QUERY = sa.select(t.messages, *[c.label("f_" + c.name) for c in t.files.c]).select_from(
    t.messages.outerjoin(t.files, t.files.c.id == _M.file_id)
)
"""A message with its file's columns (``f_…``): the base of every message read."""
_BY_KEY = lookup(MESSAGE_QUERY.where(*_KEY))
_BY_PK = lookup(MESSAGE_QUERY.where(_M.id == sa.bindparam("pk")))
# downloadFile's lookup: only the file's columns, and a row only when the message has a file.
_FILE_BY_KEY = lookup(
    sa.select(t.files)
    .select_from(t.messages.join(t.files, t.files.c.id == _M.file_id))
    .where(*_KEY)
)
_BY_UPSTREAM_ID = lookup(
    MESSAGE_QUERY.where(
        _M.instance_id == sa.bindparam("instance_id"),
        _M.upstream_id == sa.bindparam("upstream_id"),
    )
    .order_by(_M.id)
    .limit(1)
)
_INSERT = t.messages.insert()
_NEWEST_FIRST = (_M.timestamp.desc(), _M.id.desc())


def _key(instance_id: int, chat_id: str, id_message: str) -> dict[str, Any]:
    return {"instance_id": instance_id, "chat_id": chat_id, "id_message": id_message}


async def by_key(db: Database, instance_id: int, chat_id: str, id_message: str) -> Row | None:
    """One message of one chat of one instance, with its file's columns; or None."""
    return await db.fetch_one(_BY_KEY, _key(instance_id, chat_id, id_message))


async def by_pk(db: Database, pk: int) -> Row | None:
    """A message by its row id, with its file's columns; or None."""
    return await db.fetch_one(_BY_PK, {"pk": pk})


async def file_by_key(db: Database, instance_id: int, chat_id: str, id_message: str) -> Row | None:
    """The file row of one message; None when there is no such message or it has no file."""
    return await db.fetch_one(_FILE_BY_KEY, _key(instance_id, chat_id, id_message))


async def by_upstream_id(db: Database, instance_id: int, upstream_id: str) -> Row | None:
    """The message of an instance the messenger knows by ``upstream_id`` (MAX's mid), with its
    file's columns; or None. Of an album, the first file (the others have no upstream id)."""
    return await db.fetch_one(
        _BY_UPSTREAM_ID, {"instance_id": instance_id, "upstream_id": upstream_id}
    )


async def set_edited(conn: Transaction, pk: int, *, text: str | None, caption: str) -> None:
    """Give a message (by row id) its edited text and caption and mark it edited, in the open
    transaction ``conn``."""
    await conn.execute(
        t.messages.update().where(_M.id == pk).values(text=text, caption=caption, is_edited=True)
    )


async def set_deleted(conn: Transaction, pk: int) -> None:
    """Mark a message (by row id) removed on the messenger, in the open transaction ``conn``;
    the row stays (the journal shows it with isDeleted)."""
    await conn.execute(t.messages.update().where(_M.id == pk).values(is_deleted=True))


async def insert(conn: Transaction, row: dict[str, Any]) -> int:
    """Add a message row, in the open transaction ``conn``; returns its row id."""
    result = await conn.execute(_INSERT.values(**row))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def insert_sync(conn: SyncTransaction, row: dict[str, Any]) -> None:
    """Add a message row (every column of the inbound path given) in a ``Database.transact``
    block."""
    conn.execute(_INSERT, row)


async def status_of(
    conn: Transaction, instance_id: int, chat_id: str, id_message: str
) -> str | None:
    """A message's status (None when there is no such message or it has none)."""
    query = sa.select(_M.status).where(
        _M.instance_id == instance_id, _M.chat_id == chat_id, _M.id_message == id_message
    )
    status = (await conn.execute(query)).scalar()
    return None if status is None else str(status)


async def set_status(
    conn: Transaction, instance_id: int, chat_id: str, id_message: str, status: str
) -> None:
    """Change a message's status, in the open transaction ``conn``."""
    await conn.execute(
        t.messages.update()
        .where(_M.instance_id == instance_id, _M.chat_id == chat_id, _M.id_message == id_message)
        .values(status=status)
    )


async def set_failed(conn: Transaction, pks: list[int], description: str) -> None:
    """Mark messages (by row id) ``failed`` with the reason, in the open transaction ``conn``."""
    await conn.execute(
        t.messages.update()
        .where(_M.id.in_(pks) if len(pks) != 1 else _M.id == pks[0])
        .values(status="failed", status_description=description)
    )


async def set_upstream_id(db: Database, pk: int, upstream_id: str | None) -> None:
    """Record the messenger's own id of a message it accepted."""
    async with db.write() as conn:
        await conn.execute(t.messages.update().where(_M.id == pk).values(upstream_id=upstream_id))


async def history(db: Database, instance_id: int, chat_id: str, count: int) -> list[Row]:
    """The newest ``count`` messages of a chat, newest first, with their files' columns."""
    query = (
        MESSAGE_QUERY.where(_M.instance_id == instance_id, _M.chat_id == chat_id)
        .order_by(*_NEWEST_FIRST)
        .limit(count)
    )
    async with db.read() as conn:
        return list((await conn.execute(query)).all())


async def since(
    db: Database, instance_id: int, direction: str, timestamp: int, limit: int
) -> list[Row]:
    """Up to ``limit`` messages of one direction from ``timestamp`` on, newest first, with their
    files' columns."""
    query = (
        MESSAGE_QUERY.where(
            _M.instance_id == instance_id, _M.timestamp >= timestamp, _M.direction == direction
        )
        .order_by(*_NEWEST_FIRST)
        .limit(limit)
    )
    async with db.read() as conn:
        return list((await conn.execute(query)).all())
