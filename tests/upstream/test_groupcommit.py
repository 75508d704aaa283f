"""GroupCommit: concurrent writers share one write; each learns how its batch went."""

from __future__ import annotations

import asyncio

import pytest

from maxgate.upstream.groupcommit import GroupCommit


async def test_waiting_callers_share_a_write_in_order() -> None:
    writes: list[list[int]] = []

    async def write(items: list[int]) -> None:
        await asyncio.sleep(0.01)
        writes.append(items)

    commit: GroupCommit[int] = GroupCommit(write)
    await asyncio.gather(*[commit.write([n, n + 100]) for n in range(10)])
    assert [item for batch in writes for item in batch] == [
        item for n in range(10) for item in (n, n + 100)
    ]
    assert len(writes) == 1  # all ten came before the write began
    await commit.write([7])
    assert writes[-1] == [7]
    await commit.close()


async def test_a_failed_write_fails_its_batch_only() -> None:
    calls = 0

    async def write(items: list[str]) -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if "bad" in items:
            raise OSError("disk")

    commit: GroupCommit[str] = GroupCommit(write)
    first = asyncio.create_task(commit.write(["ok"]))
    await asyncio.sleep(0)  # the first batch is under way
    second = asyncio.create_task(commit.write(["bad"]))
    third = asyncio.create_task(commit.write(["fine"]))
    await first
    with pytest.raises(OSError, match="disk"):
        await second
    with pytest.raises(OSError):  # written in the same batch as "bad"
        await third
    await commit.write(["later"])  # the next batch works again
    assert calls == 3


async def test_a_caller_that_gives_up_leaves_the_write_to_happen() -> None:
    written: list[str] = []
    release = asyncio.Event()

    async def write(items: list[str]) -> None:
        await release.wait()
        written.extend(items)

    commit: GroupCommit[str] = GroupCommit(write)
    waiter = asyncio.create_task(commit.write(["kept"]))
    await asyncio.sleep(0)
    waiter.cancel()
    release.set()
    await commit.close()
    assert written == ["kept"]
