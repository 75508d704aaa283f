"""A real server whose data dir (SQLite and blobs) is a small tmpfs, filled to the last byte:
507 Insufficient Storage in the error shape, /ready says "storage full", nothing is lost, and
everything works again once space is freed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from maxgate.api.errors import phrase
from tests._tmpfs import fill, free, small_tmpfs
from tests.e2e.conftest import Server, start_server

pytestmark = pytest.mark.e2e

CONTACT = "10000777"
MB = 1024 * 1024


def api(server: Server, info: dict[str, Any], method: str) -> str:
    return (
        f"{server.base_url}/v3/waInstance{info['idInstance']}/{method}/{info['apiTokenInstance']}"
    )


def assert_shape(response: httpx.Response, status: int, message: str | None = None) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"statusCode", "error", "message"}, body
    assert body["statusCode"] == status and body["error"] == phrase(status)
    if message is not None:
        assert body["message"] == message
    return str(body["message"])


def upload_file(server: Server, info: dict[str, Any], data: bytes) -> httpx.Response:
    return httpx.post(
        api(server, info, "uploadFile"),
        content=data,
        headers={"content-type": "application/pdf", "GA-Filename": "report.pdf"},
        timeout=30,
    )


def send_file(server: Server, info: dict[str, Any], data: bytes) -> httpx.Response:
    return httpx.post(
        api(server, info, "sendFileByUpload"),
        data={"chatId": CONTACT},
        files={"file": ("photo.bin", data, "application/octet-stream")},
        timeout=30,
    )


def send_message(server: Server, info: dict[str, Any]) -> httpx.Response:
    body = {"chatId": CONTACT, "message": "x" * 4000}
    return httpx.post(api(server, info, "sendMessage"), json=body, timeout=30)


def set_delay(server: Server, info: dict[str, Any], delay: int) -> httpx.Response:
    body = {"delaySendMessagesMilliseconds": delay}
    return httpx.post(api(server, info, "setSettings"), json=body, timeout=30)


def test_a_full_disk_through_a_real_server(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "data", "32m") as disk:
        server = start_server(disk)
        try:
            _full_and_back(server, disk)
        finally:
            server.stop()


def _full_and_back(server: Server, disk: Path) -> None:
    info = server.create_instance()
    before = os.urandom(300_000)
    link = upload_file(server, info, before).json()["urlFile"]
    assert httpx.get(server.base_url + "/ready", timeout=10).status_code == 200

    fill(disk)
    file_full = "Insufficient Storage: the file store is full"
    database_full = "Insufficient Storage: the database is full"
    assert_shape(upload_file(server, info, os.urandom(MB)), 507, file_full)
    fill(disk)  # take back what a failed request freed, so each one meets a full disk
    assert_shape(send_file(server, info, os.urandom(MB)), 507, file_full)
    fill(disk)
    assert_shape(send_message(server, info), 507, database_full)
    fill(disk)
    assert_shape(set_delay(server, info, 1500), 507, database_full)
    ready = assert_shape(httpx.get(server.base_url + "/ready", timeout=10), 503)
    assert "storage full" in ready, ready
    downloaded = httpx.get(link, timeout=30)
    assert downloaded.status_code == 200 and downloaded.content == before
    assert not list((disk / "blobs" / "tmp").glob("*"))  # no half-written upload left

    free(disk)
    ready_again = httpx.get(server.base_url + "/ready", timeout=10)
    assert ready_again.status_code == 200, ready_again.text
    after = os.urandom(MB)
    new_link = upload_file(server, info, after).json()["urlFile"]
    assert send_file(server, info, os.urandom(MB)).status_code == 200
    assert send_message(server, info).status_code == 200
    assert set_delay(server, info, 1500).json() == {"saveSettings": True}
    settings = httpx.get(api(server, info, "getSettings"), timeout=10).json()
    assert settings["delaySendMessagesMilliseconds"] == 1500
    assert httpx.get(new_link, timeout=30).content == after
    assert httpx.get(link, timeout=30).content == before  # the file stored before is intact
    log = server.log.read_text(errors="replace")
    assert "No space left on device" in log or "database or disk is full" in log
    assert info["apiTokenInstance"] not in log
