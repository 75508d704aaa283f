"""Notifications through a real server: the official SDK's polling loop, files sent by the CLI
from another process, and webhooks that survive a kill -9."""

from __future__ import annotations

import gc
import hashlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from max_api_client_python import API

from tests.e2e.conftest import Server, maxgate, start_server, wait_until
from tests.webhook_receiver import webhook_receiver

# The SDK's sendFileByUpload leaves its file open (see test_sdk.py); that warning is theirs.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

PARTNER = "e2e-partner-token"


@pytest.fixture(autouse=True)
def _collect_sdk_garbage() -> Iterator[None]:
    yield
    gc.collect()


def sdk(server: Server, info: dict[str, Any]) -> API.GreenAPI:
    return API.GreenAPI(
        str(info["idInstance"]),
        str(info["apiTokenInstance"]),
        host=f"{server.base_url}/v3",
        media=f"{server.base_url}/v3",
    )


def v3(server: Server, info: dict[str, Any], method: str) -> str:
    return f"{server.base_url}/waInstance{info['idInstance']}/{method}/{info['apiTokenInstance']}"


def test_sdk_polling_loop_receives_text_and_files_and_deletes_them(
    server: Server, tmp_path: Path
) -> None:
    info_a, info_b = server.create_instance(), server.create_instance()
    alice, bob = sdk(server, info_a), sdk(server, info_b)
    received: list[dict[str, Any]] = []

    def handler(kind: str, body: dict[str, Any]) -> None:
        received.append(body)
        if sum(b["typeWebhook"] == "incomingMessageReceived" for b in received) == 3:
            bob.webhooks.stopReceivingNotifications()

    loop = threading.Thread(target=bob.webhooks.startReceivingNotifications, args=(handler,))
    loop.start()
    try:
        assert alice.sending.sendMessage(str(info_b["chatId"]), "hello Bob").code == 200
        photo = tmp_path / "photo.bin"
        photo.write_bytes(b"\x01\x02" * 40_000)
        assert alice.sending.sendFileByUpload(str(info_b["chatId"]), str(photo)).code == 200
        # A contact writes a file into B from another process: the CLI.
        doc = tmp_path / "contract.pdf"
        doc.write_bytes(b"%PDF-1.7 contract " * 3000)
        maxgate(
            "sandbox", "send", "--instance", str(info_b["idInstance"]), "--from", "10000555",
            "--file", str(doc), "--caption", "sign it",
            data_dir=server.data_dir, env=server.env,
        )  # fmt: skip
        loop.join(timeout=60)
    finally:
        bob.webhooks.stopReceivingNotifications()
        loop.join(timeout=30)
    assert not loop.is_alive()
    incoming = [b for b in received if b["typeWebhook"] == "incomingMessageReceived"]
    texts = [b for b in incoming if b["messageData"]["typeMessage"] == "textMessage"]
    files = {
        b["messageData"]["fileMessageData"]["fileName"]: b["messageData"]["fileMessageData"]
        for b in incoming
        if "fileMessageData" in b["messageData"]
    }
    assert texts[0]["messageData"]["textMessageData"]["textMessage"] == "hello Bob"
    assert set(files) == {"photo.bin", "contract.pdf"}
    assert files["contract.pdf"]["caption"] == "sign it"
    for name, data in files.items():
        got = httpx.get(data["downloadUrl"], timeout=30)
        assert got.status_code == 200
        assert got.content == (tmp_path / name).read_bytes()
    count = httpx.get(v3(server, info_b, "getWebhooksCount"), timeout=10).json()
    assert count == {"count": 0}  # the loop deleted what it handled


def test_webhooks_survive_kill_9_none_lost(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = {
        "outbound_allow": "127.0.0.0/8",
        "partner_token": PARTNER,
        "webhook_retry_delays": "0.2s",
        "webhook_timeout": "2s",
    }
    total = 60
    with webhook_receiver() as receiver:
        receiver.delay = 0.03  # a slow receiver: the queue is still full when we kill
        server = start_server(data_dir, **settings)
        try:
            info = server.create_instance()
            set_hook = httpx.post(
                v3(server, info, "setSettings"), json={"webhookUrl": receiver.url}, timeout=10
            )
            assert set_hook.json() == {"saveSettings": True}
            sent = []
            for i in range(total):
                answer = httpx.post(
                    f"{server.base_url}/partner/sandboxSendMessage/{PARTNER}",
                    json={
                        "idInstance": info["idInstance"],
                        "chatId": "10000777",
                        "message": f"#{i}",
                    },
                    timeout=10,
                )
                assert answer.status_code == 200, answer.text
                sent.append(answer.json()["idMessage"])
            wait_until(lambda: len(receiver.accepted) >= 5, timeout=30, interval=0.01)
        finally:
            server.stop(signal.SIGKILL)
        before = len(receiver.accepted)
        assert before < total, "everything arrived before the kill: make the receiver slower"
        restarted = start_server(data_dir, **settings)
        try:
            wait_until(
                lambda: {d.body["idMessage"] for d in receiver.accepted} >= set(sent), timeout=60
            )
        finally:
            restarted.stop()
    firsts: dict[str, str] = {}
    for delivery in receiver.accepted:
        firsts.setdefault(delivery.body["idMessage"], delivery.headers["X-Maxgate-Delivery"])
    assert list(firsts) == sent  # every one, in order of first arrival
    # A repeat (delivered, then killed before the delete) carries the same delivery id.
    for delivery in receiver.accepted:
        assert delivery.headers["X-Maxgate-Delivery"] == firsts[delivery.body["idMessage"]]
    digest = hashlib.sha256(b"".join(d.raw for d in receiver.accepted)).hexdigest()
    assert digest  # bodies are JSON the receiver could parse (checked by .body above)
