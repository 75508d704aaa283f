"""``BotApi`` against a real ``maxgate fakemax`` process over the one outbound stack: the
header token, the ``Error`` shape, 503s retried, the rate window kept (the fake counts every
attempt), the streamed upload and ``attachment.not.ready`` retried, the Минцифры CA."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from maxgate.net.client import OutboundClient
from maxgate.upstream.maxbot.api import BotApi, RateWindow, TokenRevoked, trusted_context
from tests.fakemax.conftest import serve_fake

TOKEN = "api-test-token"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[str]:
    with serve_fake(tmp_path, "--tokens", TOKEN, "--not-ready-seconds", "0.4") as (base, _log):
        yield base


def _api(client: OutboundClient, base: str, token: str = TOKEN, rps: int = 30) -> BotApi:
    return BotApi(client, token, base_url=base, window=RateWindow(rps), timeout=10)


def _stats(base: str, token: str = TOKEN) -> dict[str, int]:
    found: dict[str, int] = httpx.get(f"{base}/_control/stats").json()["tokens"][token]
    return found


async def test_the_bot_and_a_refused_token(fake: str, client: OutboundClient) -> None:
    me = await _api(client, fake).me()
    assert me["is_bot"] is True and isinstance(me["user_id"], int)
    with pytest.raises(TokenRevoked) as refused:
        await _api(client, fake, token="wrong").me()
    assert (refused.value.status, refused.value.code) == (401, "verify.token")
    assert "wrong" not in str(refused.value)


def test_the_token_is_in_no_repr(client: OutboundClient) -> None:
    api = BotApi(client, "secret-bot-token", window=RateWindow(30))
    assert "secret-bot-token" not in repr(api)
    assert repr(api) == "BotApi(base_url='https://platform-api2.max.ru')"


async def test_unavailable_is_retried(fake: str, client: OutboundClient) -> None:
    httpx.post(f"{fake}/_control/faults", json={"status": 503, "count": 2})
    me = await _api(client, fake).me()
    assert me["is_bot"] is True
    assert _stats(fake)["requests"] == 1  # the fake counts no refused call: two 503s retried


async def test_the_window_keeps_a_burst_under_the_limit(fake: str, client: OutboundClient) -> None:
    api = _api(client, fake)
    await asyncio.gather(*(api.me() for _ in range(45)))
    stats = _stats(fake)
    assert stats["requests"] == 45 and stats["limited"] == 0
    assert stats["peak_attempted_rps"] <= 30


async def test_without_the_window_the_fake_refuses(fake: str, client: OutboundClient) -> None:
    # The check above can fail: unpaced, the same burst goes over and is answered 429.
    api = _api(client, fake, rps=0)
    await asyncio.gather(*(api.me() for _ in range(45)), return_exceptions=True)
    assert _stats(fake)["peak_attempted_rps"] > 30


async def _chunks(data: bytes, size: int = 7000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_a_streamed_upload_sent_once_it_is_ready(fake: str, client: OutboundClient) -> None:
    user = httpx.post(f"{fake}/_control/users", json={"first_name": "Ivan"}).json()
    chat = httpx.post(f"{fake}/_control/users/{user['user_id']}/start", json={}).json()
    data = bytes(range(256)) * 400
    api = _api(client, fake)
    attachment = await api.upload("file", 'a "report".bin', "application/octet-stream",
                                  len(data), _chunks(data))  # fmt: skip
    assert attachment["type"] == "file" and isinstance(attachment["payload"]["token"], str)
    sent = await api.send(
        {"user_id": user["user_id"]}, {"text": "here", "attachments": [attachment]}
    )
    mid = sent["message"]["body"]["mid"]
    [message] = httpx.get(f"{fake}/_control/chats/{chat['chat_id']}/messages").json()["messages"]
    assert message["body"]["mid"] == mid and message["body"]["text"] == "here"
    [got] = message["body"]["attachments"]
    assert (got["filename"], got["size"]) == ("a report.bin", len(data))
    assert httpx.get(got["payload"]["url"]).content == data
    # /uploads, POST /messages refused while the file is "processing", then sent
    assert _stats(fake)["requests"] >= 3


async def test_an_image_upload_answers_photos(fake: str, client: OutboundClient) -> None:
    api = _api(client, fake)
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    attachment = await api.upload("image", "p.png", "image/png", len(png), _chunks(png))
    assert attachment["type"] == "image" and set(attachment["payload"]) == {"photos"}


def test_the_trusted_context_has_the_russian_root() -> None:
    context = trusted_context()
    subjects = [dict(x[0] for x in cert["subject"]) for cert in context.get_ca_certs()]
    assert {"commonName": "Russian Trusted Root CA"} in [
        {"commonName": s.get("commonName")} for s in subjects
    ]
    assert len(subjects) > 1  # and the usual roots beside it
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_a_bundle_of_ones_own_replaces_the_roots(tmp_path: Path) -> None:
    from importlib import resources

    bundle = tmp_path / "ca.pem"
    bundle.write_text(
        resources.files("maxgate.upstream.maxbot")
        .joinpath("russian_trusted_root_ca.pem")
        .read_text()
    )
    assert len(trusted_context(str(bundle)).get_ca_certs()) == 1
