"""Fixtures of the maxbot connector's tests: a real ``maxgate fakemax`` process that knows the
test module's ``TOKEN``, and an outbound client allowed to reach it on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from maxgate.net.client import OutboundClient, outbound_client
from maxgate.net.urlguard import UrlGuard, parse_allow_list
from tests.fakemax.conftest import serve_fake


@pytest.fixture
def fake(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Path]]:
    """The fake's base URL and exchange log; it takes the module's ``TOKEN``."""
    with serve_fake(tmp_path, "--tokens", request.module.TOKEN) as found:
        yield found


@pytest.fixture
async def client() -> AsyncIterator[OutboundClient]:
    async with outbound_client(UrlGuard(parse_allow_list("127.0.0.0/8")), timeout=10) as made:
        yield made
