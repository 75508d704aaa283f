"""``python -m maxgate.fakemax serve`` on a real socket: webhooks reach a real endpoint, with
the secret, and every exchange of the run holds to the schema."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from maxgate.fakemax.contract import Contract
from tests.fakemax.conftest import serve_fake

TOKEN = "serve-token"


@pytest.fixture
def endpoint() -> Iterator[tuple[str, list[tuple[dict[str, Any], str | None]]]]:
    """A bot's webhook endpoint on a real socket, recording what it is sent."""
    seen: list[tuple[dict[str, Any], str | None]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((json.loads(body), self.headers.get("X-Max-Bot-Api-Secret")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", seen
    finally:
        server.shutdown()
        server.server_close()


def test_webhooks_over_real_sockets(
    tmp_path: Path, endpoint: tuple[str, list[tuple[dict[str, Any], str | None]]]
) -> None:
    url, seen = endpoint
    with serve_fake(tmp_path, "--tokens", TOKEN) as (base, log):
        bot = httpx.Client(base_url=base, headers={"Authorization": TOKEN}, timeout=10)
        subscribed = bot.post("/subscriptions", json={"url": url, "secret": "hook_secret"})
        assert subscribed.json() == {"success": True}
        user = httpx.post(f"{base}/_control/users", json={"first_name": "W"}).json()
        httpx.post(f"{base}/_control/users/{user['user_id']}/start", json={})
        httpx.post(f"{base}/_control/messages", json={"user_id": user["user_id"], "text": "hook"})
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(u["update_type"], secret) for u, secret in seen] == [
            ("bot_started", "hook_secret"),
            ("message_created", "hook_secret"),
        ]
        assert bot.get("/updates", params={"timeout": 0}).json()["updates"] == []
        bot.close()
    contract = Contract()
    contract.check_log(log)
    assert contract.problems == [], "\n".join(contract.problems)
    assert contract.request_problems == []
