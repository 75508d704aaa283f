"""The metadata store's connection: one async engine, read and write transactions, migrations.

``Database`` has one execution strategy per engine. On SQLite (WAL mode, a busy timeout, write
transactions ``BEGIN IMMEDIATE`` so two writers queue instead of failing half-way with
"database is locked") it runs aiosqlite for ``read``/``write``, a writer thread for
``transact`` and a reader thread for point lookups (``fetch_one``): no ``sqlite3`` call runs
on the event loop. On PostgreSQL everything goes through the async driver. What differs in SQL
between the two is in ``maxgate.store.dialects``; the queries themselves are the repositories'
(``maxgate.store.instances``, ``messages``, ``chats``, ``files``, ``notifications``,
``outbox``, ``webhooks``, ``counts``), which the domain calls. Driver errors are translated
into ``StoreError``/``StoreConflict`` here, at the boundary, and a full disk into ``StoreFull``
(SQLITE_FULL "database or disk is full"; PostgreSQL's disk_full, SQLSTATE 53100 "could not
extend file"; see ``maxgate.space``).

Statement parameters carry secrets (an instance's webhook token and secret): the engines hide
them from SQLAlchemy's messages and logs (``hide_parameters``), and aiosqlite's DEBUG lines,
which show them, are dropped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from maxgate.errors import StoreConflict, StoreError, StoreFull
from maxgate.space import FullMark, is_full, is_sqlite_io_error, low_on_space
from maxgate.store.dialects import SQLITE, configure_sqlite, engine_options
from maxgate.store.lookups import CompiledLookup, LookupRow, SqliteReader

_MIGRATIONS = str(Path(__file__).with_name("migrations"))
T = TypeVar("T")

Transaction: TypeAlias = AsyncConnection
"""An open read or write transaction (``Database.read``/``write``) the repositories run in."""
SyncTransaction: TypeAlias = sa.Connection
"""The open write transaction of ``Database.transact``: the repositories' ``*_sync`` functions."""
Row: TypeAlias = Any
"""A result row: ``row.column``, ``row[0]`` or ``row._mapping["column"]``."""


class Database:
    """The metadata store: hands out read and write transactions over one engine."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self._data_dir: str | None = None  # a SQLite file's directory: its free space is measured
        self._full = FullMark()  # found full where that cannot be measured (maxgate.space)
        if self.dialect == SQLITE and parsed.database not in (None, "", ":memory:"):
            directory = Path(parsed.database or "").parent
            directory.mkdir(parents=True, exist_ok=True)
            self._data_dir = str(directory)
        if self.dialect == SQLITE:
            _quiet_driver_log()
        self.engine: AsyncEngine = create_async_engine(url, **engine_options(self.dialect))
        self._reader: SqliteReader | None = None
        self._write_lock = asyncio.Lock()
        self._sync_engine: sa.Engine | None = None
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        if self.dialect == SQLITE:
            configure_sqlite(self.engine)
            if parsed.database not in (None, "", ":memory:"):
                # transact(): one connection on one writer thread.
                self._sync_engine = sa.create_engine(
                    parsed.set(drivername="sqlite"),
                    connect_args={"timeout": 30, "check_same_thread": False},
                    poolclass=sa.pool.StaticPool,
                    hide_parameters=True,
                )
                configure_sqlite(self._sync_engine)
                self._writer = concurrent.futures.ThreadPoolExecutor(
                    1, thread_name_prefix="maxgate-sqlite-writer"
                )
                # Point lookups: one raw sqlite3 connection on a reader thread, one hop each way
                # (~650 µs through aiosqlite's several hops, ~150 µs more through SQLAlchemy's
                # execute); in WAL mode a reader never waits for a writer.
                self._reader = SqliteReader(parsed.database or "")

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction (deferred: it never blocks writers)."""
        try:
            async with self.engine.connect() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise self._failed(exc, "read") from exc

    async def fetch_one(
        self, query: sa.Select[Any], params: dict[str, Any] | None = None
    ) -> LookupRow | None:
        """The first row of a point lookup (an indexed query returning one row), or None.

        Hot paths pass a statement built once with ``sa.bindparam`` (``lookups.lookup``) and
        the values in ``params``: on SQLite its compiled SQL is then cached and run on the
        reader thread's raw sqlite3 connection (see ``maxgate.store.lookups``); on PostgreSQL
        SQLAlchemy skips rebuilding its cache key. Rows are ``LookupRow`` on both.
        """
        if self._reader is not None:
            lookup = (
                self._reader.prepare(query) if params is not None else CompiledLookup.compile(query)
            )
            if lookup is not None:
                try:
                    return await self._reader.fetch_one(lookup, params or {})
                except sqlite3.Error as exc:
                    raise self._failed(exc, "read") from exc
        async with self.read() as conn:
            found = (await conn.execute(query, params)).first()
        return LookupRow.of(found) if found is not None else None

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed when the block ends without an exception.

        On SQLite the writers of this process take turns on an asyncio lock before BEGIN
        IMMEDIATE: SQLite admits one writer at a time anyway, and a writer that finds the file
        locked sleeps in SQLite's busy handler (1, 2, 5 … 100 ms) instead of being woken when
        the lock is free — under concurrent requests that cost 80 ms a write (P5). Other
        processes still wait through the busy timeout.
        """
        lock = self._write_lock if self.dialect == SQLITE else contextlib.nullcontext()
        try:
            async with lock, self.engine.connect() as conn:
                conn = await conn.execution_options(maxgate_immediate=True)
                async with conn.begin():
                    yield conn
        except sa.exc.IntegrityError as exc:
            raise StoreConflict(f"metadata store conflict: {exc.orig}") from exc
        except sa.exc.SQLAlchemyError as exc:
            raise self._failed(exc, "write") from exc
        self._full.clear()

    async def transact(self, work: Callable[[sa.Connection], T]) -> T:
        """Run ``work(conn)`` — plain synchronous statements — in one write transaction.

        For hot write paths: ``write()`` crosses to the driver's thread and back for every
        statement, BEGIN and COMMIT, and each crossing waits for a turn of a busy event loop;
        here the whole transaction is one crossing. On SQLite it runs on a dedicated writer
        thread with its own connection (same pragmas, BEGIN IMMEDIATE, the same in-process
        writer lock); on PostgreSQL through the async connection's ``run_sync``.
        """
        try:
            if self._sync_engine is None:
                async with self.engine.connect() as conn:
                    conn = await conn.execution_options(maxgate_immediate=True)
                    async with conn.begin():
                        result = await conn.run_sync(work)
            else:
                async with self._write_lock:
                    loop = asyncio.get_running_loop()
                    result = await loop.run_in_executor(self._writer, self._run_sync, work)
        except sa.exc.IntegrityError as exc:
            raise StoreConflict(f"metadata store conflict: {exc.orig}") from exc
        except sa.exc.SQLAlchemyError as exc:
            raise self._failed(exc, "write") from exc
        self._full.clear()
        return result

    def _run_sync(self, work: Callable[[sa.Connection], T]) -> T:
        assert self._sync_engine is not None
        with self._sync_engine.connect() as conn:
            conn = conn.execution_options(maxgate_immediate=True)
            with conn.begin():
                return work(conn)

    async def migrate(self) -> None:
        """Bring the schema up to the newest Alembic revision."""
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade)

    async def check(self) -> None:
        """A cheap round trip, for readiness checks and ``maxgate doctor``; ``StoreFull`` when
        a SQLite database's filesystem has (almost) no room left now, or a write found the
        store full lately where that cannot be measured (PostgreSQL's disk; ``maxgate.space``).
        """
        async with self.read() as conn:
            await conn.execute(sa.text("SELECT 1"))
        if self._data_dir is not None and (
            low := await asyncio.to_thread(low_on_space, self._data_dir)
        ):
            raise StoreFull(f"metadata store is full: {low}")
        if self._full.recent:
            raise StoreFull("metadata store was found full by a recent write")

    def _failed(self, exc: Exception, what: str) -> StoreError:
        """The error for a failed read or write: ``StoreFull`` for a full disk — also a SQLite
        I/O error while its filesystem has no room left (EDQUOT, a shared-memory file that
        cannot grow) — remembered for ``check`` unless free space shows it (module docs)."""
        if is_full(exc) or (
            is_sqlite_io_error(exc)
            and self._data_dir is not None
            and low_on_space(self._data_dir) is not None
        ):
            if self._data_dir is None:
                self._full.set()
            return StoreFull(f"metadata store {what} failed, the disk is full: {_reason(exc)}")
        return StoreError(f"metadata store {what} failed: {exc.__class__.__name__}")

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self._sync_engine is not None and self._writer is not None:
            await asyncio.get_running_loop().run_in_executor(
                self._writer, self._sync_engine.dispose
            )
            self._writer.shutdown(wait=True)
        if self._reader is not None:
            await self._reader.close()


def _reason(exc: Exception) -> str:
    """The driver's own message, first line (``str`` of SQLAlchemy's error adds SQL and a URL)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0]


def alembic_config() -> Config:
    """The Alembic configuration of the package's migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", _MIGRATIONS)
    return config


def _upgrade(sync_conn: sa.Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = sync_conn
    command.upgrade(config, "head")


def _no_debug(record: logging.LogRecord) -> bool:
    return record.levelno > logging.DEBUG


def _quiet_driver_log() -> None:
    """Keep aiosqlite's DEBUG lines out of every log, whatever the level: it logs each
    operation with its arguments, the SQL parameters (secrets among them). Its other lines
    still get through, as the logging configuration says."""
    logger = logging.getLogger("aiosqlite")
    if _no_debug not in logger.filters:
        logger.addFilter(_no_debug)
