"""Per-instance drains under one dispatch loop: what the outbox and the webhook worker share.

Both keep a queue per instance that must leave in order, one item at a time: a dispatch pass
finds the instances whose queue head is due and starts one drain task for each that has none
running; a drain works until its instance has nothing due, then wakes the loop for another look.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from maxgate.errors import MaxgateError

log = logging.getLogger(__name__)


class Drains:
    """The dispatch loop, its wake-up event and the drain task of each busy instance."""

    def __init__(self, what: str) -> None:
        self.what = what  # for log lines: "sending", "webhook delivery"
        self.wake = asyncio.Event()
        self._busy: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def busy(self, instance_id: int) -> bool:
        """Whether a drain of this instance is running (it picks new items up by itself)."""
        return instance_id in self._busy

    def start(self, instance_id: int, drain: Callable[[int], Awaitable[None]]) -> None:
        """Run ``drain(instance_id)`` as the instance's one drain task."""
        self._busy.add(instance_id)
        task = asyncio.create_task(self._run_drain(instance_id, drain))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_drain(self, instance_id: int, drain: Callable[[int], Awaitable[None]]) -> None:
        try:
            await drain(instance_id)
        except MaxgateError:
            log.exception("%s for instance %s failed", self.what, instance_id)
        finally:
            self._busy.discard(instance_id)
            self.wake.set()

    async def run(self, dispatch: Callable[[], Awaitable[float]], *, tick: float) -> None:
        """Work forever: ``dispatch`` (which returns seconds until something is due), then wait
        for that long, at most ``tick``, or until woken."""
        while True:
            self.wake.clear()
            try:
                wait = await dispatch()
            except MaxgateError:
                log.exception("%s dispatch failed; retrying", self.what)
                wait = tick
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the event fires, and this loop would then never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(wait, tick)):
                    await self.wake.wait()

    async def close(self) -> None:
        """Cancel the drains in flight."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
