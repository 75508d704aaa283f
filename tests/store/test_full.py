"""A full disk under the metadata store: SQLite on a small tmpfs filled to the last byte, and
PostgreSQL writing into a tablespace on one (a real "could not extend file", SQLSTATE 53100)."""

from __future__ import annotations

import contextlib
import os
import pwd
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from maxgate import space
from maxgate.errors import StorageFull, StoreError, StoreFull
from maxgate.store import tables as t
from maxgate.store.database import Database
from tests._tmpfs import fill, free, small_tmpfs
from tests.conftest import PG_ADMIN_URL

BIG = "x" * (1024 * 1024)  # more than the WAL can have room for: the write must grow a file


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs."""
    with small_tmpfs(tmp_path / "disk", "4m") as mounted:
        yield mounted


@pytest.fixture
async def full_sqlite(disk: Path) -> AsyncIterator[Database]:
    """A migrated SQLite database on the tmpfs, with one row written before it fills up."""
    db = Database(f"sqlite+aiosqlite:///{disk / 'maxgate.db'}")
    await db.migrate()
    async with db.write() as conn:
        await conn.execute(_blob_row("before"))
    try:
        yield db
    finally:
        free(disk)
        await db.close()


def _blob_row(sha256: str, key: str = "k") -> sa.Insert:
    return t.blobs.insert().values(sha256=sha256, size=1, key=key, created_at=0.0)


async def _keys(db: Database) -> list[str]:
    async with db.read() as conn:
        return list((await conn.execute(sa.select(t.blobs.c.sha256))).scalars())


async def test_a_full_disk_under_sqlite_is_storage_full(disk: Path, full_sqlite: Database) -> None:
    db = full_sqlite
    await db.check()
    fill(disk)

    with pytest.raises(StoreFull, match="database or disk is full") as raised:
        async with db.write() as conn:
            await conn.execute(_blob_row("during", BIG))
    assert isinstance(raised.value, StoreError)  # code that handles a failing store still does
    assert isinstance(raised.value, StorageFull) and raised.value.store == "database"

    def insert(conn: sa.Connection) -> None:
        conn.execute(_blob_row("during-transact", BIG))

    with pytest.raises(StoreFull):
        await db.transact(insert)
    with pytest.raises(StoreFull, match="0 bytes free"):
        await db.check()  # measured: the database's filesystem has no room
    assert await _keys(db) == ["before"]  # reads still work, nothing half-written
    found = await db.fetch_one(
        sa.select(t.blobs).where(t.blobs.c.sha256 == sa.bindparam("s")), {"s": "before"}
    )
    assert found is not None

    free(disk)
    await db.check()  # at once: free space is measured, not remembered
    async with db.write() as conn:
        await conn.execute(_blob_row("after", BIG))
    await db.transact(lambda conn: conn.execute(_blob_row("after-transact")))
    assert sorted(await _keys(db)) == ["after", "after-transact", "before"]
    async with db.read() as conn:
        assert (await conn.exec_driver_sql("PRAGMA integrity_check")).scalar() == "ok"


async def test_other_sqlite_errors_stay_store_errors(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'maxgate.db'}")
    await db.migrate()
    try:
        with pytest.raises(StoreError) as raised:
            async with db.write() as conn:
                await conn.exec_driver_sql("INSERT INTO no_such_table VALUES (1)")
        assert not isinstance(raised.value, StorageFull)
        await db.check()
    finally:
        await db.close()


# --- PostgreSQL --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _tablespace_on_a_small_disk(size: str, db_url: str) -> AsyncIterator[str]:
    """A tablespace of the local PostgreSQL server on a fresh tmpfs, for a table ``filler`` of
    the database ``db_url``; its name. The table is dropped afterwards, then the tablespace."""
    import asyncpg  # type: ignore[import-untyped]

    if "127.0.0.1" not in PG_ADMIN_URL and "localhost" not in PG_ADMIN_URL:
        pytest.skip("the PostgreSQL server is not on this machine: its disk cannot be mounted")
    try:
        postgres = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no local postgres user to own a tablespace directory")
    base = Path(tempfile.mkdtemp(prefix="maxgate-pg-"))
    base.chmod(0o755)  # the server must reach the mount point
    name = f"maxgate_full_{os.getpid()}"
    try:
        with small_tmpfs(base / "disk", size, owner=(postgres.pw_uid, postgres.pw_gid)) as disk:
            admin = await asyncpg.connect(PG_ADMIN_URL)
            try:
                await admin.execute(f"CREATE TABLESPACE {name} LOCATION '{disk}'")
                try:
                    yield name
                finally:
                    owner = await asyncpg.connect(db_url.replace("+asyncpg", ""))
                    try:
                        await owner.execute("DROP TABLE IF EXISTS filler")
                    finally:
                        await owner.close()
                    await admin.execute(f"DROP TABLESPACE IF EXISTS {name}")
            finally:
                await admin.close()
    finally:
        with contextlib.suppress(OSError):
            (base / "disk").rmdir()
            base.rmdir()


@pytest.mark.postgres
async def test_a_full_postgresql_disk_is_storage_full(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that needs a new page of a table whose tablespace is full: SQLSTATE 53100. Its
    disk cannot be measured from here, so check() remembers it until a write succeeds."""
    async with _tablespace_on_a_small_disk("1m", pg_url) as tablespace:
        db = Database(pg_url)
        try:
            await db.migrate()
            async with db.write() as conn:
                await conn.exec_driver_sql(f"CREATE TABLE filler (x text) TABLESPACE {tablespace}")
            row = "INSERT INTO filler SELECT md5(random()::text) FROM generate_series(1, 2000)"
            with pytest.raises(StoreFull, match="could not extend file") as raised:
                for _ in range(1000):
                    async with db.write() as conn:
                        await conn.exec_driver_sql(row)
            assert isinstance(raised.value, StoreError)
            with pytest.raises(StoreFull, match="recent write"):
                await db.check()

            async with db.write() as conn:  # another table, on the server's own disk
                await conn.execute(_blob_row("elsewhere"))
            await db.check()  # a write succeeded: the mark is gone

            with pytest.raises(StoreFull):
                async with db.write() as conn:
                    await conn.exec_driver_sql(row)
            monkeypatch.setattr(space, "FULL_MARK_SECONDS", 0.0)
            await db.check()  # and it expires by itself (a store out of rotation comes back)
        finally:
            await db.close()
