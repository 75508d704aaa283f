"""Point lookups: compiled SQL on a raw sqlite3 connection, the same rows as SQLAlchemy gives."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from maxgate.errors import StoreError
from maxgate.store import tables as t
from maxgate.store.database import Database
from maxgate.store.lookups import MMAP_SIZE, CompiledLookup, LookupRow

FILE = {
    "id": "f" * 22,
    "instance_id": 3100000001,
    "state": "stored",
    "sha256": "a" * 64,
    "size": 123,
    "file_name": "photo.jpg",
    "mime_type": "image/jpeg",
    "upstream_ref": None,
    "thumbnail": "",
    "created_at": 1700000000.25,
    "stored_at": None,
    "expires_at": 1800000000.5,
}
MESSAGE = {
    "instance_id": 3100000001,
    "chat_id": "79001234567@c.us",
    "id_message": "BAE5F4886F6F2D05",
    "direction": "incoming",
    "type_message": "imageMessage",
    "timestamp": 1700000000,
    "text": None,
    "caption": "caption ✓",
    "file_id": FILE["id"],
    "status": None,
    "send_by_api": True,
}
BY_KEY = (
    sa.select(t.messages, *[c.label("f_" + c.name) for c in t.files.c])
    .select_from(t.messages.outerjoin(t.files, t.files.c.id == t.messages.c.file_id))
    .where(
        t.messages.c.instance_id == sa.bindparam("instance_id"),
        t.messages.c.chat_id == sa.bindparam("chat_id"),
        t.messages.c.id_message == sa.bindparam("id_message"),
    )
)
FILE_BY_ID = sa.select(t.files).where(t.files.c.id == sa.bindparam("file_id"))
KEY = {k: MESSAGE[k] for k in ("instance_id", "chat_id", "id_message")}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'maxgate.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A migrated database holding one message with its file."""
    database = Database(db_url)
    await database.migrate()
    async with database.write() as conn:
        await conn.execute(t.files.insert().values(**FILE))
        await conn.execute(t.messages.insert().values(**MESSAGE))
    try:
        yield database
    finally:
        await database.close()


async def _through_sqlalchemy(db: Database, query: Any, params: dict[str, Any]) -> Any:
    async with db.read() as conn:
        return (await conn.execute(query, params)).first()


async def test_a_lookup_returns_what_sqlalchemy_returns(db: Database) -> None:
    for query, params in ((BY_KEY, KEY), (FILE_BY_ID, {"file_id": FILE["id"]})):
        expected = await _through_sqlalchemy(db, query, params)
        row = await db.fetch_one(query, params)
        assert isinstance(row, LookupRow)
        assert dict(row._mapping) == dict(expected._mapping)
        assert tuple(row) == tuple(expected)
        for key, value in expected._mapping.items():
            assert type(row._mapping[key]) is type(value), key  # same conversions
    row = await db.fetch_one(BY_KEY, KEY)
    assert row is not None
    assert row.send_by_api is True  # SQLite stores 1: the Boolean's result conversion ran
    assert row.caption == "caption ✓" and row.text is None
    assert row.f_created_at == FILE["created_at"] and row.f_stored_at is None


async def test_a_missing_row_is_none(db: Database) -> None:
    assert await db.fetch_one(FILE_BY_ID, {"file_id": "nope"}) is None
    assert await db.fetch_one(BY_KEY, {**KEY, "id_message": "other"}) is None


async def test_each_lookup_sees_every_earlier_commit(db: Database) -> None:
    """The raw connection must not keep a read snapshot open between lookups."""
    assert (await db.fetch_one(FILE_BY_ID, {"file_id": FILE["id"]})).state == "stored"  # type: ignore[union-attr]
    async with db.write() as conn:
        await conn.execute(t.files.update().values(state="evicted"))
    assert (await db.fetch_one(FILE_BY_ID, {"file_id": FILE["id"]})).state == "evicted"  # type: ignore[union-attr]
    async with db.write() as conn:
        await conn.execute(t.files.delete())
    assert await db.fetch_one(FILE_BY_ID, {"file_id": FILE["id"]}) is None


async def test_the_reader_maps_the_file_and_stays_read_only(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'maxgate.db'}")
    await db.migrate()
    async with db.write() as conn:
        await conn.execute(t.files.insert().values(**FILE))
    assert await db.fetch_one(FILE_BY_ID, {"file_id": FILE["id"]}) is not None
    reader = db._reader
    assert reader is not None and reader._conn is not None
    assert reader._conn.execute("PRAGMA mmap_size").fetchone() == (MMAP_SIZE,)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader._conn.execute("DELETE FROM files")
    await db.close()


async def test_statements_built_per_call_and_expanding_lists_work(db: Database) -> None:
    adhoc = sa.select(t.files).where(t.files.c.id == FILE["id"], t.files.c.stored_at.is_(None))
    row = await db.fetch_one(adhoc)
    assert row is not None and row.id == FILE["id"]
    expanding = sa.select(t.files.c.id).where(t.files.c.id.in_(sa.bindparam("ids", expanding=True)))
    assert CompiledLookup.compile(expanding) is None  # not compiled: SQLAlchemy runs it
    row = await db.fetch_one(expanding, {"ids": ["x", FILE["id"]]})
    assert row is not None and row[0] == FILE["id"]


async def test_driver_errors_are_store_errors(db: Database) -> None:
    missing = sa.Table("no_such_table", sa.MetaData(), sa.Column("id", sa.Integer))
    with pytest.raises(StoreError):
        await db.fetch_one(sa.select(missing).where(missing.c.id == sa.bindparam("id")), {"id": 1})


async def test_a_required_parameter_must_be_given(db: Database) -> None:
    with pytest.raises((sa.exc.ArgumentError, StoreError)):
        await db.fetch_one(FILE_BY_ID, {})


def test_rows_by_position_name_and_mapping() -> None:
    row = LookupRow(("id", "name"), (7, "seven"))
    assert row[0] == 7 and row[1] == "seven" and len(row) == 2
    assert row.id == 7 and row.name == "seven"
    assert row._mapping == {"id": 7, "name": "seven"} and row._asdict() == row._mapping
    assert list(row) == [7, "seven"] and bool(row)
    with pytest.raises(AttributeError, match="no column 'other'"):
        _ = row.other


async def test_sqlite_lookups_bypass_the_engine(tmp_path: Path) -> None:
    """On SQLite a prepared lookup runs on the raw connection: no engine execution at all."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'maxgate.db'}")
    await db.migrate()
    executed: list[str] = []
    sa.event.listen(
        db.engine.sync_engine, "before_cursor_execute", lambda *a: executed.append(a[2])
    )
    try:
        assert await db.fetch_one(FILE_BY_ID, {"file_id": "x"}) is None
        assert await db.fetch_one(BY_KEY, KEY) is None
        assert executed == []
        async with db.read() as conn:  # the listener does see engine executions
            await conn.execute(sa.select(sa.literal(1)))
        assert "SELECT ? AS anon_1" in executed
    finally:
        await db.close()
