"""Webhook delivery: each subscription gets its bot's updates in order, as ``POST`` with the
``Update`` as body and ``X-Max-Bot-Api-Secret`` when a secret was set. Anything but 200 is a
failure, retried up to 10 times with pauses growing x2.5 (MAX: from 60 s; here from
``webhook_retry_seconds``), then dropped."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import httpx

from maxgate.fakemax.calls import Exchange
from maxgate.fakemax.world import Bot, Subscription

if TYPE_CHECKING:
    from maxgate.fakemax.server import FakeMax

ATTEMPTS = 10
SECRET_HEADER = "X-Max-Bot-Api-Secret"  # noqa: S105 (a header name)


class WebhookSender:
    """One queue and one delivery task per subscription."""

    def __init__(self, fake: FakeMax) -> None:
        self.fake = fake
        self._queues: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self.client: httpx.AsyncClient | None = None  # tests may hand in their own
        self.retry_seconds = fake.config.webhook_retry_seconds
        self.delivered: list[tuple[str, dict[str, Any]]] = []  # (url, update), for tests

    def enqueue(self, bot: Bot, update: dict[str, Any]) -> None:
        """Queue ``update`` for each of ``bot``'s subscriptions that wants its type."""
        for sub in bot.subscriptions:
            if sub.update_types and update["update_type"] not in sub.update_types:
                continue
            key = id(sub)
            if key not in self._tasks:
                self._queues[key] = asyncio.Queue()
                self._tasks[key] = asyncio.get_running_loop().create_task(self._deliver(sub))
            self._queues[key].put_nowait(update)

    def forget(self, sub: Subscription) -> None:
        """Stop delivering to an unsubscribed URL (what is queued is dropped)."""
        task = self._tasks.pop(id(sub), None)
        self._queues.pop(id(sub), None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        """Stop every delivery task (the app's shutdown)."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    async def _deliver(self, sub: Subscription) -> None:
        queue = self._queues[id(sub)]
        while True:
            update = await queue.get()
            pause = self.retry_seconds
            for _attempt in range(ATTEMPTS):
                if await self._post(sub, update):
                    break
                await asyncio.sleep(pause)
                pause *= 2.5

    async def _post(self, sub: Subscription, update: dict[str, Any]) -> bool:
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=self.fake.config.webhook_timeout_seconds)
        headers = {SECRET_HEADER: sub.secret} if sub.secret else {}
        try:
            answer = await self.client.post(sub.url, json=update, headers=headers)
        except httpx.HTTPError:
            status = 0
        else:
            status = answer.status_code
        self.fake.observe(Exchange("webhook", "POST", sub.url, {}, [], update, status, None))
        if status == 200:
            self.delivered.append((sub.url, update))
        return status == 200
