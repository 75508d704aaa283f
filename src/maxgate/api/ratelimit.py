"""Rate limits per instance and method (spec §5), over the ``limits`` library.

Requests per second with a moving window; over the limit → 429 ``Too Many Requests`` with a
``Retry-After`` header (whole seconds). The storage is a ``limits`` URI: ``memory://`` for one
process, ``redis://host:port`` to share counters between processes and replicas.
"""

from __future__ import annotations

import math
import time
from typing import Any

import coredis
from limits import RateLimitItemPerSecond
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import ConfigurationError as LimitsConfigurationError
from limits.storage import storage_from_string

from maxgate.errors import ApiError, ConfigError

# The vendor's published table (spec §5); every method not named here: 1 request per second.
DEFAULT_RATES: dict[str, int] = {
    "sendmessage": 50,
    "sendfilebyurl": 50,
    "sendfilebyupload": 50,
    "uploadfile": 1,
    "receivenotification": 100,
    "deletenotification": 100,
    "downloadfile": 1,
    # The vendor's pages (v1 where v3 has none; docs/methods.md names which).
    "sendlocation": 50,
    "sendcontact": 50,
    "forwardmessages": 50,
    "readchat": 10,
    "deletemessage": 10,
    "getavatar": 10,
    "getcontacts": 1,
    "getcontactinfo": 1,
}
FALLBACK_RATE = 1


def parse_overrides(text: str) -> dict[str, int]:
    """Parse ``downloadFile=5,getChatHistory=10`` into lower-cased method → requests/second."""
    rates: dict[str, int] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, eq, value = item.partition("=")
        if not eq or not value.strip().isdigit() or int(value) < 1:
            raise ConfigError(
                f"rate limit {item.strip()!r}: expected method=requests-per-second, e.g. "
                "downloadFile=5"
            )
        rates[name.strip().lower()] = int(value)
    return rates


class RateLimiter:
    """Counts requests per instance and method; raises the 429 ApiError when over."""

    def __init__(self, *, storage: str = "memory://", overrides: str = "") -> None:
        self.rates = {**DEFAULT_RATES, **parse_overrides(overrides)}
        self._items: dict[str, RateLimitItemPerSecond] = {}
        # The async storages of `limits` are the same URIs with an "async+" scheme prefix.
        uri = storage if storage.startswith("async+") else "async+" + storage
        options: dict[str, Any] = {}
        self._pool: coredis.ConnectionPool | None = None
        if uri.startswith("async+redis://"):
            # `limits` cannot close its Redis connections; owning the pool lets close() do it.
            self._pool = coredis.ConnectionPool.from_url(uri.removeprefix("async+"))
            options["connection_pool"] = self._pool
        try:
            backend = storage_from_string(uri, **options)
        except (LimitsConfigurationError, ValueError) as exc:
            raise ConfigError(f"setting rate_limit_storage: {exc}") from exc
        self._limiter = MovingWindowRateLimiter(backend)

    def close(self) -> None:
        """Close the Redis connections, if any."""
        if self._pool is not None:
            self._pool.disconnect()

    def rate(self, method: str) -> int:
        """Requests per second allowed for a method (lower-cased name)."""
        return self.rates.get(method, FALLBACK_RATE)

    async def check(self, instance_id: int, method: str) -> None:
        """Count one request; raise 429 with Retry-After when the instance is over its rate."""
        item = self._items.get(method)
        if item is None:
            item = self._items[method] = RateLimitItemPerSecond(self.rate(method))
        if await self._limiter.hit(item, str(instance_id), method):
            return
        stats = await self._limiter.get_window_stats(item, str(instance_id), method)
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        raise ApiError(429, "Too Many Requests", headers={"Retry-After": str(retry)})
