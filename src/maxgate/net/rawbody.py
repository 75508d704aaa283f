"""Reading a plain-HTTP answer's body straight from its connection, past httpx and h11.

Why: under httpx every body byte is copied twice by h11 (into its receive buffer, then out of
it) and every chunk climbs through h11, httpcore and httpx's decoders. For sendFileByUrl of a
large file that was most of the CPU spent receiving (bench/RESULTS.md, P6). Here the bytes a
socket read returns are handed on as they are.

How: which connections are opened does not change. The request, its redirects, basic auth and
the URL guard at connect time all stay with the httpx client of ``maxgate.net.http``; only the
reading of one body moves. Every plain-TCP connection that client opens is a
``SplitHeadStream``: its first answer's head is handed to httpcore up to the blank line that
ends it (where h11 ends it, too), and the bytes after it are held back. When httpx returns that
head (a ``stream=True`` request), h11 has therefore seen none of the body, and ``fetch`` may
take the body from the stream (``claim_body``, then ``read_body``): exactly ``Content-Length``
bytes, read as they come. httpcore then closes that connection instead of reusing it, because
h11 never saw the body end.

The trade-off: a second body-reading path next to httpx's. It is kept to the one framing that
needs no parsing — a Content-Length body, not content-encoded, over plain ``http``, the first
answer on its connection — and every other answer (chunked, read-to-close, encoded, ``https``,
a kept-alive connection) is read by httpx as before. Its timeouts and error texts must match
httpx's path (``maxgate.net.http._translate``); tests/net/test_http.py runs both.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncGenerator

import httpcore

from maxgate.errors import OutboundError
from maxgate.net.deadlines import TransferDeadline, timed_out

__all__ = ["BROKEN_READ", "READ_SIZE", "SplitHeadStream", "read_body"]

READ_SIZE = 1024 * 1024  # bytes asked of the socket per read
BROKEN_READ = "the connection broke while reading the answer"

# The end of a head as h11 finds it (h11/_receivebuffer.py, blank_line_regex): the first blank
# line, "\n\n" or "\n\r\n". Cutting anywhere else could hand h11 body bytes with the head.
_HEAD_END = re.compile(rb"\n\r?\n")

# States of a connection's first answer (SplitHeadStream._state).
_IN_HEAD = 0  # the first answer's head has not been handed out to its end yet
_AT_BODY = 1  # the head was handed out up to its end and not one byte more
_PASSING = 2  # reads pass through (the body was handed to h11, or the stream was told not to)


class SplitHeadStream(httpcore.AsyncNetworkStream):
    """An httpcore network stream with large reads, which can hand its first body to ``fetch``.

    Each read asks the socket for at least ``READ_SIZE`` bytes (httpcore asks for 64 KiB; a
    1 GB body would be 16k trips through httpcore, h11 and anyio). h11 buffers what it has not
    parsed yet, so larger reads never change what is parsed. With ``split_head`` (plain TCP),
    the first answer's head is handed out only up to its end; see the module's docstring.
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream, *, split_head: bool = True) -> None:
        self._inner = inner
        self._held = b""  # read from the socket, not handed out yet
        self._tail = b""  # the last two bytes of the head so far: its end may straddle reads
        self._state = _IN_HEAD if split_head else _PASSING

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        """Read at least what httpcore asks for; before the first head's end, only up to it."""
        if self._held:
            data, self._held = self._held, b""
        else:
            data = await self._inner.read(max(max_bytes, READ_SIZE), timeout)
        if self._state == _AT_BODY:
            self._state = _PASSING  # httpcore reads the body itself: h11 gets it
        elif self._state != _PASSING and data:
            return self._up_to_head_end(data)
        return data

    def _up_to_head_end(self, data: bytes) -> bytes:
        seen = self._tail + data
        found = _HEAD_END.search(seen)
        if found is None:
            self._tail = seen[-2:]
            return data
        end = found.end() - len(self._tail)
        self._held, self._tail = data[end:], b""
        self._state = _AT_BODY
        return data[:end]

    def claim_body(self) -> bool:
        """Take over the body whose head httpcore has just received: True if no byte of it was
        handed to h11 (the connection's first answer, nothing read since its head). From then
        on ``read`` returns the body's bytes; the caller must stop at its length."""
        if self._state != _AT_BODY:
            return False
        self._state = _PASSING
        return True

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Write through."""
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        """Close the connection."""
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
    ) -> httpcore.AsyncNetworkStream:
        """Upgrade to TLS; the TLS stream has large reads but never splits (https bodies are
        read by httpx)."""
        inner = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        return SplitHeadStream(inner, split_head=False)

    def get_extra_info(self, info: str) -> object:
        """Ask the inner stream."""
        return self._inner.get_extra_info(info)


async def read_body(
    stream: SplitHeadStream,
    length: int,
    *,
    read_timeout: float | None,
    deadline: TransferDeadline,
) -> AsyncGenerator[bytes, None]:
    """Yield the ``length`` bytes of a body claimed with ``SplitHeadStream.claim_body``.

    Each read waits at most ``read_timeout`` seconds (``timed out after 30 s``), and never past
    ``deadline`` (its own message). A connection that ends or breaks before ``length`` bytes
    raises ``OutboundError(BROKEN_READ)``. Bytes past ``length`` are not the body's and are
    dropped (the connection is closed afterwards, never reused).
    """
    left = length
    while left > 0:
        budget = deadline.remaining()
        overall = budget is not None and (read_timeout is None or budget < read_timeout)
        try:
            chunk = await stream.read(READ_SIZE, budget if overall else read_timeout)
        except httpcore.ReadTimeout as exc:
            raise OutboundError(deadline.message() if overall else timed_out(read_timeout)) from exc
        except httpcore.ReadError as exc:
            raise OutboundError(BROKEN_READ) from exc
        if not chunk:
            raise OutboundError(BROKEN_READ)
        if len(chunk) > left:
            chunk = chunk[:left]
        left -= len(chunk)
        yield chunk
