"""429 answers are retried as ``Retry-After`` asks, within a bounded count and total wait."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from maxgate.app import create_app
from maxgate.client import Client, RateLimitError
from maxgate.client._retry import RetryBudget, parse_retry_after
from maxgate.settings import load_settings
from tests.client._support import Recorder
from tests.client.conftest import Api

CREDENTIALS = {"api_url": "http://gateway.test", "id_instance": 3100000001, "api_token": "a" * 50}
TOO_MANY = {"statusCode": 429, "error": "Too Many Requests", "message": "Too Many Requests"}


class StrictLimiter:
    """A fake server that refuses its first request with ``Retry-After`` and keeps refusing
    until that time has passed: a client that does not wait never gets through."""

    def __init__(self, retry_after: int = 1, *, header: bool = True) -> None:
        self.retry_after = retry_after
        self.header = header
        self.requests = 0
        self.bodies: list[bytes] = []
        self._open_at = 0.0
        self.app = Starlette(routes=[Route("/{path:path}", self.endpoint, methods=["GET", "POST"])])

    async def endpoint(self, request: Request) -> JSONResponse:
        self.requests += 1
        self.bodies.append(await request.body())
        now = time.monotonic()
        if self.requests == 1:
            self._open_at = now + self.retry_after
        if now < self._open_at:
            headers = {"Retry-After": str(self.retry_after)} if self.header else None
            return JSONResponse(TOO_MANY, status_code=429, headers=headers)
        if request.url.path.split("/")[2] == "uploadFile":
            return JSONResponse({"urlFile": "http://gateway.test/files/1/x/a.bin"})
        return JSONResponse({"stateInstance": "authorized"})


async def test_a_429_is_retried_after_retry_after(build_api: Callable[..., Api]) -> None:
    fake = StrictLimiter(retry_after=1)
    api = build_api(fake.app, **CREDENTIALS)
    assert (await api.get_state_instance()).state_instance == "authorized"
    assert fake.requests == 2  # one retry, and it came after the wait


async def test_without_retry_after_it_backs_off(build_api: Callable[..., Api]) -> None:
    fake = StrictLimiter(retry_after=1, header=False)
    api = build_api(fake.app, **CREDENTIALS)
    assert (await api.get_state_instance()).state_instance == "authorized"
    assert fake.requests == 2


async def test_no_retries_raises_at_once(build_api: Callable[..., Api]) -> None:
    fake = StrictLimiter(retry_after=1)
    api = build_api(fake.app, retries=0, **CREDENTIALS)
    with pytest.raises(RateLimitError) as caught:
        await api.get_state_instance()
    assert (caught.value.status_code, caught.value.message) == (429, "Too Many Requests")
    assert caught.value.retry_after == 1.0 and fake.requests == 1


async def test_a_wait_beyond_the_total_budget_is_not_started(
    build_api: Callable[..., Api],
) -> None:
    fake = StrictLimiter(retry_after=30)
    api = build_api(fake.app, max_retry_wait=5, **CREDENTIALS)
    with pytest.raises(RateLimitError) as caught:
        await api.get_state_instance()
    assert caught.value.retry_after == 30.0 and fake.requests == 1


async def test_a_streamed_upload_is_sent_again_whole(
    build_api: Callable[..., Api], tmp_path: Path
) -> None:
    fake = StrictLimiter(retry_after=1)
    api = build_api(fake.app, **CREDENTIALS)
    data = b"0123456789" * 50_000
    source = io.BytesIO(b"skip" + data)
    source.seek(4)  # the upload starts where the file object stands
    await api.upload_file(source, file_name="a.bin")
    assert fake.bodies == [data, data]


def test_an_unseekable_upload_is_not_retried() -> None:
    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self._data = io.BytesIO(b"streamed bytes")

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            chunk = self._data.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        request.read()
        return httpx.Response(429, json=TOO_MANY, headers={"Retry-After": "0"})

    with (
        Client(transport=httpx.MockTransport(handler), **CREDENTIALS) as client,
        pytest.raises(RateLimitError),
    ):
        client.upload_file(Pipe(), file_name="pipe.bin")  # type: ignore[arg-type]
    assert calls == 1


async def test_the_apps_own_rate_limit_is_waited_out(
    build_api: Callable[..., Api], tmp_path: Path
) -> None:
    settings = load_settings(
        overrides={"data_dir": str(tmp_path / "d"), "rate_limits": True}, environ={}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        instance, token = await app.state.runtime.instances.create(name="x")
        recorders: list[Recorder] = []

        def record(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
            recorders.append(Recorder(inner))
            return recorders[-1]

        api = build_api(
            app,
            wrap=record,
            api_url=settings.base_url,
            id_instance=instance.id,
            api_token=token,
        )
        # getStateInstance and uploadFile: 1 request per second each (spec §5).
        for _ in range(2):
            assert (await api.get_state_instance()).state_instance == "authorized"
        path = tmp_path / "2.txt"
        path.write_bytes(b"second file")
        first = await api.upload_file(io.BytesIO(b"first file"), file_name="1.txt")
        second = await api.upload_file(path)  # each attempt opens the path again
        statuses = recorders[0].statuses
        assert statuses == [200, 429, 200, 200, 429, 200]
        for uploaded, expected in ((first, b"first file"), (second, b"second file")):
            out = tmp_path / "out"
            await api.download_link(uploaded.url_file, out, resume=False)
            assert out.read_bytes() == expected


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = 1_700_000_000.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:40 GMT", now=now) == 20.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now=now) == 0.0


def test_the_budget_counts_retries_and_total_wait() -> None:
    budget = RetryBudget(retries=3, max_wait=10)
    assert [budget.delay(4), budget.delay(4), budget.delay(4)] == [4, 4, None]
    budget = RetryBudget(retries=2, max_wait=100)
    assert [budget.delay(None), budget.delay(None), budget.delay(None)] == [1, 2, None]
