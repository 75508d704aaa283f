"""/chats/{chatId} and its members, admins, actions and pin routes."""

from __future__ import annotations

import httpx

from tests.fakemax.conftest import new_user


async def group(bot: httpx.AsyncClient, control: httpx.AsyncClient) -> tuple[int, int, int]:
    owner = (await control.post("/_control/users", json={"first_name": "Owner"})).json()
    other = (await control.post("/_control/users", json={"first_name": "Other"})).json()
    body = {"title": "Team", "owner_id": owner["user_id"], "members": [other["user_id"]]}
    chat_id = (await control.post("/_control/chats", json=body)).json()["chat_id"]
    await control.post(f"/_control/chats/{chat_id}/bots", json={"admin": True})
    return chat_id, owner["user_id"], other["user_id"]


async def test_a_dialog_and_a_group(bot: httpx.AsyncClient, control: httpx.AsyncClient) -> None:
    user = await new_user(control)
    dialog = (await bot.get(f"/chats/{user['chat_id']}")).json()
    assert (dialog["type"], dialog["dialog_with_user"]["user_id"]) == ("dialog", user["user_id"])
    chat_id, owner, _ = await group(bot, control)
    chat = (await bot.get(f"/chats/{chat_id}")).json()
    assert (chat["type"], chat["title"], chat["owner_id"], chat["participants_count"]) == (
        "chat",
        "Team",
        owner,
        3,
    )
    patched = await bot.patch(f"/chats/{chat_id}", json={"title": "Renamed"})
    assert patched.json()["title"] == "Renamed"
    assert (await bot.get("/chats/123")).status_code == 404
    assert (await bot.get("/chats/not-a-number")).status_code == 404
    assert (await bot.get("/chats")).status_code == 404  # gone since June 2026


async def test_members_and_admins(bot: httpx.AsyncClient, control: httpx.AsyncClient) -> None:
    chat_id, owner, other = await group(bot, control)
    members = (await bot.get(f"/chats/{chat_id}/members", params={"count": 2})).json()
    assert len(members["members"]) == 2 and members["marker"] == 2
    rest = (await bot.get(f"/chats/{chat_id}/members", params={"marker": 2})).json()
    assert len(rest["members"]) == 1 and rest["marker"] is None
    one = await bot.get(f"/chats/{chat_id}/members", params={"user_ids": str(other)})
    assert [m["user_id"] for m in one.json()["members"]] == [other]
    me = (await bot.get(f"/chats/{chat_id}/members/me")).json()
    assert me["is_admin"] is True
    admins = (await bot.get(f"/chats/{chat_id}/members/admins")).json()["members"]
    assert owner in {a["user_id"] for a in admins}
    grant = {"admins": [{"user_id": other, "permissions": ["write"]}]}
    assert (await bot.post(f"/chats/{chat_id}/members/admins", json=grant)).json()["success"]
    assert (await bot.delete(f"/chats/{chat_id}/members/admins/{other}")).json()["success"]
    newcomer = (await control.post("/_control/users", json={"first_name": "New"})).json()
    added = await bot.post(f"/chats/{chat_id}/members", json={"user_ids": [newcomer["user_id"], 1]})
    assert added.json()["failed_user_ids"] == [1]
    kicked = await bot.delete(f"/chats/{chat_id}/members", params={"user_id": newcomer["user_id"]})
    assert kicked.json() == {"success": True}
    assert (await bot.delete(f"/chats/{chat_id}/members/me")).json() == {"success": True}
    assert (await bot.get(f"/chats/{chat_id}")).status_code == 404


async def test_actions_and_pins(bot: httpx.AsyncClient, control: httpx.AsyncClient) -> None:
    chat_id, _, _ = await group(bot, control)
    assert (await bot.post(f"/chats/{chat_id}/actions", json={"action": "typing_on"})).json() == {
        "success": True
    }
    assert (
        await bot.post(f"/chats/{chat_id}/actions", json={"action": "dance"})
    ).status_code == 400
    sent = await bot.post("/messages", params={"chat_id": chat_id}, json={"text": "pin me"})
    mid = sent.json()["message"]["body"]["mid"]
    assert (await bot.put(f"/chats/{chat_id}/pin", json={"message_id": mid})).json()["success"]
    pinned = (await bot.get(f"/chats/{chat_id}/pin")).json()
    assert pinned["message"]["body"]["mid"] == mid
    assert (await bot.delete(f"/chats/{chat_id}/pin")).json()["success"]
    assert (await bot.get(f"/chats/{chat_id}/pin")).json() == {"message": None}
