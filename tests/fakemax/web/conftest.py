"""The web fake on a free port of 127.0.0.1, and the real PyMax ``WebClient`` pointed at it.

PyMax is imported unconditionally: without the ``max-user`` extra these tests fail rather
than skip (CI installs it with ``scripts/install --test``). Only ``WebClient`` is used, with
``telemetry=False``, ``reconnect=False`` and ``relogin=False`` — never the mobile ``Client``
nor SMS login.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pymax import ExtraConfig, QrAuthFlow, WebClient
from pymax.session import SessionInfo

from maxgate.fakemax.web import WebFake, WebFakeConfig


class MemoryStore:
    """A ``StoreProtocol`` (``pymax/session/protocol.py``) that outlives a client, as the
    connector's database-backed store will."""

    def __init__(self) -> None:
        self.session: SessionInfo | None = None
        self.deleted: list[str] = []

    async def save_session(self, session_info: SessionInfo) -> None:
        self.session = session_info

    async def update_token(self, old_token: str, new_token: str, /) -> None:
        if self.session is not None and self.session.token == old_token:
            self.session = self.session.model_copy(update={"token": new_token})

    async def load_session(self) -> SessionInfo | None:
        return self.session

    async def load_session_by_device_id(self, device_id: str) -> SessionInfo | None:
        return self.session if self.session and self.session.device_id == device_id else None

    async def load_session_by_phone(self, phone: str) -> SessionInfo | None:
        return self.session if self.session and self.session.phone == phone else None

    async def delete_session(self, token: str, /) -> None:
        self.deleted.append(token)
        if self.session is not None and self.session.token == token:
            self.session = None

    async def close(self) -> None:
        return None


class ScanningQr:
    """A ``QrHandler`` whose phone scans each QR at once, through the fake's control."""

    def __init__(self, fake: WebFake, *, scan: bool = True) -> None:
        self.fake = fake
        self.scan = scan
        self.shown: list[str] = []

    async def show_qr(self, qr_url: str) -> None:
        self.shown.append(qr_url)
        if self.scan:
            self.fake.scan_qr(qr_url)


class Passwords:
    """A ``PasswordProvider`` answering from a list; records the hints it was shown."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.hints: list[str | None] = []

    async def get_password(self, hint: str | None = None) -> str:
        self.hints.append(hint)
        return self.answers.pop(0)


@pytest.fixture
def web_config() -> WebFakeConfig:
    return WebFakeConfig()


@pytest.fixture
async def web(web_config: WebFakeConfig) -> AsyncIterator[WebFake]:
    async with WebFake(web_config) as fake:
        yield fake
    assert fake.unserved == [], f"PyMax asked for opcodes the fake does not serve: {fake.unserved}"


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


ClientFactory = Callable[..., WebClient]


@pytest.fixture
async def make_client(web: WebFake, store: MemoryStore) -> AsyncIterator[ClientFactory]:
    """``make_client(qr=…, passwords=…)``: a ``WebClient`` on the fake, closed at teardown."""
    clients: list[WebClient] = []

    def make(
        *, qr: ScanningQr | None = None, passwords: Passwords | None = None, **extra: Any
    ) -> WebClient:
        config = ExtraConfig(
            url=web.ws_url,
            telemetry=False,
            reconnect=False,
            relogin=False,
            store=store,
            request_timeout=5.0,
            log_level="WARNING",
            **extra,
        )
        flow = QrAuthFlow(qr or ScanningQr(web), passwords or Passwords())
        client = WebClient(extra_config=config, auth_flow=flow)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def next_of(queue: asyncio.Queue[Any], timeout: float = 5.0) -> Any:
    return await asyncio.wait_for(queue.get(), timeout)
