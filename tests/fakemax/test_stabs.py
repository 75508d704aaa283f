"""The fake's objects carry every field the official Go client's fixtures (real-looking
payloads, ``stabs/``) carry, beyond what the schema requires, except where the platform changed
since (named below)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.fakemax.conftest import drain, new_user

STABS = Path(__file__).resolve().parent / "stabs"
# Fields a fixture has that the fake leaves out on purpose.
CHANGED = {
    ("update.bot_added", "user"),  # bot_added carries no user since November 2026 (changelog)
    ("update.bot_added", "user_id"),  # and so no user_id; what is left is not documented
}


def stab(name: str) -> Any:
    data = json.loads((STABS / f"{name}.json").read_text(encoding="utf-8"))
    return data["updates"][0] if "updates" in data else data


def missing(real: Any, ours: Any, where: str = "") -> list[str]:
    """The paths of the keys ``real`` has and ``ours`` lacks."""
    if isinstance(real, dict) and isinstance(ours, dict):
        gaps = []
        for key, value in real.items():
            if key not in ours:
                gaps.append(f"{where}/{key}")
            elif value is not None and ours[key] is not None:
                gaps += missing(value, ours[key], f"{where}/{key}")
        return gaps
    if isinstance(real, list) and isinstance(ours, list) and real and ours:
        return missing(real[0], ours[0], where + "/0")
    return []


def check(name: str, ours: Any) -> None:
    gaps = [gap for gap in missing(stab(name), ours) if (name, gap.split("/")[1]) not in CHANGED]
    assert gaps == [], f"{name}: the fake lacks {gaps}"


async def by_type(bot: httpx.AsyncClient, marker: int | None) -> tuple[dict[str, Any], int]:
    updates, marker = await drain(bot, marker)
    return {u["update_type"]: u for u in updates}, marker


async def test_updates_have_the_fields_of_real_ones(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    user = await new_user(control)
    _, marker = await drain(bot)
    uid = user["user_id"]
    owner = (
        await control.post("/_control/users", json={"first_name": "O", "last_name": "W"})
    ).json()
    chat_id = (await control.post("/_control/chats", json={"owner_id": owner["user_id"]})).json()[
        "chat_id"
    ]
    await control.post(f"/_control/chats/{chat_id}/bots", json={})
    await control.post(f"/_control/chats/{chat_id}/members", json={"user_id": uid, "inviter_id": 1})
    await control.post(f"/_control/chats/{chat_id}/title", json={"user_id": uid, "title": "T"})
    first = await control.post("/_control/messages", json={"user_id": uid, "text": "one"})
    mid = first.json()["message"]["body"]["mid"]
    body = {"user_id": uid, "chat_id": chat_id, "text": "fwd", "forward": mid}
    await control.post("/_control/messages", json=body)
    await control.patch(f"/_control/messages/{mid}", json={"text": "edited"})
    await control.post("/_control/callbacks", json={"user_id": uid, "mid": mid, "payload": "p"})
    await control.delete(f"/_control/messages/{mid}")
    await control.post(f"/_control/users/{uid}/stop", json={})
    bot_id = (await bot.get("/me")).json()["user_id"]
    got, marker = await by_type(bot, marker)
    await control.post(f"/_control/users/{uid}/start", json={})
    await control.delete(f"/_control/chats/{chat_id}/bots/{bot_id}")
    later, _ = await by_type(bot, marker)
    got.update(later)
    for kind in (
        "bot_added", "user_added", "chat_title_changed", "message_created", "message_edited",
        "message_callback", "message_removed", "bot_stopped", "bot_started", "bot_removed",
    ):  # fmt: skip
        check(f"update.{kind}", got[kind])


async def test_bot_and_chat_objects_have_the_fields_of_real_ones(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    check("botInfo.ok", (await bot.get("/me")).json())
    user = await new_user(control)
    check("chats_dialog-with-user", (await bot.get(f"/chats/{user['chat_id']}")).json())
    body = {"owner_id": user["user_id"], "title": "G"}
    chat_id = (await control.post("/_control/chats", json=body)).json()["chat_id"]
    await control.post(f"/_control/chats/{chat_id}/bots", json={})
    sent = await bot.post("/messages", params={"chat_id": chat_id}, json={"text": "pin"})
    await bot.put(
        f"/chats/{chat_id}/pin", json={"message_id": sent.json()["message"]["body"]["mid"]}
    )
    chat = (await bot.get(f"/chats/{chat_id}")).json()
    check("chats_get-chat-by-id", chat)
    check("chats_chat-path-result", chat)
    check("chats_get-pin-message", (await bot.get(f"/chats/{chat_id}/pin")).json())
    check("chats_get-members", (await bot.get(f"/chats/{chat_id}/members")).json())
    check("chats_get-admins", (await bot.get(f"/chats/{chat_id}/members/admins")).json())
    check("chats_get-membership", (await bot.get(f"/chats/{chat_id}/members/me")).json())


async def test_errors_are_the_real_ones(tmp_path: Path) -> None:
    from maxgate.fakemax import FakeMax, FakeMaxConfig, create_app

    fake = FakeMax(FakeMaxConfig(not_ready_seconds=60, data_dir=str(tmp_path)))
    transport = httpx.ASGITransport(app=create_app(fake=fake))
    async with httpx.AsyncClient(transport=transport, base_url="http://f") as client:
        assert (await client.get("/me")).json() == stab("error.invalid-token")
        headers = {"Authorization": fake.config.tokens[0]}
        user = (await client.post("/_control/users", json={})).json()
        endpoint = (await client.post("/uploads", params={"type": "file"}, headers=headers)).json()
        token = (await client.post(endpoint["url"], files={"data": ("a", b"a")})).json()["token"]
        attach = {"attachments": [{"type": "file", "payload": {"token": token}}]}
        answer = await client.post(
            "/messages", params={"user_id": user["user_id"]}, json=attach, headers=headers
        )
        assert answer.json()["code"] == stab("error.attachment.not.ready")["code"]
