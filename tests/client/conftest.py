"""Fixtures of the client tests: both clients against the app in-process, and transports.

The sync ``Client`` reaches the app through :class:`LoopTransport`: its requests run on the
test's event loop (where the app's lifespan runs) while the client blocks in a worker thread,
so every test can drive either client with ``await api.method(...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from maxgate.client import AsyncClient, Client
from maxgate.settings import Settings
from tests.client._support import LoopTransport
from tests.conftest import Account


def credentials(settings: Settings, account: Account) -> dict[str, Any]:
    """The keyword options that point a client at an account of the in-process app."""
    return {
        "api_url": settings.base_url,
        "id_instance": account.id,
        "api_token": account.token,
    }


class Api:
    """Either client behind one awaitable interface: ``await api.send_message(...)``."""

    def __init__(self, kind: str, client: Client | AsyncClient) -> None:
        self.kind = kind
        self.client = client

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)
        if isinstance(self.client, AsyncClient):
            return method  # type: ignore[no-any-return]

        async def in_thread(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(functools.partial(method, *args, **kwargs))

        return in_thread


ApiFactory = Callable[..., Api]


@pytest.fixture(params=["async", "sync"])
async def make_api(
    request: pytest.FixtureRequest, app: Starlette, settings: Settings
) -> AsyncIterator[ApiFactory]:
    """Build clients of one kind (async, then sync) for accounts of the in-process app.

    ``transport`` wraps the app's ASGI transport (for fakes that cut or record).
    """
    async with api_builder(request.param) as build:

        def for_account(account: Account, **options: Any) -> Api:
            return build(app, **credentials(settings, account), **options)

        yield for_account


@contextlib.asynccontextmanager
async def api_builder(kind: str) -> AsyncIterator[Callable[..., Api]]:
    """``build(asgi_app, wrap=…, **client options)`` makes clients of ``kind``; all are closed
    on exit. ``wrap`` wraps the app's ASGI transport (for fakes that cut or record)."""
    built: list[Client | AsyncClient] = []
    loop = asyncio.get_running_loop()

    def build(
        asgi: Any,
        *,
        wrap: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None,
        **options: Any,
    ) -> Api:
        transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=asgi)
        if wrap is not None:
            transport = wrap(transport)
        client: Client | AsyncClient
        if kind == "async":
            client = AsyncClient(transport=transport, **options)
        else:
            client = Client(transport=LoopTransport(transport, loop), **options)
        built.append(client)
        return Api(kind, client)

    try:
        yield build
    finally:
        for client in built:
            if isinstance(client, AsyncClient):
                await client.aclose()
            else:
                client.close()


@pytest.fixture(params=["async", "sync"])
async def build_api(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Api]]:
    """Clients of one kind (async, then sync) for any ASGI app: ``build_api(app, **options)``."""
    async with api_builder(request.param) as build:
        yield build


@pytest.fixture
def api(make_api: ApiFactory, account: Account) -> Api:
    """A client (async, then sync) of ``account``."""
    return make_api(account)


@pytest.fixture
def content() -> bytes:
    """Half a megabyte of random bytes."""
    return os.urandom(512 * 1024)
