"""The link route's guard: at most N concurrent downloads per client address and per instance.

Separate from the per-method rate limits (spec §5): a link is fetched by browsers and CRMs,
often in parallel, so it is bounded by concurrency, not by requests per second.
"""

from __future__ import annotations

from collections import Counter

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from maxgate.api.errors import error_response


class DownloadGuard:
    """Counts downloads in flight; a slot is held until the response is fully sent."""

    def __init__(self, *, per_client: int, per_instance: int) -> None:
        self.per_client = per_client
        self.per_instance = per_instance
        self._clients: Counter[str] = Counter()
        self._instances: Counter[int] = Counter()

    def guard(self, client: str, instance_id: int, response: Response) -> Response:
        """The response itself while it is sent, or 429 when a limit is reached."""
        if self.per_client and self._clients[client] >= self.per_client:
            return error_response(429, "Too Many Requests", {"Retry-After": "1"})
        if self.per_instance and self._instances[instance_id] >= self.per_instance:
            return error_response(429, "Too Many Requests", {"Retry-After": "1"})
        return _Held(self, client, instance_id, response)

    def _release(self, client: str, instance_id: int) -> None:
        self._clients[client] -= 1
        if self._clients[client] <= 0:
            del self._clients[client]
        self._instances[instance_id] -= 1
        if self._instances[instance_id] <= 0:
            del self._instances[instance_id]


class _Held(Response):
    """Wraps a response so its slot is released when sending ends, however it ends."""

    def __init__(self, guard: DownloadGuard, client: str, instance_id: int, inner: Response):
        self._guard, self._client, self._instance, self._inner = guard, client, instance_id, inner
        guard._clients[client] += 1
        guard._instances[instance_id] += 1
        self.status_code = inner.status_code
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._inner(scope, receive, send)
        finally:
            self._guard._release(self._client, self._instance)
