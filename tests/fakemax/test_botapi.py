"""/me, the token, /updates (marker, limit, types, long poll) and /subscriptions."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from maxgate.fakemax import FakeMax
from tests.fakemax.conftest import TOKEN, drain, new_user


async def test_me_is_the_bot(bot: httpx.AsyncClient) -> None:
    me = (await bot.get("/me")).json()
    assert me["is_bot"] is True
    assert me["username"].endswith("_bot")


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({}, {}),
        ({"Authorization": f"Bearer {TOKEN}"}, {}),  # no Bearer on MAX
        ({}, {"access_token": TOKEN}),  # the query token is no longer accepted
        ({"Authorization": "wrong"}, {}),
    ],
)
async def test_a_call_without_the_token_header_is_401(
    control: httpx.AsyncClient, headers: dict[str, str], params: dict[str, str]
) -> None:
    answer = await control.get("/me", headers=headers, params=params)
    assert answer.status_code == 401
    assert answer.json() == {"code": "verify.token", "message": "Invalid access_token"}


async def test_unknown_routes_answer_the_error_shape(bot: httpx.AsyncClient) -> None:
    answer = await bot.get("/nothing-here")
    assert answer.status_code == 404
    assert set(answer.json()) == {"code", "message"}


async def test_without_a_marker_only_the_last_update_comes(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    user = await new_user(control)
    for text in ("one", "two", "three"):
        await control.post("/_control/messages", json={"user_id": user["user_id"], "text": text})
    updates, marker = await drain(bot)
    assert [u["message"]["body"]["text"] for u in updates] == ["three"]
    assert await drain(bot, marker) == ([], marker)


async def test_a_marker_commits_what_came_before_it(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    user = await new_user(control)
    updates, marker = await drain(bot)
    assert [u["update_type"] for u in updates] == ["bot_started"]
    for text in ("a", "b", "c"):
        await control.post("/_control/messages", json={"user_id": user["user_id"], "text": text})
    first = (await bot.get("/updates", params={"marker": marker, "limit": 2, "timeout": 0})).json()
    assert [u["message"]["body"]["text"] for u in first["updates"]] == ["a", "b"]
    again = (await bot.get("/updates", params={"marker": marker, "timeout": 0})).json()
    assert len(again["updates"]) == 3  # not committed until the new marker is passed
    rest, end = await drain(bot, first["marker"])
    assert [u["message"]["body"]["text"] for u in rest] == ["c"]
    assert await drain(bot, end) == ([], end)


async def test_types_filter_the_updates(bot: httpx.AsyncClient, control: httpx.AsyncClient) -> None:
    user = await new_user(control)
    _, marker = await drain(bot)
    await control.post(f"/_control/users/{user['user_id']}/stop", json={})
    await control.post("/_control/messages", json={"user_id": user["user_id"], "text": "x"})
    params: dict[str, Any] = {"marker": marker, "timeout": 0, "types": "message_created"}
    answer = (await bot.get("/updates", params=params)).json()
    assert [u["update_type"] for u in answer["updates"]] == ["message_created"]


async def test_a_long_poll_returns_when_an_update_arrives(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    user = await new_user(control)
    _, marker = await drain(bot)
    poll = asyncio.create_task(bot.get("/updates", params={"marker": marker, "timeout": 30}))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await control.post("/_control/messages", json={"user_id": user["user_id"], "text": "wake"})
    answer = (await asyncio.wait_for(poll, 5)).json()
    assert answer["updates"][0]["message"]["body"]["text"] == "wake"


async def test_a_long_poll_without_marker_gets_every_new_update(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    user = await new_user(control)
    await drain(bot, (await drain(bot))[1])
    poll = asyncio.create_task(bot.get("/updates", params={"timeout": 2}))
    await asyncio.sleep(0.05)
    await control.post("/_control/messages", json={"user_id": user["user_id"], "text": "new"})
    answer = (await asyncio.wait_for(poll, 5)).json()
    assert [u["message"]["body"]["text"] for u in answer["updates"]] == ["new"]


async def test_bad_poll_parameters_are_400(bot: httpx.AsyncClient) -> None:
    for params in ({"limit": 0, "timeout": 0}, {"timeout": 91}, {"marker": "x"}):
        answer = await bot.get("/updates", params=params)
        assert answer.status_code == 400, params
        assert answer.json()["code"] == "proto.payload"


def receiver(seen: list[tuple[dict[str, Any], str | None]], fail_first: int = 0) -> Starlette:
    """A bot's webhook endpoint that records what it gets (failing the first calls)."""
    calls = {"n": 0}

    async def hook(request: Request) -> Response:
        calls["n"] += 1
        if calls["n"] <= fail_first:
            return Response(status_code=500)
        seen.append((await request.json(), request.headers.get("x-max-bot-api-secret")))
        return Response("ok")

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


async def test_webhooks_get_updates_with_the_secret_and_polling_gets_none(
    fake: FakeMax, bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    seen: list[tuple[dict[str, Any], str | None]] = []
    fake.webhooks.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver(seen, 1)))
    fake.webhooks.retry_seconds = 0.01
    body = {"url": "https://bot.example/hook", "secret": "s3cret_value"}
    assert (await bot.post("/subscriptions", json=body)).json() == {"success": True}
    listed = (await bot.get("/subscriptions")).json()["subscriptions"]
    assert [s["url"] for s in listed] == ["https://bot.example/hook"]
    user = await new_user(control)
    await control.post("/_control/messages", json={"user_id": user["user_id"], "text": "hi"})
    for _ in range(200):
        if len(seen) == 2:
            break
        await asyncio.sleep(0.01)
    assert [(u["update_type"], secret) for u, secret in seen] == [
        ("bot_started", "s3cret_value"),
        ("message_created", "s3cret_value"),
    ]
    assert await drain(bot) == ([], None)  # webhooks and polling exclude each other
    gone = await bot.delete("/subscriptions", params={"url": "https://bot.example/hook"})
    assert gone.json() == {"success": True}
    await control.post("/_control/messages", json={"user_id": user["user_id"], "text": "poll"})
    updates, _ = await drain(bot)
    assert [u["message"]["body"]["text"] for u in updates] == ["poll"]


async def test_a_subscription_needs_a_url_and_a_valid_secret(bot: httpx.AsyncClient) -> None:
    for body in (
        {"url": "ftp://x"},
        {"url": "https://x/h", "secret": "no"},
        {"url": "https://x/h", "update_types": None},
    ):
        answer = await bot.post("/subscriptions", json=body)
        assert answer.status_code == 400
