"""Shared fixtures: settings on a temporary data dir, the app in-process, instances, PostgreSQL."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from maxgate.app import create_app
from maxgate.domain.messenger import InboundFile
from maxgate.domain.records import Instance
from maxgate.runtime import Runtime
from maxgate.settings import Settings, load_settings

PG_ADMIN_URL = os.environ.get("MAXGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    """Settings on a fresh data dir (SQLite, local blobs, sandbox), env ignored.

    Rate limits are off here: tests of the limits turn them on explicitly.
    """
    return load_settings(
        overrides={"data_dir": str(tmp_path / "data"), "rate_limits": "false"}, environ={}
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    """The app with its lifespan running (workers included)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def runtime(app: Starlette) -> Runtime:
    """The app's runtime."""
    rt: Runtime = app.state.runtime
    return rt


@pytest.fixture
async def client(app: Starlette, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to the app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as c:
        yield c


@dataclasses.dataclass
class Account:
    """A test instance with its token, and helpers to build its URLs."""

    instance: Instance
    token: str

    @property
    def id(self) -> int:
        return self.instance.id

    @property
    def chat_id(self) -> str:
        return self.instance.chat_id

    def url(self, method: str, *, v3: bool = True) -> str:
        prefix = "/v3" if v3 else ""
        return f"{prefix}/waInstance{self.instance.id}/{method}/{self.token}"


@pytest.fixture
async def account(runtime: Runtime) -> Account:
    """A fresh instance with fast sending (500 ms, the minimum)."""
    instance, token = await runtime.instances.create(name="Alice")
    return Account(instance, token)


@pytest.fixture
async def other_account(runtime: Runtime) -> Account:
    """A second instance."""
    instance, token = await runtime.instances.create(name="Bob")
    return Account(instance, token)


async def contact_sends_file(
    runtime: Runtime,
    account: Account,
    data: bytes,
    name: str,
    *,
    contact: str,
    mime_type: str = "application/pdf",
    caption: str = "",
    sender_name: str = "",
) -> str:
    """A simulated sandbox contact sends ``data`` as a document to ``account``; its idMessage."""

    async def body() -> AsyncIterator[bytes]:
        yield data

    ref = await runtime.sandbox.keep_file(body())
    return await runtime.sandbox.contact_send(
        account.id,
        contact,
        file=InboundFile(ref, name, mime_type, len(data)),
        caption=caption,
        sender_name=sender_name,
        type_message="documentMessage",
    )


@contextlib.contextmanager
def _temporary_pg_database() -> Iterator[str]:
    import asyncio

    import asyncpg  # type: ignore[import-untyped]

    name = "maxgate_test_" + secrets.token_hex(4)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (dropped afterwards)."""
    with _temporary_pg_database() as url:
        yield url


@dataclasses.dataclass
class Gateway:
    """A gateway built from its own settings, with an in-process client."""

    settings: Settings
    runtime: Runtime
    client: httpx.AsyncClient

    async def account(self, name: str = "") -> Account:
        """A fresh instance of this gateway."""
        instance, token = await self.runtime.instances.create(name=name)
        return Account(instance, token)


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def make_gateway(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """Build gateways with settings overrides, e.g. ``await make_gateway(max_file_size="1MB")``.

    As the shared ``settings`` fixture, rate limits are off unless the overrides turn them on.
    """
    async with contextlib.AsyncExitStack() as stack:
        built = 0

        async def build(**overrides: Any) -> Gateway:
            nonlocal built
            built += 1
            data_dir = str(tmp_path / f"gateway{built}")
            settings = load_settings(
                overrides={"data_dir": data_dir, "rate_limits": False, **overrides}, environ={}
            )
            app = create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url=settings.base_url
                )
            )
            return Gateway(settings, app.state.runtime, client)

        yield build
