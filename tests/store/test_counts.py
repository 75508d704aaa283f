"""Counts for /metrics: files by state and queue depths, from one read transaction."""

from __future__ import annotations

import types
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from maxgate.store import counts as counts_module
from maxgate.store import tables as t
from maxgate.store.counts import counts
from maxgate.store.database import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'maxgate.db'}")
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()


def _file(file_id: str, state: str) -> dict[str, object]:
    return {
        "id": file_id, "instance_id": 1, "state": state, "file_name": "a", "mime_type": "b",
        "created_at": 0.0, "expires_at": 0.0,
    }  # fmt: skip


async def test_files_by_state_and_queue_depths(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(t.files.insert(), [_file("a", "stored"), _file("b", "stored")])
        await conn.execute(t.files.insert(), [_file("c", "remote")])
        await conn.execute(
            t.outbox.insert(),
            [
                {"instance_id": 1, "message_id": n, "state": state, "not_before": 0.0,
                 "created_at": 0.0}
                for n, state in enumerate(("pending", "pending", "sending"))
            ],
        )  # fmt: skip
        await conn.execute(
            t.notifications.insert(),
            {"instance_id": 1, "type_webhook": "x", "body": "{}", "created_at": 0.0},
        )
    found = await counts(db)
    assert found.files_by_state == {"stored": 2, "remote": 1}
    assert found.queue_depths == {"outbox": 2, "notifications": 1}


async def test_the_notifications_depth_needs_the_table(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the notifications table existed the counts worked without it (and would again
    on a schema without it). Moved here from tests/api/test_metrics.py with the query."""
    monkeypatch.setattr(counts_module, "t", types.SimpleNamespace(metadata=sa.MetaData()))
    found = await counts(db)
    assert found.queue_depths == {"outbox": 0}
