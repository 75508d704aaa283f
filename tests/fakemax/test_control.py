"""The control API: each thing a user does reaches the bot as the update the platform sends
(and the contract check in conftest holds every one of them to the schema)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.fakemax.conftest import drain, new_user


async def last_update(bot: httpx.AsyncClient) -> dict[str, Any]:
    updates, _ = await drain(bot)
    assert updates, "no update"
    return updates[-1]  # type: ignore[no-any-return]


async def test_starting_the_bot_is_bot_started(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    user = await control.post("/_control/users", json={"first_name": "Olga", "username": "olga"})
    user_id = user.json()["user_id"]
    answer = await control.post(f"/_control/users/{user_id}/start", json={"payload": "ref42"})
    update = await last_update(bot)
    assert update["update_type"] == "bot_started"
    assert (update["chat_id"], update["payload"]) == (answer.json()["chat_id"], "ref42")
    assert update["user"]["username"] == "olga"


@pytest.mark.parametrize(
    ("attachment", "kind"),
    [
        ({"type": "file", "filename": "a.txt", "text": "hello"}, "file"),
        (
            {
                "type": "image",
                "filename": "p.jpg",
                "content_base64": base64.b64encode(b"jpg").decode(),
            },
            "image",
        ),
        ({"type": "video", "filename": "v.mp4", "text": "mp4"}, "video"),
        ({"type": "audio", "filename": "a.ogg", "text": "ogg"}, "audio"),
        ({"type": "sticker", "code": "cat"}, "sticker"),
        ({"type": "location", "latitude": 59.9, "longitude": 30.3}, "location"),
        ({"type": "contact", "name": "Petr", "phone": "+79001112233"}, "contact"),
        ({"type": "share", "url": "https://max.ru"}, "share"),
    ],
)
async def test_a_user_sends_each_kind(
    bot: httpx.AsyncClient, control: httpx.AsyncClient, attachment: dict[str, Any], kind: str
) -> None:
    user = await new_user(control)
    body = {"user_id": user["user_id"], "text": "look", "attachments": [attachment]}
    assert (await control.post("/_control/messages", json=body)).status_code == 200
    update = await last_update(bot)
    assert update["update_type"] == "message_created"
    assert update["message"]["sender"]["user_id"] == user["user_id"]
    assert update["message"]["recipient"]["chat_type"] == "dialog"
    got = update["message"]["body"]["attachments"][0]
    assert got["type"] == kind
    if kind in ("file", "image", "video", "audio"):
        data = (await control.get(got["payload"]["url"])).content
        expected = attachment.get("text", "").encode() or base64.b64decode(
            attachment["content_base64"]
        )
        assert data == expected


async def test_a_big_file_goes_through_the_raw_files_route(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    user = await new_user(control)
    data = bytes(range(256)) * 4096  # 1 MiB
    stored = await control.post(
        "/_control/files", params={"type": "file", "filename": "big.bin"}, content=data
    )
    file_id = stored.json()["file_id"]
    body = {"user_id": user["user_id"], "attachments": [{"type": "file", "file_id": file_id}]}
    await control.post("/_control/messages", json=body)
    got = (await last_update(bot))["message"]["body"]["attachments"][0]
    assert (got["filename"], got["size"]) == ("big.bin", len(data))
    ranged = await control.get(got["payload"]["url"], headers={"Range": "bytes=10-19"})
    assert (ranged.status_code, ranged.content) == (206, data[10:20])


async def test_edit_and_remove_are_updates(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    user = await new_user(control)
    sent = await control.post(
        "/_control/messages", json={"user_id": user["user_id"], "text": "tpyo"}
    )
    mid = sent.json()["message"]["body"]["mid"]
    await control.patch(f"/_control/messages/{mid}", json={"text": "typo"})
    edited = await last_update(bot)
    assert (edited["update_type"], edited["message"]["body"]["text"]) == ("message_edited", "typo")
    await control.delete(f"/_control/messages/{mid}")
    removed = await last_update(bot)
    assert removed == {
        "update_type": "message_removed",
        "timestamp": removed["timestamp"],
        "message_id": mid,
        "chat_id": user["chat_id"],
        "user_id": user["user_id"],
    }


async def test_a_group_with_the_bot(bot: httpx.AsyncClient, control: httpx.AsyncClient) -> None:
    owner = (await control.post("/_control/users", json={"first_name": "Owner"})).json()
    other = (await control.post("/_control/users", json={"first_name": "Other"})).json()
    chat = await control.post(
        "/_control/chats", json={"title": "Team", "owner_id": owner["user_id"], "members": []}
    )
    chat_id = chat.json()["chat_id"]
    assert chat_id < 0
    await control.post(f"/_control/chats/{chat_id}/bots", json={})
    added = await last_update(bot)
    assert (added["update_type"], added["chat_id"], "user" in added) == (
        "bot_added",
        chat_id,
        False,
    )
    await control.post(f"/_control/chats/{chat_id}/members", json={"user_id": other["user_id"]})
    assert (await last_update(bot))["update_type"] == "user_added"
    await control.post(
        "/_control/messages",
        json={"user_id": other["user_id"], "chat_id": chat_id, "text": "hi all"},
    )
    message = (await last_update(bot))["message"]
    assert message["recipient"] == {"chat_id": chat_id, "chat_type": "chat", "user_id": None}
    admin = owner["user_id"]
    left = await control.delete(f"/_control/chats/{chat_id}/members/{other['user_id']}")
    assert left.status_code == 200
    removed = await last_update(bot)
    assert (removed["update_type"], removed["user"]["user_id"]) == (
        "user_removed",
        other["user_id"],
    )
    assert "admin_id" not in removed  # the user left
    again = await control.delete(f"/_control/chats/{chat_id}/members/{other['user_id']}")
    assert again.status_code == 400
    await control.post(f"/_control/chats/{chat_id}/members", json={"user_id": other["user_id"]})
    await last_update(bot)
    kicked = f"/_control/chats/{chat_id}/members/{other['user_id']}?admin_id={admin}"
    await control.delete(kicked)
    assert (await last_update(bot))["admin_id"] == admin
    reply = await bot.post("/messages", params={"chat_id": chat_id}, json={"text": "hello"})
    assert reply.status_code == 200
    bot_id = (await bot.get("/me")).json()["user_id"]
    await control.delete(f"/_control/chats/{chat_id}/bots/{bot_id}")
    assert (await last_update(bot))["update_type"] == "bot_removed"
    assert (
        await bot.post("/messages", params={"chat_id": chat_id}, json={"text": "x"})
    ).status_code == 404


async def test_control_errors_have_the_error_shape(control: httpx.AsyncClient) -> None:
    for answer in (
        await control.post("/_control/users/1/start", json={}),
        await control.post("/_control/messages", json={"text": "no user"}),
        await control.post("/_control/messages", content=b"{nope"),
    ):
        assert answer.status_code in (400, 404)
        assert set(answer.json()) == {"code", "message"}


async def test_a_button_press_and_its_answer(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    user = await new_user(control)
    keyboard = {
        "type": "inline_keyboard",
        "payload": {"buttons": [[{"type": "callback", "text": "Yes", "payload": "y"}]]},
    }
    body = {"text": "Sure?", "attachments": [keyboard]}
    sent = await bot.post("/messages", params={"chat_id": user["chat_id"]}, json=body)
    mid = sent.json()["message"]["body"]["mid"]
    pressed = await control.post(
        "/_control/callbacks", json={"user_id": user["user_id"], "mid": mid, "payload": "y"}
    )
    update = await last_update(bot)
    assert update["update_type"] == "message_callback"
    assert update["callback"]["callback_id"] == pressed.json()["callback_id"]
    answer = await bot.post(
        "/answers",
        params={"callback_id": update["callback"]["callback_id"]},
        json={"message": {"text": "Done"}, "notification": None},
    )
    assert answer.json() == {"success": True}
    assert (await bot.get(f"/messages/{mid}")).json()["body"]["text"] == "Done"


async def test_renaming_a_group_is_chat_title_changed(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    owner = (await control.post("/_control/users", json={"first_name": "O"})).json()
    chat = await control.post("/_control/chats", json={"owner_id": owner["user_id"]})
    chat_id = chat.json()["chat_id"]
    await control.post(f"/_control/chats/{chat_id}/bots", json={})
    await control.post(
        f"/_control/chats/{chat_id}/title", json={"user_id": owner["user_id"], "title": "New"}
    )
    update = await last_update(bot)
    assert (update["update_type"], update["title"]) == ("chat_title_changed", "New")


async def test_a_user_replies_and_forwards(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    user = await new_user(control)
    sent = await bot.post("/messages", params={"chat_id": user["chat_id"]}, json={"text": "q?"})
    mid = sent.json()["message"]["body"]["mid"]
    for field, kind in (("reply_to", "reply"), ("forward", "forward")):
        body = {"user_id": user["user_id"], "text": "a", field: mid}
        await control.post("/_control/messages", json=body)
        link = (await last_update(bot))["message"]["link"]
        assert (link["type"], link["message"]["mid"]) == (kind, mid)
