"""A full disk under the data dir (SQLite and blobs on a real small tmpfs), through requests:
507 Insufficient Storage in the error shape, /ready names it, and nothing is lost."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from maxgate.api.errors import fault_error
from maxgate.errors import BlobStoreFull, StoreError, StoreFull
from maxgate.runtime import Runtime
from tests._tmpfs import fill, free, small_tmpfs
from tests.api._support import (
    CONTACT,
    MULTIPART_TYPE,
    assert_error,
    file_rows,
    multipart,
    ok,
    temp_objects,
)
from tests.api.conftest import GatewayFactory
from tests.conftest import Account

FILE_STORE_FULL = "Insufficient Storage: the file store is full"
DATABASE_FULL = "Insufficient Storage: the database is full"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs to hold a gateway's whole data dir."""
    with small_tmpfs(tmp_path / "disk", "16m") as mounted:
        yield mounted


async def _upload_file(client: httpx.AsyncClient, account: Account, data: bytes) -> httpx.Response:
    return await client.post(
        account.url("uploadFile"),
        content=data,
        headers={"content-type": "application/pdf", "GA-Filename": "report.pdf"},
    )


async def _send_file(client: httpx.AsyncClient, account: Account, data: bytes) -> httpx.Response:
    body = multipart([("chatId", CONTACT, None, None), ("file", data, "photo.bin", None)])
    return await client.post(
        account.url("sendFileByUpload"), content=body, headers={"content-type": MULTIPART_TYPE}
    )


async def _send_message(client: httpx.AsyncClient, account: Account, text: str) -> httpx.Response:
    return await client.post(account.url("sendMessage"), json={"chatId": CONTACT, "message": text})


async def _set_delay(client: httpx.AsyncClient, account: Account, delay: int) -> httpx.Response:
    return await client.post(
        account.url("setSettings"), json={"delaySendMessagesMilliseconds": delay}
    )


async def test_a_full_disk_is_507_then_works_again(
    disk: Path, make_gateway: GatewayFactory
) -> None:
    gateway = await make_gateway(data_dir=str(disk / "data"))
    client, runtime = gateway.client, gateway.runtime
    account = await gateway.account("Alice")
    before = os.urandom(200_000)
    link = ok(await _upload_file(client, account, before))["urlFile"]
    assert ok(await client.get("/ready"))["status"] == "ready"
    files_before = await file_rows(runtime)

    fill(disk)
    assert_error(await _upload_file(client, account, os.urandom(1024 * 1024)), 507, FILE_STORE_FULL)
    fill(disk)  # take back what a failed request freed, so each one meets a full disk
    assert_error(await _send_file(client, account, os.urandom(1024 * 1024)), 507, FILE_STORE_FULL)
    fill(disk)
    assert_error(await _send_message(client, account, "x" * 4000), 507, DATABASE_FULL)
    fill(disk)
    assert_error(await _set_delay(client, account, 1500), 507, DATABASE_FULL)

    ready = assert_error(await client.get("/ready"), 503)
    assert ready.startswith("Not ready: ") and "storage full" in ready
    assert "the database" in ready and "the blob store" in ready
    assert temp_objects(runtime) == []  # no half-written upload left behind
    assert await file_rows(runtime) == files_before  # no row for bytes that were never stored
    downloaded = await client.get(link)  # reading needs no room
    assert downloaded.status_code == 200 and downloaded.content == before
    assert ok(await client.get(account.url("getSettings")))["delaySendMessagesMilliseconds"] != 1500

    free(disk)
    assert ok(await client.get("/ready")) == {"status": "ready", "database": "ok", "blobs": "ok"}
    after = os.urandom(1024 * 1024)
    new_link = ok(await _upload_file(client, account, after))["urlFile"]
    assert set(ok(await _send_file(client, account, os.urandom(1024 * 1024)))) == {
        "idMessage",
        "urlFile",
    }
    assert "idMessage" in ok(await _send_message(client, account, "x" * 4000))
    assert ok(await _set_delay(client, account, 1500)) == {"saveSettings": True}
    assert ok(await client.get(account.url("getSettings")))["delaySendMessagesMilliseconds"] == 1500
    assert (await client.get(new_link)).content == after
    assert (await client.get(link)).content == before  # the file stored before is intact


async def test_storage_full_is_507_on_the_partner_routes_too(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, app: object
) -> None:
    """Those are served by Starlette's router: its error handler maps it the same way."""

    async def full(**_kwargs: object) -> None:
        raise StoreFull("metadata store write failed, the disk is full: database or disk is full")

    monkeypatch.setattr(runtime.instances, "create", full)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        token = runtime.settings.partner_token.reveal()
        response = await client.post(f"/partner/createInstance/{token}", json={})
    assert_error(response, 507, DATABASE_FULL)


def test_one_place_maps_faults() -> None:
    assert fault_error(StoreFull("x")).status == 507
    assert fault_error(StoreFull("x")).message == DATABASE_FULL
    assert fault_error(BlobStoreFull("x")).message == FILE_STORE_FULL
    assert fault_error(StoreError("x")).status == 500  # any other failure stays a 500
    assert fault_error(RuntimeError("x")).message == "Internal Server Error"
