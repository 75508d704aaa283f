"""Transfer time limits: an idle limit per read, an overall deadline that grows with size."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from maxgate.net.deadlines import MIN_RATE, TransferDeadline, paced, timed_out


def test_the_deadline_grows_with_the_size() -> None:
    deadline = TransferDeadline(60.0, size=10 * MIN_RATE)
    assert deadline.allowed == 70.0
    deadline.grow(5 * MIN_RATE)  # never shrinks
    assert deadline.allowed == 70.0
    deadline.grow(20 * MIN_RATE)
    assert deadline.allowed == 80.0
    assert deadline.message() == "timed out after 80 s"
    remaining = deadline.remaining()
    assert remaining is not None and 79 < remaining <= 80


def test_no_base_means_no_deadline() -> None:
    deadline = TransferDeadline(None, size=10**12)
    assert deadline.allowed is None and deadline.remaining() is None
    assert deadline.message() == "timed out"


def test_the_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="min_rate"):
        TransferDeadline(1.0, min_rate=0)


class Source:
    """Yields ``count`` chunks of ``size`` bytes, ``gap`` seconds apart; records aclose."""

    def __init__(self, count: int, size: int, gap: float) -> None:
        self.count, self.size, self.gap = count, size, gap
        self.closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            for _ in range(self.count):
                await asyncio.sleep(self.gap)
                yield b"x" * self.size
        finally:
            self.closed = True


async def test_a_steady_transfer_may_outlast_the_base() -> None:
    source = Source(count=8, size=1000, gap=0.05)  # 0.4 s at 20 kB/s
    deadline = TransferDeadline(0.1, min_rate=4000, size=8000)  # 0.1 + 2 s
    got = [chunk async for chunk in paced(source.chunks(), idle=0.3, deadline=deadline)]
    assert len(got) == 8


async def test_a_stalled_transfer_is_cut_by_the_idle_limit() -> None:
    source = Source(count=3, size=10, gap=5.0)
    deadline = TransferDeadline(60.0)
    with pytest.raises(TimeoutError):
        async for _ in paced(source.chunks(), idle=0.1, deadline=deadline):
            pass
    assert source.closed


async def test_a_trickle_below_the_rate_is_cut_by_the_deadline() -> None:
    source = Source(count=1000, size=1, gap=0.02)  # 50 B/s, each gap well inside the idle limit
    deadline = TransferDeadline(0.2, min_rate=1000)  # size unknown: grows 1 ms per byte
    received = 0
    with pytest.raises(TimeoutError):
        async for chunk in paced(source.chunks(), idle=1.0, deadline=deadline):
            received += len(chunk)
    assert 0 < received < 30
    assert deadline.allowed is not None and deadline.allowed < 0.25


def test_timed_out_names_the_limit() -> None:
    assert timed_out(30.0) == "timed out after 30 s"
    assert timed_out(0.25) == "timed out after 0.25 s"
    assert timed_out(None) == "timed out"
