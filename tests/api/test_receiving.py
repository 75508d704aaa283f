"""downloadFile in-process: singleflight, eviction rules, thumbnails, rate limits."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from PIL import Image
from starlette.applications import Starlette

from maxgate.app import create_app
from maxgate.domain.messenger import InboundFile
from maxgate.domain.records import FileRecord
from maxgate.runtime import Runtime
from maxgate.settings import Settings, load_settings
from maxgate.store import tables as t
from tests.conftest import Account


async def contact_file(runtime: Runtime, account: Account, data: bytes, name: str) -> str:
    """A simulated contact sends a file; returns its idMessage (bytes not yet mirrored)."""

    async def body() -> AsyncIterator[bytes]:
        yield data

    ref = await runtime.sandbox.keep_file(body())
    mime = "image/png" if name.endswith(".png") else "application/octet-stream"
    kind = "imageMessage" if name.endswith(".png") else "documentMessage"
    return await runtime.sandbox.contact_send(
        account.id, "20000001", file=InboundFile(ref, name, mime, len(data)), type_message=kind
    )


async def file_of(runtime: Runtime, account: Account, id_message: str) -> FileRecord:
    message = await runtime.journal.get(account.id, "20000001", id_message)
    assert message is not None and message.file is not None
    return message.file


async def test_concurrent_downloads_of_an_evicted_file_fetch_it_once(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, monkeypatch: Any
) -> None:
    id_message = await contact_file(runtime, account, b"x" * 300_000, "big.bin")
    fetches = 0
    original = runtime.sandbox.fetch_file

    async def counting_fetch(instance_id: int, file: FileRecord) -> AsyncIterator[bytes]:
        nonlocal fetches
        fetches += 1
        await asyncio.sleep(0.3)  # slow messenger: every caller arrives while it is in flight
        async for chunk in original(instance_id, file):
            yield chunk

    monkeypatch.setattr(runtime.sandbox, "fetch_file", counting_fetch)
    body = {"chatId": "20000001", "idMessage": id_message}
    answers = await asyncio.gather(
        *(client.post(account.url("downloadFile"), json=body) for _ in range(20))
    )
    assert [a.status_code for a in answers] == [200] * 20
    assert fetches == 1
    link = answers[0].json()["downloadUrl"]
    assert (await client.get(link)).content == b"x" * 300_000
    assert (await file_of(runtime, account, id_message)).state == "stored"


async def test_a_shared_blob_is_deleted_only_when_its_last_holder_expires(
    runtime: Runtime, account: Account, other_account: Account
) -> None:
    # The second mirror deduplicates onto the first one's blob, which holds it from eviction
    # for a while (tests/domain/test_retention.py); here that hold has passed.
    runtime.retention.hold_seconds = 0.0
    first = await contact_file(runtime, account, b"same bytes", "a.bin")
    second = await contact_file(runtime, other_account, b"same bytes", "b.bin")
    for acc, mid in ((account, first), (other_account, second)):
        await runtime.files.materialize(await file_of(runtime, acc, mid))
    a = await file_of(runtime, account, first)
    b = await file_of(runtime, other_account, second)
    assert a.sha256 == b.sha256 and a.sha256 is not None
    key = runtime.files.key(a.sha256)
    async with runtime.db.write() as conn:  # only the first file's retention ends
        await conn.execute(t.files.update().where(t.files.c.id == a.id).values(expires_at=0))
    result = await runtime.retention.sweep()
    assert (result.evicted_files, result.deleted_blobs) == (1, 0)
    assert await runtime.blobs.exists(key)
    async with runtime.db.write() as conn:
        await conn.execute(t.files.update().where(t.files.c.id == b.id).values(expires_at=0))
    result = await runtime.retention.sweep()
    assert (result.evicted_files, result.deleted_blobs, result.freed_bytes) == (1, 1, 10)
    assert not await runtime.blobs.exists(key)
    async with runtime.db.read() as conn:
        states = (await conn.execute(sa.select(t.files.c.state))).scalars().all()
    assert sorted(states) == ["evicted", "evicted"]  # metadata stays


async def test_evicted_file_comes_back_with_a_new_retention_period(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    id_message = await contact_file(runtime, account, b"evict me", "e.bin")
    file = await runtime.files.materialize(await file_of(runtime, account, id_message))
    async with runtime.db.write() as conn:
        await conn.execute(t.files.update().where(t.files.c.id == file.id).values(expires_at=0))
    await runtime.retention.sweep()
    assert (await file_of(runtime, account, id_message)).state == "evicted"
    answer = await client.post(
        account.url("downloadFile"), json={"chatId": "20000001", "idMessage": id_message}
    )
    back = await file_of(runtime, account, id_message)
    assert back.state == "stored"
    assert back.expires_at > time.time() + runtime.settings.file_retention - 60
    assert (await client.get(answer.json()["downloadUrl"])).content == b"evict me"
    history = (await client.post(account.url("getChatHistory"), json={"chatId": "20000001"})).json()
    assert f"exp={int(back.expires_at)}" in history[0]["downloadUrl"]


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((width, height), 80).convert("RGB").save(out, "PNG")
    return out.getvalue()


async def test_images_get_a_small_jpeg_thumbnail_and_documents_none(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    photo = png(1600, 1200)
    sent = await client.post(
        account.url("sendFileByUpload"),
        data={"chatId": "20000001"},
        files={"file": ("photo.png", photo, "image/png")},
    )
    doc = await client.post(
        account.url("sendFileByUpload"),
        data={"chatId": "20000001"},
        files={"file": ("notes.txt", b"text", "text/plain")},
    )
    history = (await client.post(account.url("getChatHistory"), json={"chatId": "20000001"})).json()
    by_id = {item["idMessage"]: item for item in history}
    thumb = by_id[sent.json()["idMessage"]]["jpegThumbnail"]
    assert 0 < len(thumb) <= 16 * 1024
    with Image.open(io.BytesIO(base64.b64decode(thumb))) as image:
        assert image.format == "JPEG" and max(image.size) <= 320
    assert by_id[doc.json()["idMessage"]]["jpegThumbnail"] == ""
    # Received images get one when their bytes are stored.
    id_message = await contact_file(runtime, account, png(64, 48), "in.png")
    await runtime.files.materialize(await file_of(runtime, account, id_message))
    assert (await file_of(runtime, account, id_message)).thumbnail


@pytest.fixture
def limited_settings(tmp_path: Path) -> Settings:
    return load_settings(
        overrides={"data_dir": str(tmp_path / "data"), "rate_limit_overrides": "getChats=3"},
        environ={},
    )


@pytest.fixture
async def limited(limited_settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    application = create_app(limited_settings, workers=False)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=limited_settings.base_url) as c:
            yield application, c


async def test_rate_limits_per_instance_and_method_with_retry_after(
    limited: tuple[Starlette, httpx.AsyncClient],
) -> None:
    application, c = limited
    runtime: Runtime = application.state.runtime
    instance, token = await runtime.instances.create()
    other, other_token = await runtime.instances.create()
    url = f"/waInstance{instance.id}/getChats/{token}"
    codes = [(await c.get(url)).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    over = await c.get(url)
    assert over.json() == {
        "statusCode": 429,
        "error": "Too Many Requests",
        "message": "Too Many Requests",
    }
    assert int(over.headers["Retry-After"]) >= 1
    # Another method and another instance have their own budgets.
    assert (await c.get(f"/waInstance{instance.id}/getStateInstance/{token}")).status_code == 200
    assert (await c.get(f"/waInstance{other.id}/getChats/{other_token}")).status_code == 200
    # A flood of bad tokens does not spend the real client's quota (401 comes first).
    for _ in range(10):
        assert (
            await c.get(f"/waInstance{other.id}/getStateInstance/{'0' * 50}")
        ).status_code == 401
    assert (await c.get(f"/waInstance{other.id}/getStateInstance/{other_token}")).status_code == 200
    await asyncio.sleep(1.1)
    assert (await c.get(url)).status_code == 200


async def test_download_file_defaults_to_one_request_per_second(
    limited: tuple[Starlette, httpx.AsyncClient],
) -> None:
    application, c = limited
    runtime: Runtime = application.state.runtime
    instance, token = await runtime.instances.create()
    url = f"/waInstance{instance.id}/downloadFile/{token}"
    body = {"chatId": "1", "idMessage": "1"}
    assert (await c.post(url, json=body)).status_code == 400  # counted, then not found
    assert (await c.post(url, json=body)).status_code == 429
