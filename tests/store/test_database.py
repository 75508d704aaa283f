"""The metadata store: migrations, schema drift, SQLite pragmas, concurrent writes, errors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from maxgate.errors import StoreConflict, StoreError
from maxgate.store import tables as t
from maxgate.store.database import Database, alembic_config


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'maxgate.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind."""
    if request.param == "sqlite":
        return _sqlite_url(tmp_path)
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite database."""
    db = Database(_sqlite_url(tmp_path))
    await db.migrate()
    try:
        yield db
    finally:
        await db.close()


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def _current_revision(db: Database) -> str | None:
    def current(conn: sa.Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(current)


async def _schema_diff(db: Database) -> list[Any]:
    def diff(conn: sa.Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, t.metadata))

    async with db.engine.connect() as conn:
        return await conn.run_sync(diff)


async def _table_names(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


async def test_migrations_apply_on_an_empty_database_and_are_idempotent(db_url: str) -> None:
    db = Database(db_url)
    try:
        await db.migrate()
        assert await _current_revision(db) == _head()
        assert set(t.metadata.tables) <= await _table_names(db)
        await db.migrate()  # a second run changes nothing and does not fail
        assert await _current_revision(db) == _head()
    finally:
        await db.close()
    again = Database(db_url)  # as a restarted server would
    try:
        await again.migrate()
        assert await _current_revision(again) == _head()
        await again.check()
    finally:
        await again.close()


async def test_the_migration_head_matches_the_tables(db_url: str) -> None:
    db = Database(db_url)
    try:
        await db.migrate()
        assert await _schema_diff(db) == []
    finally:
        await db.close()


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_db: Database) -> None:
    async with sqlite_db.read() as conn:
        mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
        timeout = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
        foreign_keys = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
    assert mode == "wal"
    assert timeout is not None and timeout >= 1000
    assert foreign_keys == 1


async def test_two_concurrent_sqlite_writers_both_succeed(sqlite_db: Database) -> None:
    """Read-then-write transactions overlap; BEGIN IMMEDIATE queues the second one."""
    async with sqlite_db.write() as conn:
        await conn.execute(t.blobs.insert().values(sha256="c", size=0, key="k", created_at=0.0))

    async def increment() -> None:
        async with sqlite_db.write() as conn:
            size = (
                await conn.execute(sa.select(t.blobs.c.size).where(t.blobs.c.sha256 == "c"))
            ).scalar_one()
            await asyncio.sleep(0.1)  # the other writer tries to start meanwhile
            await conn.execute(
                t.blobs.update().where(t.blobs.c.sha256 == "c").values(size=size + 1)
            )

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(increment(), increment()), timeout=10)
    assert time.monotonic() - started >= 0.19  # serialised, not interleaved
    async with sqlite_db.read() as conn:
        size = (
            await conn.execute(sa.select(t.blobs.c.size).where(t.blobs.c.sha256 == "c"))
        ).scalar_one()
    assert size == 2  # no lost update


async def test_reads_are_not_blocked_by_a_writer(sqlite_db: Database) -> None:
    async with sqlite_db.write() as wconn:
        await wconn.execute(t.blobs.insert().values(sha256="r", size=1, key="k", created_at=0.0))
        async with sqlite_db.read() as rconn:
            seen = (await rconn.execute(sa.select(sa.func.count()).select_from(t.blobs))).scalar()
        assert seen == 0  # the uncommitted row is invisible, and the read did not wait


async def test_an_integrity_error_is_a_store_conflict(sqlite_db: Database) -> None:
    row = {"sha256": "dup", "size": 1, "key": "k", "created_at": 0.0}
    async with sqlite_db.write() as conn:
        await conn.execute(t.blobs.insert().values(**row))
    with pytest.raises(StoreConflict) as info:
        async with sqlite_db.write() as conn:
            await conn.execute(t.blobs.insert().values(**row))
    assert isinstance(info.value.__cause__, sa.exc.IntegrityError)


@pytest.mark.postgres
async def test_an_integrity_error_is_a_store_conflict_on_postgres(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        await db.migrate()
        row = {"sha256": "dup", "size": 1, "key": "k", "created_at": 0.0}
        async with db.write() as conn:
            await conn.execute(t.blobs.insert().values(**row))
        with pytest.raises(StoreConflict):
            async with db.write() as conn:
                await conn.execute(t.blobs.insert().values(**row))
    finally:
        await db.close()


async def test_a_failed_write_rolls_back(sqlite_db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with sqlite_db.write() as conn:
            await conn.execute(t.blobs.insert().values(sha256="x", size=1, key="k", created_at=0))
            raise RuntimeError("boom")
    async with sqlite_db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(t.blobs))).scalar() == 0


async def test_driver_errors_become_store_errors(sqlite_db: Database) -> None:
    with pytest.raises(StoreError):
        async with sqlite_db.read() as conn:
            await conn.execute(sa.text("SELECT * FROM no_such_table"))


async def test_repr_hides_the_password() -> None:
    db = Database("postgresql+asyncpg://maxgate:s3cr3t-pw@127.0.0.1:5432/maxgate")
    try:
        shown = repr(db)
        assert "s3cr3t-pw" not in shown
        assert "maxgate" in shown and "127.0.0.1" in shown and "***" in shown
    finally:
        await db.close()


SECRET = "S3CRET-webhook-secret-7f3a"


async def test_statement_parameters_never_reach_a_log(
    sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """aiosqlite logs every operation at DEBUG with its arguments: the SQL parameters, webhook
    secrets among them. Those lines never print, whatever the level."""
    with caplog.at_level(logging.DEBUG):
        async with sqlite_db.write() as conn:
            await conn.execute(sa.text("SELECT :secret"), {"secret": SECRET})
        async with sqlite_db.read() as conn:
            await conn.execute(sa.text("SELECT :secret"), {"secret": SECRET})
        await sqlite_db.transact(
            lambda conn: conn.execute(sa.text("SELECT :secret"), {"secret": SECRET})
        )
    assert SECRET not in caplog.text
    assert not [r for r in caplog.records if r.name == "aiosqlite" and r.levelno <= logging.DEBUG]


async def test_sqlalchemy_errors_hide_the_parameters(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed statement's error (chained under the StoreError, and so in a logged traceback)
    names the SQL but not its parameters; SQLAlchemy's own engine log hides them as well."""
    db = Database(db_url)
    try:
        query = sa.text("SELECT * FROM no_such_table WHERE x = :secret")
        with (
            caplog.at_level(logging.INFO, logger="sqlalchemy.engine"),
            pytest.raises(StoreError) as info,
        ):
            async with db.read() as conn:
                await conn.execute(query, {"secret": SECRET})
        cause = info.value.__cause__
        assert isinstance(cause, sa.exc.DBAPIError)
        assert "no_such_table" in str(cause)
        assert SECRET not in str(cause) and SECRET not in str(info.value)
        assert "no_such_table" in caplog.text  # the engine log was on
        assert SECRET not in caplog.text
    finally:
        await db.close()


async def test_every_engine_hides_parameters(tmp_path: Path) -> None:
    for db in (
        Database(_sqlite_url(tmp_path)),
        Database("postgresql+asyncpg://maxgate@127.0.0.1:5432/maxgate"),  # never connects
    ):
        try:
            assert db.engine.sync_engine.hide_parameters
            assert db._sync_engine is None or db._sync_engine.hide_parameters
        finally:
            await db.close()
