"""The link route's concurrent-download guard."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import Response

from maxgate.api.downloadguard import DownloadGuard


async def send_fully(response: Response) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "headers": [], "path": "/", "extensions": {}}
    await response(scope, receive, send)
    return sent


async def test_slots_per_client_are_held_until_the_response_is_sent() -> None:
    guard = DownloadGuard(per_client=2, per_instance=0)
    first = guard.guard("10.0.0.1", 1, Response(b"a"))
    second = guard.guard("10.0.0.1", 1, Response(b"b"))
    refused = guard.guard("10.0.0.1", 1, Response(b"c"))
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert guard.guard("10.0.0.2", 1, Response(b"d")).status_code == 200  # another client
    sent = await send_fully(first)
    assert sent[-1]["body"] == b"a"
    assert guard.guard("10.0.0.1", 1, Response(b"e")).status_code == 200  # a slot came free
    await send_fully(second)


async def test_slots_per_instance_and_release_on_failure() -> None:
    guard = DownloadGuard(per_client=0, per_instance=1)

    class Broken(Response):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            raise ConnectionResetError

    held = guard.guard("10.0.0.1", 7, Broken())
    assert guard.guard("10.0.0.9", 7, Response(b"x")).status_code == 429
    assert guard.guard("10.0.0.9", 8, Response(b"x")).status_code == 200
    with pytest.raises(ConnectionResetError):
        await send_fully(held)
    assert guard.guard("10.0.0.9", 7, Response(b"x")).status_code == 200
