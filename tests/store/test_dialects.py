"""Where SQLite and PostgreSQL differ: the SQL each gets from the same call."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from maxgate.store import tables as t
from maxgate.store.dialects import engine_options, insert_new, lock_rows, locks_rows, upsert

DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}


def _sql(statement: sa.Executable, dialect: str) -> str:
    return str(statement.compile(dialect=DIALECTS[dialect]))


def test_rows_are_locked_on_postgresql_only() -> None:
    query = sa.select(t.instances.c.id).where(t.instances.c.id == 1)
    assert locks_rows("postgresql") and not locks_rows("sqlite")
    assert _sql(lock_rows("postgresql", query), "postgresql").endswith("FOR UPDATE")
    assert "FOR UPDATE" not in _sql(lock_rows("sqlite", query), "sqlite")


def test_an_upsert_is_insert_on_conflict_on_both() -> None:
    values = {"sha256": "a", "size": 1, "key": "k", "created_at": 0.0}
    for dialect in DIALECTS:
        sql = _sql(upsert(dialect, t.blobs, values, keys=["sha256"], update=["size"]), dialect)
        assert "ON CONFLICT (sha256) DO UPDATE SET size = excluded.size" in sql, dialect
        assert "created_at =" not in sql


def test_fill_columns_keep_a_known_value() -> None:
    values = {c: sa.bindparam(c) for c in ("instance_id", "chat_id", "phone", "last_at")}
    statement = upsert(
        "sqlite", t.chats, values, keys=["instance_id", "chat_id"], update=[], fill=["phone"]
    )
    assert "phone = coalesce(nullif(excluded.phone, ?), chats.phone)" in _sql(statement, "sqlite")


def test_engine_options_hide_parameters_on_both() -> None:
    assert all(engine_options(d)["hide_parameters"] for d in DIALECTS)
    assert "pool_size" in engine_options("postgresql") and "pool_size" not in engine_options(
        "sqlite"
    )


def test_insert_new_skips_a_row_that_is_there_on_both() -> None:
    keys = ["instance_id", "chat_id", "id_message"]
    for dialect in DIALECTS:
        sql = _sql(insert_new(dialect, t.sandbox_messages, keys=keys), dialect)
        assert sql.startswith("INSERT INTO sandbox_messages"), dialect
        assert sql.endswith("ON CONFLICT (instance_id, chat_id, id_message) DO NOTHING"), dialect
