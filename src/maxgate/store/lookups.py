"""Point lookups on SQLite without SQLAlchemy on the hot path, on a reader thread.

A point lookup (an indexed ``SELECT`` returning at most one row) is what every API call makes:
the instance by id, the message by its key, the file by id. Through SQLAlchemy Core each one
costs 100-300 µs of Python (cache key, parameter processing, result wrapping, pool checkout);
the SQLite query itself takes 10-40 µs. ``CompiledLookup`` compiles a statement once with
SQLAlchemy and keeps its SQL text, parameter order and the type processors of its parameters
and columns; ``SqliteReader`` runs it on one long-lived raw ``sqlite3`` connection (autocommit,
read-only) owned by a dedicated thread, so no ``sqlite3`` call blocks the event loop. Rows come
back as ``LookupRow``: by position, by column name, or ``row._mapping[name]``.

``tests/store/test_lookups.py`` checks the compiled form against SQLAlchemy's own execution on
every lookup statement of the repositories (``LOOKUPS``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

MAX_STATEMENTS = 64  # compiled lookups kept; statements are module-level constants
MMAP_SIZE = 1 << 30
"""Bytes of the database file the reader maps into memory (``PRAGMA mmap_size``).

A point lookup on a journal far larger than SQLite's page cache touches a few pages that are
not cached; through ``pread`` each costs a system call and a copy, through the map a memory
read of the kernel's page cache: the downloadFile lookup on a 100k-row journal went from 44 to
27 µs here. The map is address space, not memory; pages it touches count as shared file pages.
Only this connection maps the file: it is the hot one and it is read-only (the map is
``PROT_READ``). SQLite's caveat: an I/O error on a mapped page arrives as SIGBUS and ends the
worker, where ``pread`` would have returned an error.
"""

_DIALECT = SQLiteDialect_pysqlite()
_Processor = Callable[[Any], Any]

LOOKUPS: list[sa.Select[Any]] = []
"""Every point-lookup statement the repositories hand to ``Database.fetch_one`` (``lookup``)."""


def lookup(statement: sa.Select[Any]) -> sa.Select[Any]:
    """Declare a module-level point-lookup statement (built once, values as ``sa.bindparam``).

    Returns the statement itself; it is listed in ``LOOKUPS`` so that a test runs each one
    through both the compiled fast path and SQLAlchemy and compares the rows.
    """
    LOOKUPS.append(statement)
    return statement


class LookupRow:
    """One row of a point lookup: ``row[0]``, ``row.column`` or ``row._mapping["column"]``."""

    __slots__ = ("_mapping", "_values")

    def __init__(self, keys: tuple[str, ...], values: tuple[Any, ...]) -> None:
        self._values = values
        self._mapping: Mapping[str, Any] = dict(zip(keys, values, strict=True))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(f"the row has no column {name!r}") from None

    def __getitem__(self, index: int) -> Any:
        return self._values[index]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __repr__(self) -> str:
        return f"LookupRow({self._values!r})"

    def _asdict(self) -> dict[str, Any]:
        return dict(self._mapping)

    @classmethod
    def of(cls, row: sa.Row[Any]) -> LookupRow:
        """The same row as SQLAlchemy returned it (the PostgreSQL and fallback paths)."""
        return cls(tuple(row._fields), tuple(row))


@dataclass(frozen=True, slots=True)
class CompiledLookup:
    """A SELECT compiled once for SQLite: its SQL, its parameters and its columns."""

    sql: str
    params: tuple[tuple[str, bool, Any, _Processor | None], ...]  # name, required, value, bind
    keys: tuple[str, ...]
    results: tuple[tuple[int, _Processor], ...]  # column position, result processor

    @classmethod
    def compile(cls, statement: sa.Select[Any]) -> CompiledLookup | None:
        """Compile ``statement``; None when it needs something only SQLAlchemy can do at
        execution time (expanding IN lists, callable or literal-execute parameters, names for
        unlabelled expressions, duplicate column names)."""
        if not all(isinstance(c, sa.Column | sa.Label) for c in statement.selected_columns):
            return None  # an unnamed expression: SQLAlchemy names it ("max_1") when it runs
        compiled = statement.compile(dialect=_DIALECT)
        if compiled.literal_execute_params or compiled.post_compile_params:
            return None
        keys = tuple(statement.selected_columns.keys())
        if len(set(keys)) != len(keys):
            return None
        params = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            if bind.expanding or bind.callable is not None:
                return None
            processor = bind.type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
            params.append((name, bind.required, bind.value, processor))
        results = []
        for position, column in enumerate(statement.selected_columns):
            processor = column.type.dialect_impl(_DIALECT).result_processor(_DIALECT, None)
            if processor is not None:
                results.append((position, processor))
        return cls(compiled.string, tuple(params), keys, tuple(results))

    def arguments(self, given: Mapping[str, Any]) -> tuple[Any, ...]:
        """The positional arguments of one execution; ``given`` names the bind parameters."""
        values = []
        for name, required, default, processor in self.params:
            if name in given:
                value = given[name]
            elif required:
                raise sa.exc.ArgumentError(f"a value is required for bind parameter {name!r}")
            else:
                value = default
            values.append(value if processor is None or value is None else processor(value))
        return tuple(values)

    def row(self, values: tuple[Any, ...]) -> LookupRow:
        """A raw result tuple as a LookupRow, with the column types' conversions applied."""
        if self.results:
            converted = list(values)
            for position, processor in self.results:
                converted[position] = processor(converted[position])
            values = tuple(converted)
        return LookupRow(self.keys, values)


_Lookup = tuple["asyncio.Future[tuple[Any, ...] | None]", str, tuple[Any, ...]]
_Job = tuple[asyncio.AbstractEventLoop, list[_Lookup]]
_Done = tuple[
    "asyncio.Future[tuple[Any, ...] | None]", tuple[Any, ...] | None, BaseException | None
]


class SqliteReader:
    """Runs compiled point lookups on one long-lived read-only sqlite3 connection, owned by a
    dedicated thread (``maxgate-sqlite-reader``), so the event loop never waits on SQLite.

    The connection is in autocommit mode and every cursor is closed after its first row, so
    each lookup is its own short read transaction and sees every commit made before it (WAL:
    a reader never waits for a writer). It is opened on the first lookup, after migrations have
    created the file.

    A lookup is one hop each way, and a hop is paid per batch, not per lookup. The loop notes
    (SQL, arguments, a future) and goes on; the lookups noted during one turn of the loop go
    to the thread together, as one job, at the end of that turn (``call_soon``); the thread
    runs every job queued by then, one lookup after another, and completes their futures with
    a single ``call_soon_threadsafe`` per loop. Waking a thread costs more than the lookup
    itself (tens of µs in a VM, where a wake-up on another CPU is an interrupt between
    virtual CPUs), so under load one wake-up each way serves many lookups. The thread
    converts nothing: parameters are converted before queuing and rows after
    (``CompiledLookup``), on the loop, so it holds the GIL only briefly.

    Measured (downloadFile's join on a 100k-row journal, 2-vCPU VM): a lookup costs ~13 µs on
    the loop itself, ~29 µs one at a time through this thread (two wake-ups) and ~16 µs CPU each
    when 64 run at once (one wake-up serves many). Served by granian at 64 connections the
    server's CPU per downloadFile stayed within noise of the inline version (106-121 against
    116-128 µs), as the loop is woken by granian's threads for every request anyway.
    """

    def __init__(self, path: str, *, busy_timeout: float = 30.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None  # the thread's; read by tests only
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # The lookups noted during this turn of each loop, sent to the thread at its end.
        self._pending: dict[asyncio.AbstractEventLoop, list[_Lookup]] = {}
        # id(statement) -> (statement, its compiled form); the statement is kept so that its
        # id cannot be reused by another object while the entry exists.
        self._compiled: dict[int, tuple[sa.Select[Any], CompiledLookup | None]] = {}

    def prepare(self, statement: sa.Select[Any]) -> CompiledLookup | None:
        """The compiled form of ``statement`` (cached by identity), None if it has none.

        Meant for statements built once (module constants with ``sa.bindparam``); at most
        ``MAX_STATEMENTS`` are kept, others are compiled on every call.
        """
        found = self._compiled.get(id(statement))
        if found is not None and found[0] is statement:
            return found[1]
        compiled = CompiledLookup.compile(statement)
        if len(self._compiled) < MAX_STATEMENTS:
            self._compiled[id(statement)] = (statement, compiled)
        return compiled

    async def fetch_one(
        self, lookup: CompiledLookup, params: Mapping[str, Any]
    ) -> LookupRow | None:
        """The first row of ``lookup`` run with ``params``, or None; raises ``sqlite3.Error``."""
        arguments = lookup.arguments(params)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Any, ...] | None] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._send, loop)
        pending.append((future, lookup.sql, arguments))
        values = await future
        return lookup.row(values) if values is not None else None

    def _send(self, loop: asyncio.AbstractEventLoop) -> None:
        """At the end of a turn of ``loop``: hand the lookups it noted to the thread."""
        batch = self._pending.pop(loop)
        thread = self._thread
        if thread is None or not thread.is_alive():  # first use, or a forked child
            self._start()
        self._jobs.put((loop, batch))

    async def close(self) -> None:
        """Stop the thread, which closes the connection (a later lookup starts them again)."""
        with self._lock:
            thread, self._thread = self._thread, None
            jobs, self._jobs = self._jobs, queue.SimpleQueue()
        if thread is not None and thread.is_alive():
            jobs.put(None)
            await asyncio.to_thread(thread.join)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._jobs = queue.SimpleQueue()
            self._conn = None
            self._thread = threading.Thread(
                target=self._serve, args=(self._jobs,), name="maxgate-sqlite-reader", daemon=True
            )
            self._thread.start()

    def _serve(self, jobs: queue.SimpleQueue[_Job | None]) -> None:
        """The thread: run queued lookups until ``None`` arrives."""
        conn: sqlite3.Connection | None = None
        try:
            while True:
                batch = [jobs.get()]
                with contextlib.suppress(queue.Empty):
                    while len(batch) < 64:
                        batch.append(jobs.get_nowait())
                done: dict[asyncio.AbstractEventLoop, list[_Done]] = collections.defaultdict(list)
                for job in batch:
                    if job is None:
                        _complete_all(done)
                        return
                    loop, lookups = job
                    finished = done[loop]
                    for future, sql, arguments in lookups:
                        try:
                            if conn is None:
                                conn = self._connect()
                            cursor = conn.execute(sql, arguments)
                            try:
                                row = cursor.fetchone()
                            finally:
                                cursor.close()  # resets the statement: its read transaction ends
                            finished.append((future, row, None))
                        except Exception as exc:  # delivered to the caller, as it would be inline
                            finished.append((future, None, exc))
                _complete_all(done)
        finally:
            if conn is not None:
                conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,  # only lets a test look at it from another thread
            cached_statements=MAX_STATEMENTS,
        )
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        conn.execute("PRAGMA query_only=ON")
        conn.execute(f"PRAGMA mmap_size={MMAP_SIZE}").fetchall()
        self._conn = conn
        return conn


def _complete_all(done: Mapping[asyncio.AbstractEventLoop, list[_Done]]) -> None:
    """Hand each loop its finished lookups in one call (a closed loop has nobody waiting)."""
    for loop, finished in done.items():
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_complete, finished)


def _complete(finished: list[_Done]) -> None:
    """On the loop: complete the futures of finished lookups (a cancelled caller left)."""
    for future, row, error in finished:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(row)
