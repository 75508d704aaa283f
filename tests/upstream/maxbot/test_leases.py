"""Two ``MaxBot`` adapters — two worker processes of one server — over one database and one
real ``maxgate fakemax``: only the lease owner polls a bot, and when it stops (or its lease runs
out after a crash) the other takes over from the stored marker, no update lost or repeated."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from maxgate.domain.messenger import InboundMessage
from maxgate.net.client import OutboundClient
from maxgate.store import instances as instance_rows
from maxgate.store import maxbot as store
from maxgate.store.database import Database
from maxgate.upstream.maxbot import MaxBot

TOKEN = "lease-test-token"
INSTANCE = 1103000001


class Recorder:
    """A sink that keeps the text of each message it is handed."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def on_message(self, message: InboundMessage) -> None:
        self.texts.append(message.text or "")

    async def on_edit(self, message: InboundMessage) -> None:
        pass

    async def on_delete(self, instance_id: int, **_: Any) -> None:
        pass

    async def on_chat(self, instance_id: int, chat_id: str, *, name: str, phone: int) -> None:
        pass

    async def on_status(self, instance_id: int, chat_id: str, id_message: str, status: str) -> None:
        pass

    async def on_state(self, instance_id: int, state: str) -> None:
        pass


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'maxgate.db'}")
    await database.migrate()
    row = {
        "id": INSTANCE,
        "token_hash": "0" * 64,
        "chat_id": f"{INSTANCE}@c.us",
        "phone": 0,
        "created_at": time.time(),
        "upstream": "maxbot",
    }
    await instance_rows.insert(database, row)
    try:
        yield database
    finally:
        await database.close()


@contextlib.asynccontextmanager
async def running(
    db: Database, client: OutboundClient, base: str, **options: Any
) -> AsyncIterator[tuple[MaxBot, Recorder, asyncio.Task[None]]]:
    """A started adapter running its bots (as one worker process's ``run``, the task) for
    the block."""
    adapter = MaxBot(db, lambda: client, base_url=base, poll_timeout=1, scan_interval=0.1)
    for name, value in options.items():
        setattr(adapter, name, value)
    sink = Recorder()
    await adapter.start(sink)
    task = asyncio.create_task(adapter.run())
    try:
        yield adapter, sink, task
    finally:
        await halt(task)


async def halt(task: asyncio.Task[None]) -> None:
    """Stop an adapter's ``run``, as the runtime does at shutdown."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def user_of(base: str) -> int:
    user = httpx.post(f"{base}/_control/users", json={"first_name": "Ivan"}).json()
    httpx.post(f"{base}/_control/users/{user['user_id']}/start", json={})
    return int(user["user_id"])


def say(base: str, user_id: int, *texts: str) -> None:
    for text in texts:
        httpx.post(f"{base}/_control/messages", json={"user_id": user_id, "text": text})


def polls(log: Path) -> int:
    """How many ``GET /updates`` the fake has answered."""
    if not log.exists():
        return 0
    lines = log.read_text().splitlines()
    return sum(json.loads(line)["path"] == "/updates" for line in lines)


async def test_one_adapter_polls_and_the_other_takes_over_when_it_stops(
    fake: tuple[str, Path], client: OutboundClient, db: Database
) -> None:
    base, log = fake
    user = user_of(base)
    async with running(db, client, base) as (first, first_sink, first_task):
        await first.enroll(INSTANCE, TOKEN)
        async with running(db, client, base) as (second, second_sink, _task):
            await until(lambda: _polling(db, first, log))
            before = polls(log)
            await asyncio.sleep(2.5)  # 25 scans of each adapter; 1 s long polls, idle
            assert polls(log) - before <= 3  # one poller's (two would make five or more)
            assert INSTANCE not in second._bots
            assert (await store.lease(db, INSTANCE))[0] == first.lease_owner
            say(base, user, *(f"one {i}" for i in range(5)))
            await until(lambda: _has(first_sink, 5))
            await until(lambda: _marker_saved(db, first))
            await halt(first_task)  # a worker shutting down: its lease is let go at once
            assert (await store.lease(db, INSTANCE))[0] != first.lease_owner
            say(base, user, *(f"two {i}" for i in range(5)))
            await until(lambda: _has(second_sink, 5))
            assert (await store.lease(db, INSTANCE))[0] == second.lease_owner
            await asyncio.sleep(0.3)
    assert first_sink.texts == [f"one {i}" for i in range(5)]
    assert second_sink.texts == [f"two {i}" for i in range(5)]


async def test_a_crashed_owners_lease_runs_out_and_is_taken_over(
    fake: tuple[str, Path], client: OutboundClient, db: Database
) -> None:
    base, log = fake
    user = user_of(base)
    async with running(db, client, base) as (first, _sink, _task):
        await first.enroll(INSTANCE, TOKEN)
        await until(lambda: _polling(db, first, log))
    # A process that died without letting go: its lease lives 1.5 s more.
    assert await store.take_lease(
        db, INSTANCE, "gone/1/x", now=time.time() - 20, until=time.time() + 1.5
    )
    say(base, user, "while nobody polls")
    async with running(db, client, base, lease_seconds=3.0) as (second, sink, _task):
        await asyncio.sleep(0.8)
        assert sink.texts == [] and INSTANCE not in second._bots  # the lease is still live
        await until(lambda: _has(sink, 1), timeout=5)
        say(base, user, "after")
        await until(lambda: _has(sink, 2))
        assert (await store.lease(db, INSTANCE))[0] == second.lease_owner
    assert sink.texts == ["while nobody polls", "after"]


async def test_a_stopped_adapter_lets_its_leases_go(
    fake: tuple[str, Path], client: OutboundClient, db: Database
) -> None:
    base, log = fake
    async with running(db, client, base) as (first, _sink, _task):
        await first.enroll(INSTANCE, TOKEN)
        await until(lambda: _polling(db, first, log))
    assert await store.lease(db, INSTANCE) == (None, None)


async def _polling(db: Database, adapter: MaxBot, log: Path) -> bool:
    owner, _until = await store.lease(db, INSTANCE)
    return owner == adapter.lease_owner and polls(log) >= 2  # enroll's, then the runner's


async def _has(sink: Recorder, count: int) -> bool:
    assert len(sink.texts) <= count, sink.texts
    return len(sink.texts) == count


async def _marker_saved(db: Database, adapter: MaxBot) -> bool:
    bot, runner = await store.get(db, INSTANCE), adapter._bots.get(INSTANCE)
    return bot is not None and runner is not None and bot.marker == runner.marker
