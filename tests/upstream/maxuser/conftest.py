"""A gateway in-process whose ``maxuser`` connector runs its real worker process (the real
PyMax ``WebClient`` inside) against the in-process web fake of MAX."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from maxgate.app import create_app
from maxgate.fakemax.web import WebFake, WebFakeConfig
from maxgate.runtime import Runtime
from maxgate.settings import load_settings

pytest.importorskip("pymax")


@dataclasses.dataclass
class UserAccount:
    """A maxuser instance, its token and its in-process API client."""

    runtime: Runtime
    client: httpx.AsyncClient
    instance_id: int
    token: str

    def url(self, method: str, extra: str = "") -> str:
        tail = f"/{extra}" if extra else ""
        return f"/waInstance{self.instance_id}/{method}/{self.token}{tail}"

    async def call(self, method: str, body: Any = None) -> httpx.Response:
        if body is None:
            return await self.client.get(self.url(method))
        return await self.client.post(self.url(method), json=body)

    async def state(self) -> str:
        answer = await self.call("getStateInstance")
        assert answer.status_code == 200, answer.text
        return str(answer.json()["stateInstance"])

    async def notifications(self, timeout: float = 10.0) -> AsyncIterator[dict[str, Any]]:
        """Every notification as it comes (each deleted once read), until ``timeout`` passes
        without one."""
        while True:
            answer = await self.client.get(
                self.url("receiveNotification"), params={"receiveTimeout": int(timeout)}
            )
            assert answer.status_code == 200, answer.text
            item = answer.json()
            if item is None:
                return
            deleted = await self.client.delete(
                self.url("deleteNotification", str(item["receiptId"]))
            )
            assert deleted.status_code == 200, deleted.text
            yield item["body"]

    async def next_of(self, kind: str, timeout: float = 15.0) -> dict[str, Any]:
        """The next notification of ``typeWebhook`` ``kind`` (others before it are dropped)."""
        async with asyncio.timeout(timeout):
            async for body in self.notifications(timeout):
                if body["typeWebhook"] == kind:
                    return body
        raise AssertionError(f"no {kind} notification")

    async def states(self, until: str, timeout: float = 20.0) -> list[str]:
        """The stateInstanceChanged states notified, up to and including ``until``."""
        seen: list[str] = []
        async with asyncio.timeout(timeout):
            async for body in self.notifications(timeout):
                if body["typeWebhook"] == "stateInstanceChanged":
                    seen.append(body["stateInstance"])
                    if body["stateInstance"] == until:
                        return seen
        raise AssertionError(f"state {until} never notified (saw {seen})")


async def eventually(check: Callable[[], Any], timeout: float = 15.0, every: float = 0.1) -> Any:
    """Await ``check()`` (a coroutine function) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every)


@pytest.fixture
async def web() -> AsyncIterator[WebFake]:
    async with WebFake(WebFakeConfig()) as fake:
        yield fake
    assert fake.unserved == [], f"PyMax asked for opcodes the fake does not serve: {fake.unserved}"


@pytest.fixture
async def gateway(tmp_path: Path, web: WebFake) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """The app with its workers, its maxuser connector pointed at the fake."""
    settings = load_settings(
        overrides={"data_dir": str(tmp_path / "data"), "rate_limits": "false"}, environ={}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        runtime.maxuser.url = web.ws_url
        runtime.maxuser.send_interval = 0.2
        runtime.maxuser.scan_interval = 0.2
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as client:
            yield runtime, client


@pytest.fixture
async def user(gateway: tuple[Runtime, httpx.AsyncClient]) -> UserAccount:
    """A new maxuser instance (notAuthorized, its notification read)."""
    runtime, client = gateway
    instance, token = await runtime.create_instance(name="Me", upstream="maxuser")
    await runtime.maxuser.enroll(instance.id)
    return UserAccount(runtime, client, instance.id, token)


async def qr_of(user: UserAccount) -> dict[str, Any]:
    """The v3 ``qr`` answer once the connector has the instance open."""

    async def ask() -> dict[str, Any] | None:
        answer = await user.call("qr")
        if answer.status_code != 200:
            return None
        body: dict[str, Any] = answer.json()
        return body

    found: dict[str, Any] = await eventually(ask, every=0.2)
    return found


async def logged_in(user: UserAccount, web: WebFake) -> None:
    """Log the instance in by QR: ask for it, scan it on the fake's phone, wait."""
    assert (await qr_of(user))["type"] == "qrCode"
    web.scan_qr()

    async def authorized() -> bool:
        return await user.state() == "authorized"

    await eventually(authorized)
