"""The upload flow as the official clients run it, and /messages."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest

from maxgate.fakemax import FakeMax, FakeMaxConfig, create_app
from maxgate.fakemax.contract import Contract
from tests.fakemax.conftest import drain, new_user


async def upload(bot: httpx.AsyncClient, kind: str, data: bytes, name: str) -> dict[str, Any]:
    """POST /uploads, then the bytes as multipart ``data``: the attachment payload."""
    endpoint = (await bot.post("/uploads", params={"type": kind})).json()
    answer = await bot.post(endpoint["url"], files={"data": (name, data)})
    assert answer.status_code == 200, answer.text
    if kind in ("video", "audio"):
        assert answer.text.endswith("<retval>1</retval>")
        return {"token": endpoint["token"]}
    result: dict[str, Any] = answer.json()
    return result


async def test_a_file_goes_up_and_out_with_its_name_and_size(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    user = await new_user(control)
    payload = await upload(bot, "file", b"report body", "report.pdf")
    assert set(payload) == {"token"}
    body = {"text": "here", "attachments": [{"type": "file", "payload": payload}]}
    sent = (await bot.post("/messages", params={"user_id": user["user_id"]}, json=body)).json()
    attachment = sent["message"]["body"]["attachments"][0]
    assert (attachment["filename"], attachment["size"]) == ("report.pdf", 11)
    assert sent["message"]["recipient"] == {
        "chat_id": user["chat_id"],
        "chat_type": "dialog",
        "user_id": user["user_id"],
    }
    link = await control.get(attachment["payload"]["url"])
    assert link.content == b"report body"
    seen = (await control.get(f"/_control/chats/{user['chat_id']}/messages")).json()
    assert seen["messages"][0]["body"]["mid"] == sent["message"]["body"]["mid"]


async def test_an_image_answers_photos_and_is_sent_by_them(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    user = await new_user(control)
    payload = await upload(bot, "image", b"\x89PNG...", "a.png")
    assert list(payload) == ["photos"]
    body = {"text": None, "attachments": [{"type": "image", "payload": payload}]}
    sent = await bot.post("/messages", params={"chat_id": user["chat_id"]}, json=body)
    assert sent.json()["message"]["body"]["attachments"][0]["type"] == "image"


async def test_a_ranged_video_upload_and_its_details(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    user = await new_user(control)
    endpoint = (await bot.post("/uploads", params={"type": "video"})).json()
    data = b"0123456789" * 10
    for start in (80, 0, 40):  # "X-Uploading-Mode: parallel": in any order
        chunk = data[start : start + 40]
        headers = {
            "Content-Range": f"bytes {start}-{start + len(chunk) - 1}/100",
            "Content-Type": "application/x-binary; charset=x-user-defined",
            "Content-Disposition": 'attachment; filename="clip.mp4"',
        }
        answer = await bot.post(endpoint["url"], content=chunk, headers=headers)
        assert answer.status_code == 200
    assert answer.text.endswith("<retval>1</retval>")
    body = {"attachments": [{"type": "video", "payload": {"token": endpoint["token"]}}]}
    sent = await bot.post("/messages", params={"chat_id": user["chat_id"]}, json=body)
    assert sent.status_code == 200
    details = (await bot.get(f"/videos/{endpoint['token']}")).json()
    assert (await control.get(details["urls"]["mp4_720"])).content == data
    assert (await bot.get("/videos/nope")).status_code == 404


async def test_a_fresh_upload_is_not_ready(tmp_path: Any, contract: Contract) -> None:
    config = FakeMaxConfig(not_ready_seconds=60, data_dir=str(tmp_path))
    fake = FakeMax(config)
    fake.observers.append(contract.record)
    transport = httpx.ASGITransport(app=create_app(fake=fake))
    headers = {"Authorization": config.tokens[0]}
    async with httpx.AsyncClient(transport=transport, base_url="http://f", headers=headers) as bot:
        user = (await bot.post("/_control/users", json={"first_name": "U"})).json()
        payload = await upload(bot, "file", b"x", "x.txt")
        body = {"attachments": [{"type": "file", "payload": payload}]}
        answer = await bot.post("/messages", params={"user_id": user["user_id"]}, json=body)
        assert answer.status_code == 400
        assert answer.json() == {
            "code": "attachment.not.ready",
            "message": "Key: errors.process.attachment.file.not.processed",
        }
        fake.files.by_token[payload["token"]].ready_at = 0
        answer = await bot.post("/messages", params={"user_id": user["user_id"]}, json=body)
        assert answer.status_code == 200
    assert contract.problems == []


async def test_a_file_must_be_the_only_attachment(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    user = await new_user(control)
    first = await upload(bot, "file", b"a", "a")
    second = await upload(bot, "image", b"b", "b.png")
    body = {
        "attachments": [
            {"type": "file", "payload": first},
            {"type": "image", "payload": second},
        ]
    }
    answer = await bot.post("/messages", params={"chat_id": user["chat_id"]}, json=body)
    assert answer.status_code == 400


@pytest.mark.parametrize(
    "attachment",
    [
        {"type": "sticker", "payload": {"code": "smile-1"}},
        {"type": "location", "latitude": 55.75, "longitude": 37.62},
        {"type": "contact", "payload": {"name": "Anna", "vcf_phone": "+79990000000"}},
        {"type": "image", "payload": {"url": "https://example.com/cat.jpg"}},
        {"type": "share", "payload": {"url": "https://example.com"}},
        {
            "type": "inline_keyboard",
            "payload": {"buttons": [[{"type": "callback", "text": "Yes", "payload": "y"}]]},
        },
    ],
)
async def test_other_attachments_are_sent(
    bot: httpx.AsyncClient, control: httpx.AsyncClient, attachment: dict[str, Any]
) -> None:
    user = await new_user(control)
    body = {"text": "see", "attachments": [attachment]}
    answer = await bot.post("/messages", params={"chat_id": user["chat_id"]}, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"]["body"]["attachments"][0]["type"] == attachment["type"]


async def test_read_edit_and_delete_messages(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    user = await new_user(control)
    got = await control.post("/_control/messages", json={"user_id": user["user_id"], "text": "q"})
    theirs = got.json()["message"]["body"]["mid"]
    body = {"text": "answer", "link": {"type": "reply", "mid": theirs}}
    sent = (await bot.post("/messages", params={"chat_id": user["chat_id"]}, json=body)).json()
    mine = sent["message"]["body"]["mid"]
    assert sent["message"]["link"]["message"]["mid"] == theirs
    listed = (await bot.get("/messages", params={"chat_id": user["chat_id"]})).json()
    assert [m["body"]["mid"] for m in listed["messages"]] == [mine, theirs]  # newest first
    by_ids = await bot.get("/messages", params={"message_ids": f"{theirs},{mine}"})
    assert len(by_ids.json()["messages"]) == 2
    edited = await bot.put("/messages", params={"message_id": mine}, json={"text": "better"})
    assert edited.json() == {"success": True}
    assert (await bot.get(f"/messages/{mine}")).json()["body"]["text"] == "better"
    assert (
        await bot.put("/messages", params={"message_id": theirs}, json={"text": "x"})
    ).status_code == 403
    assert (await bot.delete("/messages", params={"message_id": mine})).json() == {"success": True}
    assert (await bot.get(f"/messages/{mine}")).status_code == 404


async def test_sending_needs_a_known_recipient_and_content(
    bot: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    user = await new_user(control)
    assert (await bot.post("/messages", json={"text": "x"})).status_code == 400
    assert (
        await bot.post("/messages", params={"chat_id": 5}, json={"text": "x"})
    ).status_code == 404
    empty = await bot.post("/messages", params={"chat_id": user["chat_id"]}, json={"text": ""})
    assert empty.status_code == 400
    long = await bot.post(
        "/messages", params={"chat_id": user["chat_id"]}, json={"text": "x" * 4001}
    )
    assert long.status_code == 400
    updates, _ = await drain(bot)
    assert updates  # the bot_started is still there


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        FakeMaxConfig().rate_limit_rps = 1  # type: ignore[misc]
