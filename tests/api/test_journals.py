"""Journals: getChatHistory, getMessage, last*Messages, getChats; the item shape of spec §4.2."""

from __future__ import annotations

import dataclasses
import time

import httpx
import pytest
import sqlalchemy as sa

from maxgate.domain.records import Location, SharedContact
from maxgate.runtime import Runtime
from maxgate.store import tables as t
from tests.api._support import (
    CONTACT,
    assert_error,
    get_message,
    invalid,
    ok,
    send_text,
    upload,
    wait_for_message,
)
from tests.conftest import Account

COMMON_KEYS = {
    "type",
    "idMessage",
    "timestamp",
    "typeMessage",
    "chatId",
    "senderId",
    "senderName",
    "isForwarded",
    "forwardingScore",
    "isEdited",
    "isDeleted",
}
OUTGOING_KEYS = {"statusMessage", "sendByApi"}
INCOMING_KEYS = {"senderContactName"}
FILE_KEYS = {"downloadUrl", "caption", "fileName", "jpegThumbnail", "mimeType", "isAnimated"}


async def history(
    client: httpx.AsyncClient, account: Account, chat_id: str, count: int | None = None
) -> list[dict[str, object]]:
    body: dict[str, object] = {"chatId": chat_id}
    if count is not None:
        body["count"] = count
    return list(ok(await client.post(account.url("getChatHistory"), json=body)))


async def test_chat_history_newest_first(client: httpx.AsyncClient, account: Account) -> None:
    sent = [await send_text(client, account, CONTACT, f"message {n}") for n in range(3)]
    items = await history(client, account, CONTACT)
    assert [i["idMessage"] for i in items] == sent[::-1]
    assert [i["textMessage"] for i in items] == ["message 2", "message 1", "message 0"]
    assert [i["idMessage"] for i in await history(client, account, CONTACT, 2)] == sent[:0:-1]
    assert [i["idMessage"] for i in await history(client, account, CONTACT, 1)] == sent[-1:]
    assert await history(client, account, "10000778") == []


async def test_chat_history_count_is_checked(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(
        account.url("getChatHistory"), json={"chatId": CONTACT, "count": 0}
    )
    assert_error(response, 400, invalid("'count' must be greater than or equal to 1"))
    response = await client.post(
        account.url("getChatHistory"), json={"chatId": CONTACT, "count": "all"}
    )
    assert_error(response, 400, invalid("'count' must be a number"))


async def test_get_message(client: httpx.AsyncClient, account: Account) -> None:
    id_message = await send_text(client, account, CONTACT, "find me")
    item = ok(await get_message(client, account, CONTACT, id_message))
    assert item["idMessage"] == id_message
    assert item["textMessage"] == "find me"
    assert_error(await get_message(client, account, CONTACT, "1"), 400, "Message not found")
    # The id exists, but in another chat.
    assert_error(
        await get_message(client, account, "10000778", id_message), 400, "Message not found"
    )


async def test_last_messages(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, other_account: Account
) -> None:
    to_other = await send_text(client, account, other_account.chat_id, "to Bob")
    to_contact = await send_text(client, account, CONTACT, "to a contact")
    await wait_for_message(client, other_account, account.chat_id, to_other)

    outgoing = ok(await client.get(account.url("lastOutgoingMessages")))
    assert [i["idMessage"] for i in outgoing] == [to_contact, to_other]
    assert all(i["type"] == "outgoing" for i in outgoing)
    assert ok(await client.get(account.url("lastIncomingMessages"))) == []

    incoming = ok(await client.get(other_account.url("lastIncomingMessages")))
    assert [(i["idMessage"], i["type"]) for i in incoming] == [(to_other, "incoming")]
    assert ok(await client.get(other_account.url("lastOutgoingMessages"))) == []

    # An older message is inside a long window and outside a short one.
    async with runtime.db.write() as conn:
        await conn.execute(
            t.messages.update()
            .where(t.messages.c.id_message == to_other, t.messages.c.instance_id == account.id)
            .values(timestamp=int(time.time()) - 3600)
        )
    short = ok(await client.get(account.url("lastOutgoingMessages"), params={"minutes": 30}))
    assert [i["idMessage"] for i in short] == [to_contact]
    long = ok(await client.get(account.url("lastOutgoingMessages"), params={"minutes": 90}))
    assert [i["idMessage"] for i in long] == [to_contact, to_other]


@pytest.mark.parametrize(
    ("minutes", "details"),
    [
        ("abc", "'minutes' must be a number"),
        ("1.5", "'minutes' must be a number"),
        ("0", "'minutes' must be greater than or equal to 1"),
    ],
)
@pytest.mark.parametrize("method", ["lastIncomingMessages", "lastOutgoingMessages"])
async def test_last_messages_minutes_is_checked(
    client: httpx.AsyncClient, account: Account, method: str, minutes: str, details: str
) -> None:
    response = await client.get(account.url(method), params={"minutes": minutes})
    assert_error(response, 400, invalid(details))


async def test_get_chats(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, other_account: Account
) -> None:
    group = await runtime.sandbox.create_group("Team", [account.id, other_account.id])
    await send_text(client, account, group, "hello team")
    await send_text(client, account, CONTACT, "hello stranger")
    from_bob = await send_text(client, other_account, account.chat_id, "hello Alice")
    await wait_for_message(client, account, other_account.chat_id, from_bob)

    chats = ok(await client.get(account.url("getChats")))
    assert all(set(c) == {"chatId", "phoneNumber"} for c in chats)
    phones = {c["chatId"]: c["phoneNumber"] for c in chats}
    assert phones == {group: 0, CONTACT: 0, other_account.chat_id: other_account.instance.phone}
    assert all(type(p) is int for p in phones.values())


async def test_text_item_shapes(
    client: httpx.AsyncClient, account: Account, other_account: Account
) -> None:
    id_message = await send_text(client, account, other_account.chat_id, "shape")
    outgoing = await wait_for_message(
        client, account, other_account.chat_id, id_message, status="read"
    )
    assert set(outgoing) == COMMON_KEYS | OUTGOING_KEYS | {"textMessage"}
    assert outgoing["type"] == "outgoing"
    assert outgoing["statusMessage"] == "read"
    assert outgoing["sendByApi"] is True
    assert outgoing["senderId"] == account.chat_id
    assert outgoing["senderName"] == "Alice"
    assert type(outgoing["timestamp"]) is int
    assert abs(outgoing["timestamp"] - time.time()) < 60
    assert (outgoing["isForwarded"], outgoing["forwardingScore"]) == (False, 0)
    assert (outgoing["isEdited"], outgoing["isDeleted"]) == (False, False)

    incoming = await wait_for_message(client, other_account, account.chat_id, id_message)
    assert set(incoming) == COMMON_KEYS | INCOMING_KEYS | {"textMessage"}
    assert incoming["type"] == "incoming"
    assert incoming["chatId"] == account.chat_id
    assert incoming["textMessage"] == "shape"
    assert incoming["senderContactName"] == ""


async def test_file_item_shapes(
    client: httpx.AsyncClient, account: Account, other_account: Account
) -> None:
    data = b"%PDF-1.4 tiny"
    body = await upload(
        client,
        account,
        other_account.chat_id,
        data,
        filename="doc.pdf",
        content_type="application/pdf",
        fields={"caption": "a doc"},
    )
    outgoing = await wait_for_message(client, account, other_account.chat_id, body["idMessage"])
    assert set(outgoing) == COMMON_KEYS | OUTGOING_KEYS | FILE_KEYS
    incoming = await wait_for_message(client, other_account, account.chat_id, body["idMessage"])
    assert set(incoming) == COMMON_KEYS | INCOMING_KEYS | FILE_KEYS
    for item in (outgoing, incoming):
        assert item["typeMessage"] == "documentMessage"
        assert (item["fileName"], item["mimeType"], item["caption"]) == (
            "doc.pdf",
            "application/pdf",
            "a doc",
        )
        assert (item["jpegThumbnail"], item["isAnimated"]) == ("", False)
        response = await client.get(item["downloadUrl"])
        assert response.status_code == 200 and response.content == data


async def test_quoted_message_in_the_item(client: httpx.AsyncClient, account: Account) -> None:
    first = await send_text(client, account, CONTACT, "first")
    response = await client.post(
        account.url("sendMessage"),
        json={"chatId": CONTACT, "message": "second", "quotedMessageId": first},
    )
    item = ok(await get_message(client, account, CONTACT, ok(response)["idMessage"]))
    assert "quotedMessage" in item
    assert item["quotedMessage"]["stanzaId"] == first
    assert "quotedMessage" not in ok(await get_message(client, account, CONTACT, first))


async def test_instances_never_read_each_other(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, other_account: Account
) -> None:
    text_id = await send_text(client, account, CONTACT, "private")
    file_id = (await upload(client, account, CONTACT, b"private bytes"))["idMessage"]
    for id_message in (text_id, file_id):
        assert ok(await get_message(client, account, CONTACT, id_message))
        response = await get_message(client, other_account, CONTACT, id_message)
        assert_error(response, 400, "Message not found")
        # Under its own chatId too: ids are scoped per instance and chat.
        response = await get_message(client, other_account, other_account.chat_id, id_message)
        assert_error(response, 400, "Message not found")
    assert await history(client, other_account, CONTACT) == []
    assert ok(await client.get(other_account.url("lastOutgoingMessages"))) == []
    assert ok(await client.get(other_account.url("getChats"))) == []
    async with runtime.db.read() as conn:
        count = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(t.messages)
                .where(t.messages.c.instance_id == other_account.id)
            )
        ).scalar_one()
    assert count == 0


async def test_get_chats_shows_the_same_number_on_both_sides(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, other_account: Account
) -> None:
    # Alice writes first (through the API, then from her phone), Bob answers: each side's chat
    # carries the other's number, never 0 and never the account's own.
    to_bob = await send_text(client, account, other_account.chat_id, "hello Bob")
    await wait_for_message(client, other_account, account.chat_id, to_bob)
    await runtime.sandbox.own_send(account.instance, other_account.chat_id, text="from my phone")
    from_bob = await send_text(client, other_account, account.chat_id, "hello Alice")
    await wait_for_message(client, account, other_account.chat_id, from_bob)

    alice = {c["chatId"]: c["phoneNumber"] for c in ok(await client.get(account.url("getChats")))}
    bob = {
        c["chatId"]: c["phoneNumber"] for c in ok(await client.get(other_account.url("getChats")))
    }
    assert alice == {other_account.chat_id: other_account.instance.phone}
    assert bob == {account.chat_id: account.instance.phone}


async def test_a_message_without_a_number_keeps_the_known_one(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, other_account: Account
) -> None:
    from_bob = await send_text(client, other_account, account.chat_id, "hello Alice")
    await wait_for_message(client, account, other_account.chat_id, from_bob)
    await runtime.sandbox.own_send(account.instance, other_account.chat_id, text="phone again")
    await send_text(client, account, other_account.chat_id, "and through the API")
    chats = ok(await client.get(account.url("getChats")))
    assert chats == [{"chatId": other_account.chat_id, "phoneNumber": other_account.instance.phone}]


async def test_locations_contacts_edits_and_removals_in_the_journal(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    sandbox, journal = runtime.sandbox, runtime.journal
    where = Location(latitude=55.75, longitude=37.62)
    card = SharedContact(display_name="Dan", vcard="BEGIN:VCARD\nFN:Dan\nEND:VCARD")
    located = await sandbox.contact_send(account.id, CONTACT, location=where)
    carded = await sandbox.contact_send(account.id, CONTACT, contact=card)
    typo = await sandbox.contact_send(account.id, CONTACT, text="helo")
    gone = await sandbox.contact_send(account.id, CONTACT, text="oops")
    carried = await sandbox.history(account.instance, CONTACT, 0)
    [typo_inbound] = [m for m in carried if m.id_message == typo]
    await journal.on_edit(dataclasses.replace(typo_inbound, text="hello"))
    await journal.on_delete(account.id, chat_id=CONTACT, id_message=gone)

    items = {i["idMessage"]: i for i in await history(client, account, CONTACT)}
    assert set(items[located]) == COMMON_KEYS | INCOMING_KEYS | {"location"}
    assert items[located]["location"] == {
        "latitude": 55.75, "longitude": 37.62, "forwardingScore": 0, "isForwarded": False
    }  # fmt: skip
    assert items[carded]["contact"]["displayName"] == "Dan"
    assert items[carded]["contact"]["vcard"] == card.vcard
    assert (items[typo]["textMessage"], items[typo]["isEdited"]) == ("hello", True)
    assert (items[gone]["isDeleted"], items[gone]["isEdited"]) == (True, False)
    assert items[located]["isEdited"] is False and items[located]["isDeleted"] is False
    one = ok(await get_message(client, account, CONTACT, gone))
    assert one["isDeleted"] is True and one["textMessage"] == "oops"
