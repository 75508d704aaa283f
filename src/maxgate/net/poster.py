"""Webhook deliveries: POST a small JSON body, read the status, drop the answer.

The POST goes through the one outbound client (``maxgate.net.client``), so a webhook gets the
same connect-time URL guard and TLS verification as a sendFileByUrl fetch, on connections kept
per receiver. What differs from ``fetch``: redirects are not followed (a receiver's 3xx is a
failed delivery, as any non-2xx), the answer body is read only up to ``MAX_ANSWER`` bytes, and
the whole delivery — connect, send, answer — has one deadline. Errors are ``OutboundError``s
whose messages never quote header values (a webhook token) or the URL's user and password.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping

from maxgate.errors import OutboundError
from maxgate.net.client import OutboundClient, split_url
from maxgate.net.connection import Key

__all__ = ["MAX_ANSWER", "WebhookPoster"]

MAX_ANSWER = 64 * 1024  # bytes of a receiver's answer body read before giving up the connection

_Target = tuple[Key, list[tuple[bytes, bytes]], bytes]  # key, fixed headers, request target


class WebhookPoster:
    """POSTs webhook bodies to URLs the guard allows, through the shared outbound client.

    ``client`` is that client, or a function that returns it (called on the first delivery, so
    a runtime that never delivers never builds one). The poster does not own it: ``close``
    leaves it to its owner.
    """

    def __init__(self, client: OutboundClient | Callable[[], OutboundClient]) -> None:
        self._client = client
        self._targets: dict[str, _Target] = {}

    def _get_client(self) -> OutboundClient:
        if not isinstance(self._client, OutboundClient):
            self._client = self._client()
        return self._client

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, deadline: float
    ) -> int:
        """POST ``body`` to ``url`` within ``deadline`` seconds in all; returns the status.

        User and password in the URL are sent as basic auth unless ``headers`` has its own
        ``Authorization``. A kept connection the receiver had meanwhile closed is replaced,
        transparently. Raises ``OutboundBlocked`` for a refused target and ``OutboundError``
        for every other failure (``no answer within 5 s``, ``connection refused``, an answer
        larger than ``MAX_ANSWER`` …).
        """
        client = self._get_client()
        key, fixed, target = self._targets.get(url) or self._target(client, url)
        fields = [(b"Content-Length", str(len(body)).encode())]
        fields += [(name.encode(), value.encode()) for name, value in headers.items()]
        if any(name.lower() == "authorization" for name in headers):
            fixed = [field for field in fixed if field[0] != b"Authorization"]  # the token wins
        fields = fixed + fields
        try:
            async with asyncio.timeout(deadline):
                while True:
                    connection = client.take(key) or await client.connect(key)
                    connection.timeout = None  # the delivery's deadline bounds every step
                    try:
                        await connection.send(b"POST", target, fields, body)
                        status = (await connection.head()).status_code
                        await connection.drain_body(MAX_ANSWER)
                    except OutboundError:
                        connection.close()
                        if connection.reused and not connection.answered:
                            continue  # the receiver dropped a kept connection: once more, fresh
                        raise
                    except BaseException:
                        connection.close()
                        raise
                    client.keep(connection)
                    return status
        except TimeoutError:
            raise OutboundError(f"no answer within {deadline:g} s") from None

    def _target(self, client: OutboundClient, url: str) -> _Target:
        """Check and take apart a URL once (kept: the guard's rules do not change; every new
        connection is still checked against what the host resolves to then)."""
        parsed = client.guard.check_url(url)
        key, authority, target = split_url(parsed)
        fields = [(b"Host", authority), (b"User-Agent", client.user_agent)]
        if parsed.userinfo:
            fields.append((b"Authorization", b"Basic " + base64.b64encode(parsed.userinfo)))
        if len(self._targets) >= 1024:
            self._targets.clear()
        self._targets[url] = found = (key, fields, target)
        return found

    async def close(self) -> None:
        """Nothing to release: the client belongs to whoever made it (the runtime)."""
