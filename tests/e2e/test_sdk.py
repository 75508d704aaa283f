"""GREEN-API's official Python SDK, unmodified, against a real maxgate server."""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from max_api_client_python import API

from tests.e2e.conftest import Server, wait_until

# The SDK's sendFileByUpload opens the file and never closes it (max_api_client_python 1.0.1,
# tools/sending.py); that ResourceWarning is theirs, not ours.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(autouse=True)
def _collect_sdk_garbage() -> Iterator[None]:
    """Collect the SDK's unclosed files while this module's warning filters apply."""
    yield
    gc.collect()


def sdk(server: Server, info: dict[str, object]) -> API.GreenAPI:
    return API.GreenAPI(
        str(info["idInstance"]),
        str(info["apiTokenInstance"]),
        host=f"{server.base_url}/v3",
        media=f"{server.base_url}/v3",
    )


def test_sdk_sends_text_and_file_between_two_instances(server: Server, tmp_path: Path) -> None:
    info_a, info_b = server.create_instance(), server.create_instance()
    alice, bob = sdk(server, info_a), sdk(server, info_b)
    payload = os.urandom(5 * 1024 * 1024)
    report = tmp_path / "report.pdf"
    report.write_bytes(payload)

    text = alice.sending.sendMessage(str(info_b["chatId"]), "Hello Bob")
    assert text.code == 200, text.error
    sent = alice.sending.sendFileByUpload(str(info_b["chatId"]), str(report), caption="Q3")
    assert sent.code == 200, sent.error
    assert set(sent.data) == {"idMessage", "urlFile"}

    def bob_has_both() -> list[dict[str, object]] | None:
        history = bob.journals.getChatHistory(str(info_a["chatId"])).data
        return history if len(history) == 2 else None

    incoming = wait_until(bob_has_both)
    outgoing = alice.journals.getChatHistory(str(info_b["chatId"])).data
    assert [m["idMessage"] for m in incoming] == [m["idMessage"] for m in outgoing]
    assert [m["type"] for m in incoming] == ["incoming", "incoming"]
    assert [m["type"] for m in outgoing] == ["outgoing", "outgoing"]
    assert incoming[1]["textMessage"] == "Hello Bob"
    digest = hashlib.sha256(payload).hexdigest()
    for item in (incoming[0], outgoing[0]):
        assert item["typeMessage"] == "documentMessage"
        assert item["fileName"] == "report.pdf"
        assert item["mimeType"] == "application/pdf"
        assert item["caption"] == "Q3"
        body = httpx.get(str(item["downloadUrl"]), timeout=30).content
        assert hashlib.sha256(body).hexdigest() == digest
    # The sender's journal follows the statuses through to read.
    wait_until(
        lambda: all(
            m["statusMessage"] == "read"
            for m in alice.journals.getChatHistory(str(info_b["chatId"])).data
        )
    )


def test_sdk_upload_then_send_by_url_reuses_the_stored_bytes(
    server: Server, tmp_path: Path
) -> None:
    info_a, info_b = server.create_instance(), server.create_instance()
    alice, bob = sdk(server, info_a), sdk(server, info_b)
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2048))

    uploaded = alice.sending.uploadFile(str(photo))
    assert uploaded.code == 200, uploaded.error
    url = uploaded.data["urlFile"]
    sent = alice.sending.sendFileByUrl(str(info_b["chatId"]), url, "photo.png", caption="look")
    assert sent.code == 200, sent.error

    item = wait_until(lambda: bob.journals.getChatHistory(str(info_a["chatId"])).data)[0]
    assert item["typeMessage"] == "imageMessage"
    assert item["mimeType"] == "image/png"
    assert httpx.get(item["downloadUrl"], timeout=30).content == photo.read_bytes()


def test_sdk_account_and_queue_methods(server: Server) -> None:
    info = server.create_instance()
    api = sdk(server, info)
    assert api.account.getStateInstance().data == {"stateInstance": "authorized"}
    assert api.account.setSettings({"delaySendMessagesMilliseconds": 1000}).data == {
        "saveSettings": True
    }
    assert api.account.getSettings().data["delaySendMessagesMilliseconds"] == 1000
    assert api.queues.showMessagesQueue().code == 200
    assert api.queues.clearMessagesQueue().data == {"isCleared": True}
    assert api.serviceMethods.checkAccount(79990000000).data["exist"] is False
    wrong = API.GreenAPI(str(info["idInstance"]), "0" * 50, host=f"{server.base_url}/v3")
    assert wrong.account.getStateInstance().code == 401
