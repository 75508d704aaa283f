"""The link route's guard: at most N concurrent downloads per client address and per instance.

Separate from the per-method rate limits (spec §5): a link is fetched by browsers and CRMs,
often in parallel, so it is bounded by concurrency, not by requests per second. A download
over the limit waits up to ``GRACE_SECONDS`` for a slot before it is refused with 429: a client
on a keep-alive connection has the whole answer, and sends its next request, a moment before
the server has left the previous one's ``send`` and released its slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from maxgate.api.errors import error_response

GRACE_SECONDS = 0.05


class DownloadGuard:
    """Counts downloads in flight; a slot is held until the response is fully sent."""

    def __init__(self, *, per_client: int, per_instance: int) -> None:
        self.per_client = per_client
        self.per_instance = per_instance
        self._clients: dict[str, int] = {}
        self._instances: dict[int, int] = {}
        self._waiting = 0
        self._freed = asyncio.Event()  # set (and replaced) when a slot comes free

    def guard(self, client: str, instance_id: int, response: Response) -> Response:
        """The response itself while it is sent; over a limit, one that waits up to
        ``GRACE_SECONDS`` for a slot and answers 429 if none comes free."""
        if self._has_room(client, instance_id):
            return _Held(self, client, instance_id, response)
        return _Queued(self, client, instance_id, response)

    def _has_room(self, client: str, instance_id: int) -> bool:
        if self.per_client and self._clients.get(client, 0) >= self.per_client:
            return False
        return not (self.per_instance and self._instances.get(instance_id, 0) >= self.per_instance)

    def _take(self, client: str, instance_id: int) -> None:
        self._clients[client] = self._clients.get(client, 0) + 1
        self._instances[instance_id] = self._instances.get(instance_id, 0) + 1

    def _release(self, client: str, instance_id: int) -> None:
        _decrement(self._clients, client)
        _decrement(self._instances, instance_id)
        if self._waiting:
            self._freed.set()
            self._freed = asyncio.Event()


def _decrement(counts: dict[Any, int], key: Any) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)  # idle clients leave no entry behind


class _Held(Response):
    """Wraps a response so its slot is released when sending ends, however it ends."""

    def __init__(self, guard: DownloadGuard, client: str, instance_id: int, inner: Response):
        self._guard, self._client, self._instance, self._inner = guard, client, instance_id, inner
        guard._take(client, instance_id)
        self.status_code = inner.status_code
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._inner(scope, receive, send)
        finally:
            self._guard._release(self._client, self._instance)


class _Queued(Response):
    """A download over a limit: sent once a slot comes free in time, else a 429."""

    def __init__(self, guard: DownloadGuard, client: str, instance_id: int, inner: Response):
        self._guard, self._client, self._instance, self._inner = guard, client, instance_id, inner
        self.status_code = inner.status_code
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        guard = self._guard
        loop = asyncio.get_running_loop()
        end = loop.time() + GRACE_SECONDS
        guard._waiting += 1
        try:
            while not guard._has_room(self._client, self._instance):
                left = end - loop.time()
                if left <= 0:
                    refused = error_response(429, "Too Many Requests", {"Retry-After": "1"})
                    await refused(scope, receive, send)
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await guard._freed.wait()
        finally:
            guard._waiting -= 1
        await _Held(guard, self._client, self._instance, self._inner)(scope, receive, send)
