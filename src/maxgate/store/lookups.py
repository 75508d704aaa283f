"""Point lookups on SQLite without SQLAlchemy on the hot path.

A point lookup (an indexed ``SELECT`` returning at most one row) is what every API call makes:
the instance by id, the message by its key, the file by id. Through SQLAlchemy Core each one
costs 100-300 µs of Python (cache key, parameter processing, result wrapping, pool checkout);
the SQLite query itself takes 20-40 µs. ``SqliteReader`` compiles a statement once with
SQLAlchemy, keeps its SQL text, parameter order and the type processors of its parameters and
columns, and then runs it on one long-lived raw ``sqlite3`` connection (autocommit, read-only).
Rows come back as ``LookupRow``: by position, by column name, or ``row._mapping[name]``.
"""

from __future__ import annotations

import sqlite3
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
        execution time (expanding IN lists, callable or literal-execute parameters,
        duplicate column names)."""
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


class SqliteReader:
    """Runs compiled point lookups on one long-lived read-only sqlite3 connection.

    The connection is in autocommit mode and every cursor is closed after its first row, so
    each lookup is its own short read transaction and sees every commit made before it (WAL:
    a reader never waits for a writer). It is opened on first use, after migrations have
    created the file, and is used from the event loop's thread (``check_same_thread=False``
    only lets ``close`` run from another thread).
    """

    def __init__(self, path: str, *, busy_timeout: float = 30.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
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

    def fetch_one(self, lookup: CompiledLookup, params: Mapping[str, Any]) -> LookupRow | None:
        """The first row of ``lookup`` run with ``params``, or None; raises ``sqlite3.Error``."""
        conn = self._conn if self._conn is not None else self._connect()
        cursor = conn.execute(lookup.sql, lookup.arguments(params))
        try:
            values = cursor.fetchone()
        finally:
            cursor.close()  # resets the statement: its read transaction ends here
        return lookup.row(values) if values is not None else None

    def close(self) -> None:
        """Close the connection (it reopens on the next lookup)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=MAX_STATEMENTS,
        )
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        conn.execute("PRAGMA query_only=ON")
        conn.execute(f"PRAGMA mmap_size={MMAP_SIZE}").fetchall()
        self._conn = conn
        return conn
