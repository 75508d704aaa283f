"""File rows and the blob rows they point at: lookups, states, mirroring, eviction, stats.

A file row is ``remote``, ``stored`` or ``evicted`` (``maxgate.domain.files`` says when); a blob
row records content the blob store holds (by SHA-256). Functions taking a ``Database`` open
their own transaction; those taking a ``Transaction`` run in the caller's, and the ``*_sync``
ones in a ``Database.transact`` block.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from maxgate.store import tables as t
from maxgate.store.database import Database, Row, SyncTransaction, Transaction
from maxgate.store.dialects import upsert
from maxgate.store.lookups import lookup

_F = t.files.c
_BY_ID = lookup(sa.select(t.files).where(_F.id == sa.bindparam("file_id")))
_INSERT = t.files.insert()


async def by_id(db: Database, file_id: str) -> Row | None:
    """The file's row, or None."""
    return await db.fetch_one(_BY_ID, {"file_id": file_id})


async def insert(conn: Transaction, row: dict[str, Any]) -> None:
    """Add a file row (every column given), in the open transaction ``conn``."""
    await conn.execute(_INSERT, row)


def insert_sync(conn: SyncTransaction, row: dict[str, Any]) -> None:
    """``insert`` in a ``Database.transact`` block."""
    conn.execute(_INSERT, row)


async def record_blob(conn: Transaction, sha256: str, size: int, key: str, at: float) -> None:
    """Remember committed content (idempotent: a known one keeps its first ``created_at``)."""
    values = {"sha256": sha256, "size": size, "key": key, "created_at": at}
    statement = upsert(conn.dialect.name, t.blobs, values, keys=["sha256"], update=["size", "key"])
    await conn.execute(statement)


async def update(conn: Transaction, file_id: str, changes: dict[str, Any]) -> None:
    """Change columns of one file, in the open transaction ``conn``."""
    await conn.execute(t.files.update().where(_F.id == file_id).values(**changes))


async def remote_due(db: Database, now: float, batch: int) -> list[Row]:
    """Up to ``batch`` rows of ``remote`` files whose next fetch is due at ``now``, those
    waiting longest first."""
    query = (
        sa.select(t.files)
        .where(_F.state == "remote", _F.retry_at <= now)
        .order_by(_F.retry_at, _F.created_at)
        .limit(batch)
    )
    async with db.read() as conn:
        return list((await conn.execute(query)).all())


async def set_retry(db: Database, file_id: str, attempts: int, retry_at: float) -> None:
    """Record a failed fetch of a file: how many so far, and when to try again."""
    async with db.write() as conn:
        await update(conn, file_id, {"fetch_attempts": attempts, "retry_at": retry_at})


_MIRRORED = (
    t.files.update()
    .where(_F.id == sa.bindparam("b_id"))
    .values(
        state="stored",
        sha256=sa.bindparam("b_sha256"),
        size=sa.bindparam("b_size"),
        stored_at=sa.bindparam("b_stored_at"),
        expires_at=sa.bindparam("b_expires_at"),
        thumbnail=sa.bindparam("b_thumbnail"),
        fetch_attempts=0,
        retry_at=0.0,
    )
)


def record_mirrored_sync(conn: SyncTransaction, fetched: list[dict[str, Any]]) -> None:
    """Record files whose bytes were just fetched and committed to the blob store, all in the
    ``Database.transact`` block ``conn``: each one's blob row (idempotent, as ``record_blob``)
    and its file row turned ``stored``. Each item has ``id``, ``sha256``, ``size``, ``key``,
    ``stored_at``, ``expires_at`` and ``thumbnail``."""
    if not fetched:
        return
    columns = ("sha256", "size", "key", "created_at")
    values: dict[str, Any] = {c: sa.bindparam("b_" + c) for c in columns}
    blob_rows = upsert(conn.dialect.name, t.blobs, values, keys=["sha256"], update=["size", "key"])
    conn.execute(
        blob_rows,
        [
            {
                "b_sha256": f["sha256"],
                "b_size": f["size"],
                "b_key": f["key"],
                "b_created_at": f["stored_at"],
            }
            for f in fetched
        ],
    )
    conn.execute(_MIRRORED, [{"b_" + k: v for k, v in f.items() if k != "key"} for f in fetched])


async def evict_expired(db: Database, now: float, batch: int) -> list[Row]:
    """Turn up to ``batch`` ``stored`` files expired at ``now`` into ``evicted``; returns their
    ``id`` and ``sha256`` (an empty list when none is left)."""
    async with db.write() as conn:
        rows = (
            await conn.execute(
                sa.select(_F.id, _F.sha256)
                .where(_F.state == "stored", _F.expires_at <= now)
                .limit(batch)
            )
        ).all()
        if rows:
            await conn.execute(
                t.files.update()
                .where(_F.id.in_([r.id for r in rows]), _F.state == "stored")
                .values(state="evicted")
            )
    return list(rows)


def _holders(sha256: str) -> sa.Select[Any]:
    return sa.select(sa.func.count()).where(_F.sha256 == sha256, _F.state == "stored")


async def is_held(db: Database, sha256: str) -> bool:
    """Whether a ``stored`` file holds this content."""
    async with db.read() as conn:
        return bool((await conn.execute(_holders(sha256))).scalar_one())


async def forget_blob(db: Database, sha256: str) -> int:
    """Drop the blob row of content no ``stored`` file holds (one recorded meanwhile keeps
    it); returns the size it recorded, 0 when there was none."""
    async with db.write() as conn:
        size = (
            await conn.execute(sa.select(t.blobs.c.size).where(t.blobs.c.sha256 == sha256))
        ).scalar()
        await conn.execute(
            t.blobs.delete().where(t.blobs.c.sha256 == sha256, ~sa.exists(_holders(sha256)))
        )
    return int(size or 0)


async def stats(db: Database) -> list[dict[str, Any]]:
    """Files and bytes by instance and state: ``instance_id``, ``state``, ``files``, ``bytes``."""
    query = (
        sa.select(
            _F.instance_id,
            _F.state,
            sa.func.count().label("files"),
            sa.func.coalesce(sa.func.sum(_F.size), 0).label("bytes"),
        )
        .group_by(_F.instance_id, _F.state)
        .order_by(_F.instance_id, _F.state)
    )
    async with db.read() as conn:
        return [dict(r._mapping) for r in (await conn.execute(query)).all()]


async def blobs(db: Database) -> list[tuple[str, str]]:
    """Every recorded blob: (sha256, key)."""
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(t.blobs.c.sha256, t.blobs.c.key))).all()
    return [(sha256, key) for sha256, key in rows]


async def count_by_state(conn: Transaction) -> dict[str, int]:
    """How many files are in each state."""
    rows = (await conn.execute(sa.select(_F.state, sa.func.count()).group_by(_F.state))).all()
    return {str(state): int(n) for state, n in rows}
