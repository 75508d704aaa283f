"""The one outbound HTTP client: every request maxgate makes on a user's behalf goes through it.

Two callers: ``maxgate.net.http.fetch`` (sendFileByUrl: a streamed GET, redirects followed and
checked hop by hop) and ``maxgate.net.poster.WebhookPoster`` (webhooks: small POSTs on kept
connections). Both open connections only through ``maxgate.net.connection.open_connection``,
which checks every address with the URL guard at connect time.

Why not httpx (which maxgate uses for its client library and as the URL parser): P5
(bench/RESULTS.md, "Issue 10: one outbound stack") measured a webhook POST through httpx at
~700 µs of CPU against ~110 µs here, and P5 at ~480 deliveries/s against ~810/s — httpx's
models, httpcore's pool and anyio's cancel scopes around every read and write. What a gateway
needs of HTTP/1.1 is small; h11 does the protocol, and this module adds connections, a keep-alive
pool and TLS. Proxies and environment settings are never used: a proxy would open the
connection, not us.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from types import TracebackType

import httpx

from maxgate.errors import OutboundError
from maxgate.net.connection import Connection, Key, Resolver, open_connection, resolve_host
from maxgate.net.urlguard import UrlGuard

__all__ = ["IDLE_SECONDS", "OutboundClient", "outbound_client", "split_url"]

IDLE_SECONDS = 5.0  # a kept connection unused this long is closed rather than reused
KEPT_PER_HOST = 20  # idle connections kept per (scheme, host, port)


def split_url(url: httpx.URL) -> tuple[Key, bytes, bytes]:
    """Where a URL's request goes: its connection key, ``Host`` header and request target."""
    secure = url.scheme == "https"
    default = 443 if secure else 80
    port = url.port or default
    host = url.raw_host.decode("ascii")  # IDNA-encoded already; IPv6 without brackets
    authority = f"[{host}]" if ":" in host else host
    if port != default:
        authority += f":{port}"
    return (url.scheme, host, port), authority.encode("ascii"), url.raw_path or b"/"


class OutboundClient:
    """Connections to URLs the guard allows, with the limits every outbound request shares.

    ``timeout`` seconds bound connecting and each read and write. ``max_redirects`` is how
    many redirects ``fetch`` follows. ``ssl_context`` verifies servers (by default the
    certifi roots httpx uses, without environment settings). ``resolver`` replaces the system
    DNS (tests). Use as an async context manager, or call ``aclose``.
    """

    def __init__(
        self,
        guard: UrlGuard,
        *,
        timeout: float = 30.0,
        max_redirects: int = 5,
        user_agent: str = "maxgate",
        ssl_context: ssl.SSLContext | None = None,
        resolver: Resolver = resolve_host,
    ) -> None:
        self.guard = guard
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.user_agent = user_agent.encode("ascii")
        self._ssl = ssl_context
        self._resolver = resolver
        self._idle: dict[Key, list[tuple[float, Connection]]] = {}
        self.is_closed = False

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(trust_env=False)
        return self._ssl

    async def connect(self, key: Key) -> Connection:
        """A new connection to ``key`` (``OutboundBlocked``, ``OutboundError``)."""
        if self.is_closed:
            raise OutboundError("the outbound client is closed")
        return await open_connection(
            key,
            self.guard,
            timeout=self.timeout,
            resolver=self._resolver,
            ssl_context=self._tls() if key[0] == "https" else None,
        )

    def take(self, key: Key) -> Connection | None:
        """A kept connection to ``key`` that is still fresh and open, if there is one."""
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            since, connection = idle.pop()
            if now - since < IDLE_SECONDS and not connection.stream.at_eof():
                connection.reused = True
                return connection
            connection.close()
        return None

    def keep(self, connection: Connection) -> None:
        """Keep a connection whose exchange finished cleanly for the next request to its host;
        close it instead if it cannot carry one."""
        idle = self._idle.setdefault(connection.key, [])
        if self.is_closed or not connection.reusable or len(idle) >= KEPT_PER_HOST:
            connection.close()
            return
        connection.deadline = None
        idle.append((time.monotonic(), connection))

    async def aclose(self) -> None:
        """Close every kept connection; the client opens no new ones."""
        self.is_closed = True
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for _since, connection in connections:
                with contextlib.suppress(OSError, ssl.SSLError):
                    await connection.aclose()

    async def __aenter__(self) -> OutboundClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def outbound_client(
    guard: UrlGuard,
    *,
    timeout: float = 30.0,
    max_redirects: int = 5,
    user_agent: str = "maxgate",
    ssl_context: ssl.SSLContext | None = None,
    resolver: Resolver | None = None,
) -> OutboundClient:
    """Build the client for every outbound request maxgate makes on a user's behalf (see
    ``OutboundClient``); the caller owns it and must close it."""
    return OutboundClient(
        guard,
        timeout=timeout,
        max_redirects=max_redirects,
        user_agent=user_agent,
        ssl_context=ssl_context,
        resolver=resolver or resolve_host,
    )
