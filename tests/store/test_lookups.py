"""Point lookups: compiled SQL on a raw sqlite3 connection on a reader thread, the same rows
as SQLAlchemy gives."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
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
    "upstream_id": "mid.1",
    "details": '{"location": {"latitude": 1.0, "longitude": 2.0}}',
    "is_edited": True,
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


# -- every lookup of the repositories, through both paths ----------------------------------

INSTANCE = {
    "id": 3100000001,
    "name": "shop",
    "token_hash": "b" * 64,
    "chat_id": "79001230001@c.us",
    "phone": 79001230001,
    "settings": "{}",
    "created_at": 1700000000.5,
}
NOTIFICATION = {
    "instance_id": 3100000001,
    "type_webhook": "incomingMessageReceived",
    "body": "{}",
    "file_id": FILE["id"],
    "created_at": 1700000001.0,
}
# A value for each bind parameter name the repositories' lookups use: one that finds the row
# above, and one that finds nothing.
FOUND = {**KEY, "file_id": FILE["id"], "pk": 1, "phone": INSTANCE["phone"],
         "chat_id_of_instance": INSTANCE["chat_id"], "upstream_id": "mid.1"}  # fmt: skip
MISSING = {"instance_id": 1, "chat_id": "0@c.us", "id_message": "0", "file_id": "0", "pk": 0,
           "phone": 1, "upstream_id": "mid.0"}  # fmt: skip


def _repository_lookups() -> list[sa.Select[Any]]:
    from maxgate.store import files, instances, messages, notifications  # noqa: F401
    from maxgate.store.lookups import LOOKUPS

    return list(LOOKUPS)


def _params(statement: sa.Select[Any], values: dict[str, Any]) -> dict[str, Any]:
    names = statement.compile().params
    found = {name: values[name] for name in names if name in values}  # LIMIT 1: its own
    if "chat_id" in found and "instance_id" not in found:  # the instance by its chatId
        found["chat_id"] = values.get("chat_id_of_instance", found["chat_id"])
    return found


@pytest.fixture
async def full_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A SQLite database with one row in every table a repository lookup reads."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'maxgate.db'}")
    await database.migrate()
    async with database.write() as conn:
        await conn.execute(t.instances.insert().values(**INSTANCE))
        await conn.execute(t.files.insert().values(**FILE))
        await conn.execute(t.messages.insert().values(**MESSAGE))
        await conn.execute(t.notifications.insert().values(**NOTIFICATION))
    try:
        yield database
    finally:
        await database.close()


def test_the_repositories_declare_their_lookups() -> None:
    statements = _repository_lookups()
    assert len(statements) >= 8
    for statement in statements:
        assert CompiledLookup.compile(statement) is not None, statement  # each has a fast path


@pytest.mark.parametrize("values", [FOUND, MISSING], ids=["found", "missing"])
async def test_every_repository_lookup_matches_sqlalchemy(
    full_db: Database, values: dict[str, Any]
) -> None:
    """The compiled fast path answers exactly what SQLAlchemy's own execution answers, column
    for column and type for type, on every lookup statement of the repositories."""
    for statement in _repository_lookups():
        params = _params(statement, values)
        expected = await _through_sqlalchemy(full_db, statement, params)
        row = await full_db.fetch_one(statement, params)
        if expected is None:
            assert row is None, statement
            continue
        assert row is not None, statement
        assert tuple(row._mapping) == tuple(expected._mapping), statement
        assert tuple(row) == tuple(expected), statement
        for key, value in expected._mapping.items():
            assert type(row._mapping[key]) is type(value), (statement, key)


# -- the reader thread ----------------------------------------------------------------------


async def test_lookups_run_on_the_reader_thread_never_on_the_loop(db_path_db: Database) -> None:
    db = db_path_db
    assert await db.fetch_one(FILE_BY_ID, {"file_id": "x"}) is None  # opens the connection
    reader = db._reader
    assert reader is not None and reader._conn is not None
    threads: list[str] = []
    reader._conn.set_trace_callback(lambda _sql: threads.append(threading.current_thread().name))
    assert await db.fetch_one(FILE_BY_ID, {"file_id": FILE["id"]}) is not None
    assert await db.fetch_one(BY_KEY, KEY) is not None
    assert threads and set(threads) == {"maxgate-sqlite-reader"}
    assert threading.current_thread().name != "maxgate-sqlite-reader"


async def test_concurrent_lookups_each_get_their_own_row(db_path_db: Database) -> None:
    db = db_path_db
    async with db.write() as conn:
        await conn.execute(
            t.files.insert(), [{**FILE, "id": f"file-{n}", "size": n} for n in range(50)]
        )
    wanted = [f"file-{n % 50}" if n % 3 else "none" for n in range(300)]
    rows = await asyncio.gather(*(db.fetch_one(FILE_BY_ID, {"file_id": w}) for w in wanted))
    for want, row in zip(wanted, rows, strict=True):
        assert (row.id if row is not None else "none") == want


async def test_a_cancelled_lookup_leaves_the_others_alone(db_path_db: Database) -> None:
    db = db_path_db
    key = {"file_id": FILE["id"]}
    tasks = [asyncio.create_task(db.fetch_one(FILE_BY_ID, key)) for _ in range(20)]
    await asyncio.sleep(0)
    for task in tasks[::2]:
        task.cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in done[::2])
    assert all(r is not None and r.id == FILE["id"] for r in done[1::2])  # type: ignore[union-attr]
    assert await db.fetch_one(FILE_BY_ID, {"file_id": FILE["id"]}) is not None


async def test_the_reader_stops_with_the_database_and_starts_again(db_path_db: Database) -> None:
    db = db_path_db
    assert await db.fetch_one(FILE_BY_ID, {"file_id": FILE["id"]}) is not None
    reader = db._reader
    assert reader is not None
    thread = reader._thread
    assert thread is not None and thread.is_alive()
    await reader.close()
    assert not thread.is_alive()
    assert await db.fetch_one(FILE_BY_ID, {"file_id": FILE["id"]}) is not None  # started again
    assert reader._thread is not None and reader._thread is not thread


@pytest.fixture
async def db_path_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A SQLite database file holding one message with its file."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'maxgate.db'}")
    await database.migrate()
    async with database.write() as conn:
        await conn.execute(t.files.insert().values(**FILE))
        await conn.execute(t.messages.insert().values(**MESSAGE))
    try:
        yield database
    finally:
        await database.close()
