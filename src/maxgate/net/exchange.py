"""``exchange``: one request and its whole (bounded) answer, on the one outbound client — the
calls of a messenger's HTTP API (the MAX Bot API: small JSON answers, bodies small or streamed).

What differs from ``fetch`` (``maxgate.net.http``): any method, a body (bytes, or streamed from
an async iterable with its ``Content-Length``), no redirects followed (an API's 3xx is an
answer like any other), and the answer read into memory up to ``limit`` bytes. Connections are
kept per host, as for webhooks (``maxgate.net.poster``, whose hot path keeps its own copy of
the few lines that take and keep them). The URL guard checks every connection.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterable, Mapping

import h11

from maxgate.errors import OutboundError
from maxgate.net.client import OutboundClient, split_url

__all__ = ["Answer", "exchange"]

ANSWER_LIMIT = 4 * 1024 * 1024  # bytes of an answer body read at most by default


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """A server's answer: its status, headers (names lower-cased, last one wins) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


def _headers(response: h11.Response) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in response.headers}


async def exchange(
    client: OutboundClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | AsyncIterable[bytes] = b"",
    length: int | None = None,
    deadline: float,
    limit: int = ANSWER_LIMIT,
) -> Answer:
    """Send ``method url`` with ``headers`` and ``body`` and read the answer, all within
    ``deadline`` seconds.

    A streamed ``body`` needs its ``length`` (sent as ``Content-Length``); a bytes body is
    measured. A kept connection the server had meanwhile closed is replaced transparently
    (for a bytes body; a stream cannot be sent twice). Raises ``OutboundBlocked`` for a
    refused target and ``OutboundError`` for every other failure (``no answer within 30 s``,
    an answer larger than ``limit`` …), whose messages quote no header and no credential.
    """
    parsed = client.guard.check_url(url)
    key, authority, target = split_url(parsed)
    size = len(body) if isinstance(body, bytes) else length
    if size is None:
        raise ValueError("a streamed body needs its length")
    fields = [(b"Host", authority), (b"User-Agent", client.user_agent)]
    if parsed.userinfo:
        fields.append((b"Authorization", b"Basic " + base64.b64encode(parsed.userinfo)))
    if size or method not in ("GET", "HEAD", "DELETE"):
        fields.append((b"Content-Length", str(size).encode()))
    given = [
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()
    ]
    if any(name.lower() == b"authorization" for name, _ in given):
        fields = [field for field in fields if field[0] != b"Authorization"]
    fields += given
    replayable = isinstance(body, bytes)
    try:
        async with asyncio.timeout(deadline):
            while True:
                connection = client.take(key) if replayable else None
                connection = connection or await client.connect(key)
                connection.timeout = None  # the deadline bounds every step
                try:
                    await connection.send(method.encode("ascii"), target, fields, body)
                    response = await connection.head()
                    received = bytearray()
                    async for piece in connection.body():
                        received += piece
                        if len(received) > limit:
                            raise OutboundError(f"the answer is larger than {limit} bytes")
                except OutboundError:
                    connection.close()
                    if replayable and connection.reused and not connection.answered:
                        continue  # the server dropped a kept connection: once more, fresh
                    raise
                except BaseException:
                    connection.close()
                    raise
                client.keep(connection)
                return Answer(response.status_code, _headers(response), bytes(received))
    except TimeoutError:
        raise OutboundError(f"no answer within {deadline:g} s") from None
