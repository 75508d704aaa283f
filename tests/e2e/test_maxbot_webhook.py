"""Webhook mode of a maxbot instance, end to end: a real ``maxgate serve`` subscribes its URL
at a real ``maxgate fakemax``, which then POSTs every update to it with the secret; the update
is journaled and notified; a wrong secret is refused; back in polling mode the subscription is
removed and polling receives again."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, free_port, start_server, wait_until
from tests.e2e.maxbot_support import bot_instance
from tests.fakemax.conftest import serve_fake

pytestmark = pytest.mark.e2e
TOKEN = "webhook-bot-token"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "fake").mkdir()
    with serve_fake(tmp_path / "fake", "--tokens", TOKEN, "--webhook-retry-seconds", "0.2") as (
        base,
        _log,
    ):
        yield base


def _serve(data: Path, fake: str, mode: str) -> Server:
    port = free_port()
    return start_server(
        data,
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        maxbot_base_url=fake,
        maxbot_updates=mode,
        maxbot_poll_timeout="1",
        outbound_allow="127.0.0.0/8",
    )


def _texts(server: Server, info: dict[str, Any], chat_id: str) -> list[str]:
    instance, token = info["idInstance"], info["apiTokenInstance"]
    url = f"{server.base_url}/waInstance{instance}/getChatHistory/{token}"
    history = httpx.post(url, json={"chatId": chat_id}).json()
    return sorted(item.get("textMessage", "") for item in history)


def _subscriptions(fake: str) -> list[Any]:
    found: list[Any] = httpx.get(f"{fake}/subscriptions", headers={"Authorization": TOKEN}).json()[
        "subscriptions"
    ]
    return found


def test_webhook_mode_and_back_to_polling(fake: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = _serve(data, fake, "webhook")
    try:
        info = bot_instance(server, TOKEN)
        hook = f"{server.base_url}/maxbot/webhook/{info['idInstance']}"
        wait_until(lambda: [s["url"] for s in _subscriptions(fake)] == [hook])
        user = httpx.post(f"{fake}/_control/users", json={"first_name": "Ivan"}).json()
        chat = str(user["user_id"])
        httpx.post(f"{fake}/_control/users/{chat}/start", json={})
        httpx.post(f"{fake}/_control/messages", json={"user_id": user["user_id"], "text": "one"})
        assert wait_until(lambda: _texts(server, info, chat) == ["one"])

        # What MAX would not send: a wrong secret, a body that is no update, an unknown bot.
        update = {"update_type": "message_created", "timestamp": 1}
        wrong = httpx.post(hook, json=update, headers={"X-Max-Bot-Api-Secret": "guessed"})
        assert wrong.status_code == 403
        assert wrong.json()["message"] == "wrong X-Max-Bot-Api-Secret"
        nobody = httpx.post(f"{server.base_url}/maxbot/webhook/1", json=update)
        assert nobody.status_code == 403  # as for a wrong secret: a guess learns nothing
        with contextlib.closing(sqlite3.connect(data / "maxgate.db")) as db:
            [(secret,)] = db.execute("SELECT webhook_secret FROM maxbot_bots").fetchall()
        signed = {"X-Max-Bot-Api-Secret": secret}
        garbage = httpx.post(hook, content=b"[1, 2]", headers=signed)
        assert garbage.status_code == 400
        started = {"update_type": "bot_started", "timestamp": 1, "chat_id": 5,
                   "user": {"user_id": 77, "name": "Olga"}}  # fmt: skip
        assert httpx.post(hook, json=started, headers=signed).json() == {"ok": True}
        chats = httpx.get(
            f"{server.base_url}/waInstance{info['idInstance']}/getChats/{info['apiTokenInstance']}"
        ).json()
        assert {"chatId": "77", "phoneNumber": 0} in chats  # the chat registered
    finally:
        server.stop()

    server = _serve(data, fake, "polling")
    try:
        wait_until(lambda: _subscriptions(fake) == [])
        httpx.post(f"{fake}/_control/messages", json={"user_id": user["user_id"], "text": "two"})
        assert wait_until(lambda: _texts(server, info, chat) == ["one", "two"])
    finally:
        server.stop()
