"""What the platform does to a bot: 429 above 30 rps, 503 on demand, a revoked token, links
that expire and files deleted for good."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from maxgate.fakemax import FakeMax, FakeMaxConfig, create_app
from maxgate.fakemax.contract import Contract
from tests.fakemax.conftest import TOKEN, drain, new_user


async def test_over_30_requests_a_second_are_429(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    answers = [await bot.get("/me") for _ in range(35)]
    statuses = [a.status_code for a in answers]
    assert statuses[:30] == [200] * 30
    assert set(statuses[30:]) == {429}
    assert answers[-1].json()["code"] == "too.many.requests"
    counted = (await control.get("/_control/stats")).json()["tokens"][TOKEN]
    assert counted == {"requests": 35, "limited": 5, "peak_rps": 30, "peak_attempted_rps": 35}


async def test_the_window_slides(fake: FakeMax, bot: httpx.AsyncClient) -> None:
    for _ in range(30):
        await bot.get("/me")
    stats = fake.stats[TOKEN]
    stats.recent = type(stats.recent)(t - 1.0 for t in stats.recent)  # a second went by
    stats.attempts = type(stats.attempts)(t - 1.0 for t in stats.attempts)
    assert (await bot.get("/me")).status_code == 200


async def test_503_on_demand(bot: httpx.AsyncClient, control: httpx.AsyncClient) -> None:
    await control.post("/_control/faults", json={"count": 2})
    statuses = [(await bot.get("/me")).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    await control.post("/_control/faults", json={"seconds": 60})
    assert (await bot.get("/me")).status_code == 503
    await control.delete("/_control/faults")
    assert (await bot.get("/me")).status_code == 200


async def test_a_revoked_token_is_401_and_ends_a_poll(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    bot_id = (await bot.get("/me")).json()["user_id"]
    poll = asyncio.create_task(bot.get("/updates", params={"timeout": 30}))
    await asyncio.sleep(0.05)
    await control.post(f"/_control/bots/{bot_id}/revoke", json={})
    assert (await asyncio.wait_for(poll, 5)).status_code == 200
    assert (await bot.get("/me")).status_code == 401


async def file_link(bot: httpx.AsyncClient, control: httpx.AsyncClient) -> tuple[str, int]:
    user = await new_user(control)
    body = {"user_id": user["user_id"], "attachments": [{"type": "file", "text": "bytes"}]}
    sent = (await control.post("/_control/messages", json=body)).json()
    updates, _ = await drain(bot)
    attachment = updates[-1]["message"]["body"]["attachments"][0]
    assert (
        attachment["payload"]["url"] == sent["message"]["body"]["attachments"][0]["payload"]["url"]
    )
    file_id = int(httpx.URL(attachment["payload"]["url"]).params["id"])
    return attachment["payload"]["url"], file_id


async def test_links_are_signed_and_expire(
    fake: FakeMax, bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    url, _ = await file_link(bot, control)
    params: dict[str, Any] = dict(httpx.URL(url).params)
    assert int(params["expires"]) > 0
    assert (await control.get(url)).content == b"bytes"
    assert (await control.get("/getfile", params={**params, "sig": "0" * 32})).status_code == 403
    expired = {**params, "expires": "1000"}
    assert (await control.get("/getfile", params=expired)).status_code == 403
    short = fake.files.link("http://fakemax", fake.files.files[int(params["id"])], -1)
    assert (await control.get(short)).status_code == 403


async def test_a_deleted_file_is_gone_for_good(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    url, file_id = await file_link(bot, control)
    assert (await control.post(f"/_control/files/{file_id}/delete", json={})).json() == {
        "success": True
    }
    assert (await control.get(url)).status_code == 404


async def test_an_expired_link_is_renewed_by_reading_the_message(
    tmp_path: Any, contract: Contract
) -> None:
    fake = FakeMax(FakeMaxConfig(file_url_lifetime_seconds=0.3, data_dir=str(tmp_path)))
    fake.observers.append(contract.record)
    transport = httpx.ASGITransport(app=create_app(fake=fake))
    headers = {"Authorization": TOKEN}
    async with httpx.AsyncClient(transport=transport, base_url="http://f", headers=headers) as c:
        url, _ = await file_link(c, c)
        await asyncio.sleep(0.4)
        assert (await c.get(url)).status_code == 403
        updates = fake.world.bots[next(iter(fake.world.bots))].log
        mid = updates[-1]["message"]["body"]["mid"]
        fresh = (await c.get(f"/messages/{mid}")).json()["body"]["attachments"][0]["payload"]["url"]
        assert (await c.get(fresh)).content == b"bytes"
    assert contract.problems == []
