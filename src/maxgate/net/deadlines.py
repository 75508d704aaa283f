"""Time limits of a transfer: a limit per read, and an overall deadline that grows with size.

One fixed deadline for a whole file is wrong both ways: long enough for 4 GB it lets a stalled
10 KB fetch hold a connection for minutes; short enough for that, it cuts large files on slower
storage. So a transfer gets ``base`` seconds plus one second per ``min_rate`` bytes of its size
(the size announced up front, or the bytes received so far when none was): a download that
keeps up at least ``min_rate`` on average finishes, a stalled one is cut by the per-read
(idle) limit, and one that trickles slower than ``min_rate`` is cut by the deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

MIN_RATE = 256 * 1024  # bytes per second a transfer must average beyond its base seconds


class TransferDeadline:
    """The overall time budget of one transfer (see the module's docstring).

    ``base`` None means no deadline. ``size`` is the announced size in bytes, if any; call
    ``grow`` as bytes arrive when it is unknown.
    """

    def __init__(
        self, base: float | None, *, min_rate: float = MIN_RATE, size: int | None = None
    ) -> None:
        if min_rate <= 0:
            raise ValueError(f"min_rate must be > 0 bytes/s, got {min_rate}")
        self.base = base
        self.min_rate = min_rate
        self._start = time.monotonic()
        self._allowed = base
        if size is not None:
            self.grow(size)

    @property
    def allowed(self) -> float | None:
        """Seconds the whole transfer may take, as far as is known now (None: unbounded)."""
        return self._allowed

    def grow(self, size: int) -> None:
        """Allow for ``size`` bytes in all (never shrinks)."""
        if self.base is not None:
            self._allowed = max(self._allowed or 0.0, self.base + size / self.min_rate)

    def remaining(self) -> float | None:
        """Seconds left (0 when expired), None without a deadline."""
        if self._allowed is None:
            return None
        return max(self._start + self._allowed - time.monotonic(), 0.0)

    def message(self) -> str:
        """The sentence for an expired deadline: ``timed out after 12.5 s``."""
        if self._allowed is None:
            return "timed out"
        return f"timed out after {round(self._allowed, 1):g} s"


def timed_out(seconds: float | None) -> str:
    """The sentence for a time limit of ``seconds`` that passed: ``timed out after 30 s``."""
    return "timed out" if seconds is None else f"timed out after {seconds:g} s"


async def paced(
    chunks: AsyncIterator[bytes], *, idle: float | None, deadline: TransferDeadline
) -> AsyncIterator[bytes]:
    """Pass ``chunks`` on, raising ``TimeoutError`` when one takes longer than ``idle`` seconds
    or the deadline passes; the deadline grows with the bytes received."""
    received = 0
    try:
        while True:
            limits = [s for s in (idle, deadline.remaining()) if s is not None]
            async with asyncio.timeout(min(limits) if limits else None):
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
            received += len(chunk)
            deadline.grow(received)
            yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
