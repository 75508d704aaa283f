"""The fake in-process, with the contract check on every exchange: a test that makes the fake
break the schema fails at teardown, naming the exchange."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from maxgate.fakemax import FakeMax, FakeMaxConfig, create_app
from maxgate.fakemax.contract import Contract

TOKEN = "fakemax-bot-token"


@pytest.fixture
def config(tmp_path: Any) -> FakeMaxConfig:
    """Fast defaults: no processing delay, files under the test's tmp dir."""
    return FakeMaxConfig(not_ready_seconds=0.0, data_dir=str(tmp_path / "fakemax"))


@pytest.fixture
def contract() -> Contract:
    return Contract()


@pytest.fixture
async def fake(config: FakeMaxConfig, contract: Contract) -> AsyncIterator[FakeMax]:
    state = FakeMax(config)
    state.observers.append(contract.record)
    yield state
    await state.webhooks.close()
    assert contract.problems == [], "\n".join(contract.problems)


@pytest.fixture
async def control(fake: FakeMax) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the control API (and of the fake's file links)."""
    transport = httpx.ASGITransport(app=create_app(fake=fake))
    async with httpx.AsyncClient(transport=transport, base_url="http://fakemax") as client:
        yield client


@pytest.fixture
async def bot(fake: FakeMax) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the Bot API with the bot's token, as the official clients send it."""
    transport = httpx.ASGITransport(app=create_app(fake=fake))
    headers = {"Authorization": TOKEN}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://fakemax", headers=headers
    ) as client:
        yield client


async def new_user(control: httpx.AsyncClient, name: str = "Ivan") -> dict[str, Any]:
    """A fake user who has started the bot; its dialog's chat_id is in "chat_id"."""
    answer = await control.post("/_control/users", json={"first_name": name, "last_name": "T"})
    user: dict[str, Any] = answer.json()
    started = await control.post(f"/_control/users/{user['user_id']}/start", json={})
    user["chat_id"] = started.json()["chat_id"]
    return user


async def drain(bot: httpx.AsyncClient, marker: int | None = None) -> tuple[list[Any], int]:
    """Every pending update (``timeout=0``) and the marker after them."""
    params: dict[str, Any] = {"timeout": 0}
    if marker is not None:
        params["marker"] = marker
    answer = (await bot.get("/updates", params=params)).json()
    return answer["updates"], answer["marker"]


def free_port() -> int:
    """A TCP port that was free a moment ago (the server binds it by number)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serve_fake(tmp_path: Path, *flags: str) -> Iterator[tuple[str, Path]]:
    """``python -m maxgate.fakemax serve`` on a free port: its base URL and exchange log."""
    port = free_port()
    log = tmp_path / "exchanges.jsonl"
    command = [
        sys.executable, "-m", "maxgate.fakemax", "serve", "--port", str(port),
        "--exchange-log", str(log), "--data-dir", str(tmp_path / "data"), *flags,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKEMAX_")}
    with (tmp_path / "server.log").open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if httpx.get(f"{base}/_control/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "server.log").read_text())
                time.sleep(0.1)
            yield base, log
        finally:
            process.terminate()
            process.wait(10)
