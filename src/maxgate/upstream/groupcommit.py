"""A group commit: writes of concurrent callers joined into one transaction.

The sandbox writes its history before it reports a message; a burst of inbound messages then
costs one transaction per batch instead of one each (measured in-process: 1,000 concurrent
messages ~1,300/s with a transaction each, ~1,900/s batched; ~2,000/s with no history).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Hands the items of every caller waiting at once to one call of ``write``.

    Each caller returns once its items are written, or raises what ``write`` raised for its
    batch; one batch is written at a time, in the order the items came.
    """

    def __init__(self, write: Callable[[list[T]], Awaitable[None]]) -> None:
        self._write = write
        self._pending: list[tuple[list[T], asyncio.Future[None]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def write(self, items: list[T]) -> None:
        """Write ``items`` with whatever else is waiting; returns when they are written."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append((items, done))
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._write_pending())
        await asyncio.shield(done)  # a caller that gives up does not undo the others' batch

    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._write([item for items, _ in batch for item in items])
            except Exception as exc:  # handed to every waiter of the batch, which raise it
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def close(self) -> None:
        """Finish the writes under way."""
        if self._drain is not None:
            await self._drain
