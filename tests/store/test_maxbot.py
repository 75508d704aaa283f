"""The MAX bots' leases (store.maxbot): one owner at a time, renewal, expiry, takeover and a
marker fenced by the lease, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from maxgate.store import maxbot as store
from maxgate.store.database import Database

BOT = 1101


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'maxgate.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A migrated database holding one bot."""
    database = Database(db_url)
    await database.migrate()
    await store.add(database, BOT, "token", marker=5)
    try:
        yield database
    finally:
        await database.close()


async def test_one_owner_at_a_time_until_its_lease_runs_out(db: Database) -> None:
    assert await store.lease(db, BOT) == (None, None)
    assert await store.take_lease(db, BOT, "a", now=100.0, until=115.0)
    assert await store.lease(db, BOT) == ("a", 115.0)
    assert not await store.take_lease(db, BOT, "b", now=101.0, until=116.0)
    assert not await store.take_lease(db, BOT, "b", now=114.9, until=129.9)
    assert await store.lease(db, BOT) == ("a", 115.0)


async def test_the_owner_renews_and_a_lapsed_lease_is_taken_over(db: Database) -> None:
    assert await store.take_lease(db, BOT, "a", now=100.0, until=115.0)
    assert await store.take_lease(db, BOT, "a", now=105.0, until=120.0)  # renewed
    assert not await store.take_lease(db, BOT, "b", now=116.0, until=131.0)  # still a's
    assert await store.take_lease(db, BOT, "b", now=120.0, until=135.0)  # a crashed: b's now
    assert not await store.take_lease(db, BOT, "a", now=121.0, until=136.0)  # a woke up late
    assert await store.lease(db, BOT) == ("b", 135.0)


async def test_a_released_lease_is_taken_at_once_and_only_by_its_owner(db: Database) -> None:
    assert await store.take_lease(db, BOT, "a", now=100.0, until=115.0)
    assert not await store.release_lease(db, BOT, "b")
    assert await store.release_lease(db, BOT, "a")
    assert await store.lease(db, BOT) == (None, None)
    assert await store.take_lease(db, BOT, "b", now=101.0, until=116.0)
    assert not await store.release_lease(db, BOT, "a")  # a no longer holds it
    assert await store.lease(db, BOT) == ("b", 116.0)


async def test_concurrent_takers_get_one_owner(db: Database) -> None:
    owners = [f"p{i}" for i in range(8)]
    taken = await asyncio.gather(
        *(store.take_lease(db, BOT, o, now=100.0, until=115.0) for o in owners)
    )
    assert taken.count(True) == 1
    assert (await store.lease(db, BOT))[0] == owners[taken.index(True)]


async def test_only_the_lease_owner_moves_the_marker(db: Database) -> None:
    assert await store.take_lease(db, BOT, "a", now=100.0, until=115.0)
    assert await store.set_marker(db, BOT, 7, owner="a")
    assert not await store.set_marker(db, BOT, 9, owner="b")
    assert await store.take_lease(db, BOT, "b", now=120.0, until=135.0)
    assert not await store.set_marker(db, BOT, 8, owner="a")  # a lost it: no going back
    bot = await store.get(db, BOT)
    assert bot is None or bot.marker == 7  # get joins instances: none made here
    assert await store.set_marker(db, BOT, 10)  # no owner named: as before leases


async def test_no_lease_for_a_bot_without_a_row(db: Database) -> None:
    assert not await store.take_lease(db, 999, "a", now=100.0, until=115.0)
    assert await store.lease(db, 999) == (None, None)
