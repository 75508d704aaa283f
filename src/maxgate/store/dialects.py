"""Where SQLite and PostgreSQL differ: engine options, SQLite's pragmas, upserts, row locks.

Every statement of the repositories (``maxgate.store.messages`` and its siblings) is written once
in SQLAlchemy Core; the few places where the two engines need different SQL or settings are the
functions of this module, and ``Database`` (``maxgate.store.database``) picks its execution
strategy per engine (threads for SQLite, the async driver for PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
_Select = TypeVar("_Select", bound=sa.Select[Any])


def engine_options(dialect: str) -> dict[str, Any]:
    """``create_async_engine`` options: a busy timeout on SQLite, a pool on PostgreSQL.

    Statement parameters carry secrets (an instance's webhook token and secret), so both hide
    them from SQLAlchemy's messages and logs.
    """
    if dialect == SQLITE:
        return {"connect_args": {"timeout": 30}, "hide_parameters": True}
    return {"pool_size": 10, "max_overflow": 10, "pool_pre_ping": True, "hide_parameters": True}


def configure_sqlite(engine: AsyncEngine | sa.Engine) -> None:
    """WAL, a busy timeout, foreign keys, and our own BEGIN so writes can be IMMEDIATE.

    A connection executing with the option ``maxgate_immediate`` begins ``BEGIN IMMEDIATE``:
    two writers then queue on the busy timeout instead of failing half-way with "database is
    locked". Reads stay deferred, so they never block writers.
    """
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook emit BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get("maxgate_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def upsert(
    dialect: str,
    table: sa.Table,
    values: dict[str, Any],
    *,
    keys: list[str],
    update: list[str],
    fill: Sequence[str] = (),
) -> sa.Executable:
    """INSERT … ON CONFLICT (keys) DO UPDATE SET update-columns, for SQLite and PostgreSQL.

    ``fill`` columns (numbers) take the new value only when it is not 0: what is known stays
    known when a later row does not carry it.
    """
    if dialect == POSTGRESQL:
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(table).values(**values)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table).values(**values)
    changes: dict[str, Any] = {c: stmt.excluded[c] for c in update}
    for c in fill:
        changes[c] = sa.func.coalesce(sa.func.nullif(stmt.excluded[c], 0), table.c[c])
    return stmt.on_conflict_do_update(index_elements=keys, set_=changes)  # type: ignore[no-any-return]


def insert_new(dialect: str, table: sa.Table, *, keys: list[str]) -> sa.Executable:
    """INSERT … ON CONFLICT (keys) DO NOTHING, for SQLite and PostgreSQL: a row whose keys are
    there already is left as it was (rows go as the statement's parameters)."""
    if dialect == POSTGRESQL:
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table)
    return stmt.on_conflict_do_nothing(index_elements=keys)  # type: ignore[no-any-return]


def locks_rows(dialect: str) -> bool:
    """Whether a write transaction must lock the rows it means to change (PostgreSQL's
    ``FOR UPDATE``); SQLite's write transactions begin ``IMMEDIATE`` and already exclude
    every other writer."""
    return dialect == POSTGRESQL


def lock_rows(dialect: str, query: _Select) -> _Select:
    """``query`` locking the rows it reads until the write transaction ends (``locks_rows``):
    ``SELECT … FOR UPDATE`` on PostgreSQL, the query as it is on SQLite."""
    return query.with_for_update() if locks_rows(dialect) else query
