"""Where one downloadFile's time goes: its steps timed in-process on a benchmark journal.

Runs maxgate's own Runtime (no HTTP, no server) against a data dir and times, one call after
another, each step the downloadFile handler takes: authenticate, journal lookup, materialize
(a blob-store existence check for a stored file) and link signing. CPU is process-wide
(``time.process_time``: the event loop plus aiosqlite's and obstore's threads). It also counts
the aiosqlite thread round trips per call (by wrapping ``aiosqlite.Connection._execute`` in this
process only) and times the same journal lookup done as one sqlite3 query in one thread hop, to
show what the thread round trips cost.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite.core
import sqlalchemy as sa

from maxgate.api.shapes import file_link
from maxgate.domain.instances import Instances
from maxgate.domain.message_rows import row_to_message
from maxgate.runtime import Runtime
from maxgate.settings import load_settings
from maxgate.store import tables as t
from maxgate.store.messages import MESSAGE_QUERY as _MESSAGE_QUERY

_JOIN = (
    "SELECT m.*, f.* FROM messages m LEFT OUTER JOIN files f ON f.id = m.file_id"
    " WHERE m.instance_id = ? AND m.chat_id = ? AND m.id_message = ?"
)


class _HopCounter:
    """Counts calls queued to aiosqlite's connection threads."""

    def __init__(self) -> None:
        self.count = 0
        self._original = aiosqlite.core.Connection._execute

    def install(self) -> None:
        original = self._original

        async def counting(conn: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await original(conn, fn, *args, **kwargs)

        aiosqlite.core.Connection._execute = counting  # type: ignore[method-assign]

    def remove(self) -> None:
        aiosqlite.core.Connection._execute = self._original  # type: ignore[method-assign]


async def _time(
    name: str, calls: int, step: Callable[[int], Awaitable[object]], hops: _HopCounter
) -> str:
    for i in range(min(calls, 50)):  # warm-up
        await step(i)
    hops.count = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(calls):
        await step(i)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return (
        f"  {name:<44} {wall / calls * 1e6:7.0f} µs wall {cpu / calls * 1e6:7.0f} µs CPU "
        f"{hops.count / calls:5.1f} aiosqlite hops"
    )


async def _probe(data_dir: Path, requests: list[tuple[str, str]], calls: int) -> list[str]:
    settings = load_settings(overrides={"data_dir": str(data_dir), "rate_limits": "false"})
    runtime = Runtime(settings)
    await runtime.open()
    hops = _HopCounter()
    hops.install()
    parsed = []
    for path, body in requests:
        _, wa, _method, token = path.split("/")
        data = json.loads(body)
        parsed.append(
            (int(wa.removeprefix("waInstance")), token, data["chatId"], data["idMessage"])
        )
    local = threading.local()

    def one_query(instance_id: int, chat_id: str, id_message: str) -> Any:
        if not hasattr(local, "conn"):
            local.conn = sqlite3.connect(runtime.db.engine.url.database or "", timeout=30)
        return local.conn.execute(_JOIN, (instance_id, chat_id, id_message)).fetchone()

    sync_engine = sa.create_engine(f"sqlite:///{runtime.db.engine.url.database}")

    def core_query(instance_id: int, chat_id: str, id_message: str) -> Any:
        query = _MESSAGE_QUERY.where(
            t.messages.c.instance_id == instance_id,
            t.messages.c.chat_id == chat_id,
            t.messages.c.id_message == id_message,
        )
        with sync_engine.connect() as conn:
            row = conn.execute(query).first()
        return row_to_message(row) if row else None

    prebuilt = _MESSAGE_QUERY.where(
        t.messages.c.instance_id == sa.bindparam("instance_id"),
        t.messages.c.chat_id == sa.bindparam("chat_id"),
        t.messages.c.id_message == sa.bindparam("id_message"),
    )

    def prebuilt_query(instance_id: int, chat_id: str, id_message: str) -> Any:
        params = {"instance_id": instance_id, "chat_id": chat_id, "id_message": id_message}
        with sync_engine.connect() as conn:
            row = conn.execute(prebuilt, params).first()
        return row_to_message(row) if row else None

    def pick(i: int) -> tuple[int, str, str, str]:
        return parsed[i % len(parsed)]

    async def authenticate(i: int) -> object:
        instance_id, token, _chat, _id = pick(i)
        return await runtime.instances.authenticate(instance_id, token)

    uncached = Instances(runtime.db, auth_cache_seconds=0)

    async def authenticate_uncached(i: int) -> object:
        instance_id, token, _chat, _id = pick(i)
        return await uncached.authenticate(instance_id, token)

    async def journal_get(i: int) -> object:
        instance_id, _token, chat_id, id_message = pick(i)
        return await runtime.journal.get(instance_id, chat_id, id_message)

    async def journal_file_of(i: int) -> object:
        instance_id, _token, chat_id, id_message = pick(i)
        return await runtime.journal.file_of(instance_id, chat_id, id_message)

    files = []
    for i in range(min(len(parsed), 200)):
        message = await journal_get(i)
        files.append(message.file)  # type: ignore[attr-defined]

    async def files_get(i: int) -> object:
        return await runtime.files.get(files[i % len(files)].id)

    async def materialize(i: int) -> object:
        return await runtime.files.materialize(files[i % len(files)])

    async def link(i: int) -> object:
        return file_link(runtime.signer, files[i % len(files)], settings.file_retention)

    async def sqlite_one_hop(i: int) -> object:
        instance_id, _token, chat_id, id_message = pick(i)
        return await asyncio.to_thread(one_query, instance_id, chat_id, id_message)

    async def sqlite_inline(i: int) -> object:
        instance_id, _token, chat_id, id_message = pick(i)
        return one_query(instance_id, chat_id, id_message)

    async def core_one_hop(i: int) -> object:
        instance_id, _token, chat_id, id_message = pick(i)
        return await asyncio.to_thread(core_query, instance_id, chat_id, id_message)

    async def prebuilt_one_hop(i: int) -> object:
        instance_id, _token, chat_id, id_message = pick(i)
        return await asyncio.to_thread(prebuilt_query, instance_id, chat_id, id_message)

    lines = [f"steps of downloadFile, {calls} sequential calls each (in-process, no HTTP):"]
    try:
        lines.append(await _time("instances.authenticate (1 s cache)", calls, authenticate, hops))
        lines.append(
            await _time("same, cache off (the lookup)", calls, authenticate_uncached, hops)
        )
        lines.append(
            await _time("journal.file_of (downloadFile's join)", calls, journal_file_of, hops)
        )
        lines.append(await _time("journal.get (message + file join)", calls, journal_get, hops))
        lines.append(await _time("files.get (the link route's lookup)", calls, files_get, hops))
        lines.append(await _time("files.materialize (a local stat)", calls, materialize, hops))
        lines.append(await _time("file_link (HMAC-SHA256)", calls, link, hops))
        lines.append(
            await _time("same join: sqlite3 on the loop (no hop)", calls, sqlite_inline, hops)
        )
        lines.append(
            await _time("same join: sqlite3, one to_thread hop", calls, sqlite_one_hop, hops)
        )
        lines.append(
            await _time(
                "same Core query, sync engine, one to_thread hop", calls, core_one_hop, hops
            )
        )
        lines.append(
            await _time("same, statement prebuilt with bindparams", calls, prebuilt_one_hop, hops)
        )
    finally:
        hops.remove()
        sync_engine.dispose()
        await runtime.close()
    return lines


def lookup_latency(db_path: Path, requests: list[tuple[str, str]]) -> tuple[float, float]:
    """p50 and p99 (µs) of the downloadFile join alone, sqlite3 in this thread, over the sample:
    how the raw lookup scales with the journal once the per-request overhead is gone."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    args = []
    for path, body in requests:
        data = json.loads(body)
        instance_id = int(path.split("/")[1].removeprefix("waInstance"))
        args.append((instance_id, data["chatId"], data["idMessage"]))
    for arg in args[:500]:  # warm-up
        conn.execute(_JOIN, arg).fetchone()
    times = []
    for arg in args:
        started = time.perf_counter_ns()
        if conn.execute(_JOIN, arg).fetchone() is None:
            raise RuntimeError(f"no journal row for {arg}")
        times.append((time.perf_counter_ns() - started) / 1000)
    conn.close()
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.99)]


def breakdown(data_dir: Path, requests: list[tuple[str, str]], calls: int = 2000) -> list[str]:
    """Time the steps of downloadFile in this process (run it with the server stopped)."""
    return asyncio.run(_probe(data_dir, requests, calls))
