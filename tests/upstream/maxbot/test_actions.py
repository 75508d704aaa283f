"""The maxbot adapter's sending and service actions against a real ``maxgate fakemax`` (which
checks every request against MAX's schema): a location and a contact card as attachments,
``editMessage`` (PUT /messages), ``deleteMessage`` (DELETE /messages), and ``sendTyping``
(POST /chats/{chatId}/actions on the bot's dialog with the person)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from maxgate.domain.records import Instance, Location, Message, SharedContact
from maxgate.net.client import OutboundClient
from maxgate.store import instances as instance_rows
from maxgate.store import maxbot as store
from maxgate.store import messages as message_rows
from maxgate.store.database import Database
from maxgate.upstream.maxbot import MaxBot

TOKEN = "actions-test-token"
INSTANCE = 1103000002


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'maxgate.db'}")
    await database.migrate()
    row = {
        "id": INSTANCE,
        "token_hash": "0" * 64,
        "chat_id": f"{INSTANCE}",
        "phone": 0,
        "created_at": time.time(),
        "upstream": "maxbot",
    }
    await instance_rows.insert(database, row)
    await store.add(database, INSTANCE, TOKEN)
    try:
        yield database
    finally:
        await database.close()


INSTANCE_RECORD = Instance(
    INSTANCE, "bot", str(INSTANCE), 0, "authorized", {}, 0.0, False, "maxbot"
)


def outgoing(chat_id: str, id_message: str, **fields: object) -> Message:
    values: dict[str, object] = {
        "pk": 0,
        "instance_id": INSTANCE,
        "chat_id": chat_id,
        "id_message": id_message,
        "direction": "outgoing",
        "type_message": "textMessage",
        "timestamp": int(time.time()),
        "sender_id": str(INSTANCE),
        "sender_name": "bot",
        "text": None,
        "caption": "",
        "status": "sent",
        "status_description": None,
        "send_by_api": True,
        "quoted_id": None,
        "file": None,
    }
    values.update(fields)
    return Message(**values)  # type: ignore[arg-type]


async def journaled(db: Database, message: Message, mid: str) -> None:
    """The message in the journal with MAX's id, as the outbox leaves it."""
    async with db.write() as conn:
        await message_rows.insert(
            conn,
            {
                "instance_id": INSTANCE,
                "chat_id": message.chat_id,
                "id_message": message.id_message,
                "direction": "outgoing",
                "type_message": message.type_message,
                "timestamp": message.timestamp,
                "sender_id": message.sender_id,
                "sender_name": "bot",
                "text": message.text,
                "caption": "",
                "status": "sent",
                "send_by_api": True,
                "upstream_id": mid,
            },
        )


def exchanges(log: Path) -> list[dict[str, Any]]:
    """The calls the fake answered, in order (its exchange log)."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line) for line in lines]


async def test_location_contact_edit_delete_typing_read(
    fake: tuple[str, Path], client: OutboundClient, db: Database
) -> None:
    base, log = fake
    user = httpx.post(f"{base}/_control/users", json={"first_name": "Ivan"}).json()
    chat = httpx.post(f"{base}/_control/users/{user['user_id']}/start", json={}).json()
    person = str(user["user_id"])
    adapter = MaxBot(db, lambda: client, base_url=base)

    place = outgoing(person, "1", type_message="locationMessage", location=Location(55.75, 37.61))
    card = SharedContact("Artem", "BEGIN:VCARD\nVERSION:3.0\nFN:Artem\nEND:VCARD", phone="7900")
    contact = outgoing(person, "2", type_message="contactMessage", contact=card)
    text = outgoing(person, "3", text="draft")
    mids = [await adapter.send(INSTANCE_RECORD, m, None) for m in (place, contact, text)]
    await journaled(db, text, mids[2])

    await adapter.edit_message(INSTANCE_RECORD, text, "final")
    messages = httpx.get(f"{base}/_control/chats/{chat['chat_id']}/messages").json()["messages"]
    by_mid = {m["body"]["mid"]: m for m in messages}
    [located] = by_mid[mids[0]]["body"]["attachments"]
    assert (located["type"], located["latitude"], located["longitude"]) == (
        "location",
        55.75,
        37.61,
    )
    [shared] = by_mid[mids[1]]["body"]["attachments"]
    assert shared["type"] == "contact" and "FN:Artem" in shared["payload"]["vcf_info"]
    assert by_mid[mids[2]]["body"]["text"] == "final"

    await adapter.send_typing(INSTANCE_RECORD, person, milliseconds=3000, recording=False)
    await adapter.send_typing(INSTANCE_RECORD, person, milliseconds=3000, recording=True)
    actions = [
        (entry["path_params"], entry["body"], entry["status"])
        for entry in exchanges(log)
        if entry["path"] == "/chats/{chatId}/actions"
    ]
    dialog = {"chatId": str(chat["chat_id"])}
    assert actions == [
        (dialog, {"action": "typing_on"}, 200),
        (dialog, {"action": "sending_audio"}, 200),
    ]

    await adapter.delete_message(INSTANCE_RECORD, text)
    messages = httpx.get(f"{base}/_control/chats/{chat['chat_id']}/messages").json()["messages"]
    assert mids[2] not in {m["body"]["mid"] for m in messages}


async def test_a_forward_links_to_maxs_original(
    fake: tuple[str, Path], client: OutboundClient, db: Database
) -> None:
    base, _log = fake
    user = httpx.post(f"{base}/_control/users", json={"first_name": "Ivan"}).json()
    chat = httpx.post(f"{base}/_control/users/{user['user_id']}/start", json={}).json()
    person = str(user["user_id"])
    adapter = MaxBot(db, lambda: client, base_url=base)
    original = outgoing(person, "10", text="news")
    mid = await adapter.send(INSTANCE_RECORD, original, None)
    await journaled(db, original, mid)
    copy = outgoing(person, "11", text="news")
    async with db.write() as conn:  # as forwardMessages journals it
        await message_rows.insert(
            conn,
            {
                "instance_id": INSTANCE,
                "chat_id": person,
                "id_message": "11",
                "direction": "outgoing",
                "type_message": "textMessage",
                "timestamp": copy.timestamp,
                "sender_id": str(INSTANCE),
                "sender_name": "bot",
                "text": "news",
                "caption": "",
                "status": "pending",
                "send_by_api": True,
                "details": json.dumps({"forwarded": {"chatId": person, "idMessage": "10"}}),
            },
        )
    forwarded = await adapter.send(INSTANCE_RECORD, copy, None)
    assert forwarded != mid
    messages = httpx.get(f"{base}/_control/chats/{chat['chat_id']}/messages").json()["messages"]
    [sent] = [m for m in messages if m["body"]["mid"] == forwarded]
    assert sent["link"]["type"] == "forward"
