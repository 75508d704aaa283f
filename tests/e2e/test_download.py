"""downloadFile (spec §2) through real requests: every row, re-fetch, and the 500 path."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from tests.e2e.conftest import Server, maxgate, start_server, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def forgetful(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose sandbox messenger forgets files after 2 seconds."""
    srv = start_server(tmp_path_factory.mktemp("forgetful") / "data", sandbox_retention="2s")
    yield srv
    srv.stop()


def api(server: Server, info: dict[str, Any], method: str) -> str:
    return (
        f"{server.base_url}/v3/waInstance{info['idInstance']}/{method}/{info['apiTokenInstance']}"
    )


def download(server: Server, info: dict[str, Any], body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(api(server, info, "downloadFile"), json=body, timeout=30, **kwargs)


def contact_sends_file(server: Server, info: dict[str, Any], path: Path) -> str:
    out = maxgate(
        "sandbox", "send", "--instance", str(info["idInstance"]), "--from", "20000001",
        "--file", str(path), "--json", data_dir=server.data_dir, env=server.env,
    )  # fmt: skip
    return str(json.loads(out)["idMessage"])


def evict_our_copies(server: Server) -> None:
    """What retention eviction leaves: no bytes in our blob store (metadata stays)."""
    for blob in (server.data_dir / "blobs" / "blobs").rglob("*"):
        if blob.is_file():
            blob.unlink()


def test_every_row_of_the_download_file_table(server: Server, tmp_path: Path) -> None:
    bob, carol = server.create_instance(), server.create_instance()
    doc = tmp_path / "invoice.pdf"
    doc.write_bytes(b"%PDF-1.4 " + os.urandom(4096))
    id_message = contact_sends_file(server, bob, doc)

    ok = download(server, bob, {"chatId": "20000001", "idMessage": id_message})
    assert ok.status_code == 200 and set(ok.json()) == {"downloadUrl"}
    assert httpx.get(ok.json()["downloadUrl"], timeout=30).content == doc.read_bytes()

    for body, message in (
        ({}, "Validation failed. Details: 'value' must have at least 2 keys"),
        ({"chatId": "20000001"}, "Validation failed. Details: 'value' must have at least 2 keys"),
        ({"chatId": "20000001", "x": 1}, "Validation failed. Details: 'idMessage' is required"),
        ({"chatId": 1, "idMessage": "1"}, "Validation failed. Details: 'chatId' must be a string"),
    ):
        answer = download(server, bob, body)
        assert (answer.status_code, answer.json()["message"]) == (400, message)
    missing = download(server, bob, {"chatId": "20000001", "idMessage": "2712345112345"})
    assert missing.status_code == 400
    assert missing.json()["message"] == (
        "File message encrypted url not found by chatId 20000001 and idMessage 2712345112345"
    )
    # Another instance never gets a link to Bob's file, whatever ids it tries.
    for chat in ("20000001", bob["chatId"]):
        stolen = download(server, carol, {"chatId": chat, "idMessage": id_message})
        assert stolen.status_code == 400
        assert stolen.json()["message"].startswith("File message encrypted url not found")
    # A text message has no file.
    text = json.loads(
        maxgate(
            "sandbox",
            "send",
            "--instance",
            str(bob["idInstance"]),
            "--from",
            "20000001",
            "--text",
            "hi",
            "--json",
            data_dir=server.data_dir,
            env=server.env,
        )
    )["idMessage"]
    no_file = download(server, bob, {"chatId": "20000001", "idMessage": text})
    assert no_file.status_code == 400


def test_sent_file_is_downloadable_by_sender_and_receiver(server: Server, tmp_path: Path) -> None:
    alice, bob = server.create_instance(), server.create_instance()
    with (tmp_path / "a.txt").open("wb") as handle:
        handle.write(b"shared bytes")
    sent = httpx.post(
        api(server, alice, "sendFileByUpload"),
        data={"chatId": bob["chatId"]},
        files={"file": ("a.txt", b"shared bytes", "text/plain")},
        timeout=30,
    ).json()
    link_a = download(server, alice, {"chatId": bob["chatId"], "idMessage": sent["idMessage"]})
    assert httpx.get(link_a.json()["downloadUrl"], timeout=30).content == b"shared bytes"

    def bob_link() -> httpx.Response | None:
        answer = download(server, bob, {"chatId": alice["chatId"], "idMessage": sent["idMessage"]})
        return answer if answer.status_code == 200 else None

    link_b = wait_until(bob_link)
    assert httpx.get(link_b.json()["downloadUrl"], timeout=30).content == b"shared bytes"


def test_seed_samples_work_as_written(server: Server, tmp_path: Path) -> None:
    bob = server.create_instance()
    doc = tmp_path / "seed.bin"
    doc.write_bytes(b"seed")
    id_message = contact_sends_file(server, bob, doc)
    url = api(server, bob, "downloadFile")
    payload = json.dumps({"chatId": "20000001", "idMessage": id_message})
    # The seed's Python sample: requests.post(url, json=json.dumps({...})) — double-encoded.
    seed_python = requests.post(url, json=payload, timeout=30)
    assert seed_python.status_code == 200, seed_python.text
    # The seed's curl sample, verbatim apart from the URL.
    seed_curl = subprocess.run(
        ["curl", "--location", "-g", "--request", "POST", url,
         "--header", "Content-Type: application/json", "--data-raw", payload],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert "downloadUrl" in json.loads(seed_curl.stdout)
    # Raw JSON without a content type (the Java/VBA samples are as sloppy).
    raw = httpx.post(url, content=payload.encode(), timeout=30)
    assert raw.status_code == 200


def test_evicted_file_is_fetched_again_and_journal_links_work(
    server: Server, tmp_path: Path
) -> None:
    bob = server.create_instance()
    doc = tmp_path / "photo.jpg"
    doc.write_bytes(b"\xff\xd8\xff" + os.urandom(8192))
    id_message = contact_sends_file(server, bob, doc)
    evict_our_copies(server)

    again = download(server, bob, {"chatId": "20000001", "idMessage": id_message})
    assert again.status_code == 200
    assert httpx.get(again.json()["downloadUrl"], timeout=30).content == doc.read_bytes()
    evict_our_copies(server)
    history = httpx.post(
        api(server, bob, "getChatHistory"), json={"chatId": "20000001"}, timeout=30
    ).json()
    # The journal's link materialises the bytes on access, too.
    assert httpx.get(history[0]["downloadUrl"], timeout=30).content == doc.read_bytes()


def test_500_when_our_copy_and_the_messengers_are_both_gone(
    forgetful: Server, tmp_path: Path
) -> None:
    bob = forgetful.create_instance()
    doc = tmp_path / "lost.pdf"
    doc.write_bytes(b"%PDF lost")
    id_message = contact_sends_file(forgetful, bob, doc)
    time.sleep(2.5)  # the sandbox's own retention (2 s) passes
    evict_our_copies(forgetful)
    answer = download(forgetful, bob, {"chatId": "20000001", "idMessage": id_message})
    assert answer.status_code == 500
    assert answer.json() == {
        "statusCode": 500,
        "error": "Internal Server Error",
        "message": (
            f"Internal error when downloading file by chatId 20000001 and idMessage {id_message}"
        ),
    }
