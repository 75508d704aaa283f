"""The link route's concurrent-download guard."""

from __future__ import annotations

import asyncio
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


def status(sent: list[dict[str, Any]]) -> int:
    code: int = sent[0]["status"]
    return code


async def test_slots_per_client_are_held_until_the_response_is_sent() -> None:
    guard = DownloadGuard(per_client=2, per_instance=0)
    first = guard.guard("10.0.0.1", 1, Response(b"a"))
    second = guard.guard("10.0.0.1", 1, Response(b"b"))
    refused = await send_fully(guard.guard("10.0.0.1", 1, Response(b"c")))  # waits, in vain
    assert status(refused) == 429 and (b"retry-after", b"1") in refused[0]["headers"]
    assert status(await send_fully(guard.guard("10.0.0.2", 1, Response(b"d")))) == 200
    sent = await send_fully(first)
    assert sent[-1]["body"] == b"a"
    assert status(await send_fully(guard.guard("10.0.0.1", 1, Response(b"e")))) == 200
    await send_fully(second)


async def test_a_download_over_the_limit_waits_briefly_for_a_slot() -> None:
    """A keep-alive client asks again a moment before its previous answer's slot is free."""
    guard = DownloadGuard(per_client=1, per_instance=0)
    first = guard.guard("10.0.0.1", 1, Response(b"first"))
    queued = asyncio.create_task(send_fully(guard.guard("10.0.0.1", 1, Response(b"next"))))
    await asyncio.sleep(0.01)
    assert not queued.done()
    await send_fully(first)  # releases its slot well within the grace period
    sent = await queued
    assert status(sent) == 200 and sent[-1]["body"] == b"next"
    assert status(await send_fully(guard.guard("10.0.0.1", 1, Response(b"again")))) == 200


async def test_slots_per_instance_and_release_on_failure() -> None:
    guard = DownloadGuard(per_client=0, per_instance=1)

    class Broken(Response):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            raise ConnectionResetError

    held = guard.guard("10.0.0.1", 7, Broken())
    assert status(await send_fully(guard.guard("10.0.0.9", 7, Response(b"x")))) == 429
    assert status(await send_fully(guard.guard("10.0.0.9", 8, Response(b"x")))) == 200
    with pytest.raises(ConnectionResetError):
        await send_fully(held)
    assert status(await send_fully(guard.guard("10.0.0.9", 7, Response(b"x")))) == 200
