"""The sending and service methods of issue 13 on the sandbox: sendLocation, sendContact,
forwardMessages, sendTyping, editMessage, deleteMessage, readChat, getContacts,
getContactInfo, getAvatar — success, each documented error text, refusal by a kind that
lacks them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from maxgate.runtime import Runtime
from tests.api._support import CONTACT, assert_error, invalid, ok, send_text, wait_for_message
from tests.conftest import Account

GROUP = "-10000000000001"


async def seen(runtime: Runtime, account: Account, chat_id: str, id_message: str) -> Any:
    """What the other side sees of a message of ``account`` (the sandbox's marks)."""
    return await runtime.sandbox.seen(account.id, chat_id, id_message)


async def wait_seen(
    runtime: Runtime, account: Account, chat_id: str, id_message: str, key: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found: dict[str, Any] = await seen(runtime, account, chat_id, id_message)
        if found.get(key):
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"{id_message}: never {key}")


async def sent(client: httpx.AsyncClient, account: Account, chat_id: str, text: str) -> str:
    """A text sent and handed to the messenger (status read)."""
    id_message = await send_text(client, account, chat_id, text)
    await wait_for_message(client, account, chat_id, id_message, status="read")
    return id_message


# --- sendLocation -----------------------------------------------------------------------------


async def test_send_location(client: httpx.AsyncClient, account: Account) -> None:
    body = {
        "chatId": CONTACT,
        "nameLocation": "Restaurant",
        "address": "123456, Perm",
        "latitude": 12.3456789,
        "longitude": 10.1112131,
    }
    id_message = ok(await client.post(account.url("sendLocation"), json=body))["idMessage"]
    item = await wait_for_message(client, account, CONTACT, id_message, status="read")
    assert item["typeMessage"] == "locationMessage"
    assert item["location"]["latitude"] == 12.3456789
    assert item["location"]["nameLocation"] == "Restaurant"


async def test_send_location_reaches_another_instance(
    client: httpx.AsyncClient, account: Account, other_account: Account
) -> None:
    body = {"chatId": other_account.chat_id, "latitude": 55.75, "longitude": 37.61}
    id_message = ok(await client.post(account.url("sendLocation"), json=body))["idMessage"]
    item = await wait_for_message(client, other_account, account.chat_id, id_message)
    assert item["type"] == "incoming" and item["typeMessage"] == "locationMessage"
    assert item["location"]["longitude"] == 37.61


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"chatId": CONTACT, "latitude": 1}, "'value' must have at least 3 keys"),
        ({"chatId": CONTACT, "latitude": 1, "x": 2}, "'longitude' is required"),
        ({"chatId": CONTACT, "latitude": "1", "longitude": 2}, "'latitude' must be a number"),
        (
            {"chatId": CONTACT, "latitude": 91, "longitude": 2},
            "'latitude' must be less than or equal to 90",
        ),
        (
            {"chatId": "x", "latitude": 1, "longitude": 2},
            "'chatId' with value 'x' fails to match the required pattern",
        ),
    ],
)
async def test_send_location_errors(
    client: httpx.AsyncClient, account: Account, body: dict[str, Any], details: str
) -> None:
    assert_error(await client.post(account.url("sendLocation"), json=body), 400, invalid(details))


# --- sendContact ------------------------------------------------------------------------------


async def test_send_contact(client: httpx.AsyncClient, account: Account) -> None:
    card = {"phoneContact": 79001234568, "firstName": "Artem", "lastName": "Evpatoriysky"}
    answer = await client.post(
        account.url("sendContact"), json={"chatId": CONTACT, "contact": card}
    )
    id_message = ok(answer)["idMessage"]
    item = await wait_for_message(client, account, CONTACT, id_message, status="read")
    assert item["typeMessage"] == "contactMessage"
    assert item["contact"]["displayName"] == "Artem Evpatoriysky"
    assert item["contact"]["phoneNumber"] == "79001234568"
    assert "TEL;type=CELL;waid=79001234568:+79001234568" in item["contact"]["vcard"]


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"chatId": CONTACT}, "'value' must have at least 2 keys"),
        ({"chatId": CONTACT, "quotedMessageId": "1"}, "'contact' is required"),
        ({"chatId": CONTACT, "contact": "Artem"}, "'contact' must be of type object"),
        ({"chatId": CONTACT, "contact": {"firstName": "A"}}, "'contact.phoneContact' is required"),
        (
            {"chatId": CONTACT, "contact": {"phoneContact": 79001234568}},
            "'contact' must contain at least one of [firstName, middleName, lastName, company]",
        ),
        (
            {"chatId": CONTACT, "contact": {"phoneContact": "7900", "company": "B"}},
            "'contact.phoneContact' must be a number",
        ),
    ],
)
async def test_send_contact_errors(
    client: httpx.AsyncClient, account: Account, body: dict[str, Any], details: str
) -> None:
    assert_error(await client.post(account.url("sendContact"), json=body), 400, invalid(details))


# --- editMessage, deleteMessage ---------------------------------------------------------------


async def test_edit_message(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, other_account: Account
) -> None:
    id_message = await sent(client, account, CONTACT, "draft")
    body = {"chatId": CONTACT, "idMessage": id_message, "message": "final"}
    assert ok(await client.post(account.url("editMessage"), json=body)) == {"idMessage": id_message}
    item = await wait_for_message(client, account, CONTACT, id_message)
    assert item["textMessage"] == "final" and item["isEdited"] is True
    assert await seen(runtime, account, CONTACT, id_message) == {"text": "final", "edited": True}

    to_bob = await sent(client, account, other_account.chat_id, "hi Bob")
    body = {"chatId": other_account.chat_id, "idMessage": to_bob, "message": "hello Bob"}
    ok(await client.post(account.url("editMessage"), json=body))
    bobs = await wait_for_message(client, other_account, account.chat_id, to_bob)
    assert bobs["textMessage"] == "hello Bob" and bobs["isEdited"] is True


async def test_edit_message_errors(
    client: httpx.AsyncClient, account: Account, other_account: Account
) -> None:
    url = account.url("editMessage")
    missing = {"chatId": CONTACT, "idMessage": "123", "message": "x"}
    assert_error(await client.post(url, json=missing), 400, "Message by id not found")
    assert_error(
        await client.post(url, json={"chatId": CONTACT, "idMessage": "1"}),
        400,
        invalid("'value' must have at least 3 keys"),
    )
    too_long = {"chatId": CONTACT, "idMessage": "1", "message": "я" * 4001}
    assert_error(
        await client.post(url, json=too_long),
        400,
        invalid("'message' length must be less than or equal to 4000 characters long"),
    )
    incoming = await sent(client, other_account, account.chat_id, "from Bob")
    await wait_for_message(client, account, other_account.chat_id, incoming)
    theirs = {"chatId": other_account.chat_id, "idMessage": incoming, "message": "x"}
    assert_error(
        await client.post(url, json=theirs),
        400,
        f"Message {incoming} is incoming: only outgoing messages can be changed",
    )
    place = {"chatId": CONTACT, "latitude": 1, "longitude": 2}
    located = ok(await client.post(account.url("sendLocation"), json=place))["idMessage"]
    await wait_for_message(client, account, CONTACT, located, status="read")
    edit = {"chatId": CONTACT, "idMessage": located, "message": "x"}
    assert_error(
        await client.post(url, json=edit),
        400,
        f"Message {located} is a locationMessage: only text messages can be edited",
    )


async def test_delete_message(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, other_account: Account
) -> None:
    id_message = await sent(client, account, CONTACT, "oops")
    body = {"chatId": CONTACT, "idMessage": id_message}
    assert ok(await client.post(account.url("deleteMessage"), json=body)) == {}
    item = await wait_for_message(client, account, CONTACT, id_message)
    assert item["isDeleted"] is True
    assert (await seen(runtime, account, CONTACT, id_message))["deleted"] is True
    again = await client.post(account.url("deleteMessage"), json=body)
    assert_error(again, 400, "Message by id not found")

    to_bob = await sent(client, account, other_account.chat_id, "secret")
    body = {"chatId": other_account.chat_id, "idMessage": to_bob}
    ok(await client.post(account.url("deleteMessage"), json=body))
    bobs = await wait_for_message(client, other_account, account.chat_id, to_bob)
    assert bobs["isDeleted"] is True


# --- readChat and the read settings -----------------------------------------------------------


async def test_read_chat_marks_what_the_contact_sent(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    first = await runtime.sandbox.contact_send(account.id, CONTACT, text="one")
    second = await runtime.sandbox.contact_send(account.id, CONTACT, text="two")
    body = {"chatId": CONTACT, "idMessage": first}
    assert ok(await client.post(account.url("readChat"), json=body)) == {"setRead": True}
    assert (await seen(runtime, account, CONTACT, first)).get("read") is True
    assert (await seen(runtime, account, CONTACT, second)).get("read") is None
    ok(await client.post(account.url("readChat"), json={"chatId": CONTACT}))
    assert (await seen(runtime, account, CONTACT, second)).get("read") is True


async def test_read_chat_tells_a_sandbox_sender(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, other_account: Account
) -> None:
    # the sender's status reaches "read" through the recipient's read mark
    id_message = await send_text(client, other_account, account.chat_id, "read me")
    await wait_for_message(client, account, other_account.chat_id, id_message)
    ok(await client.post(account.url("readChat"), json={"chatId": other_account.chat_id}))
    await wait_seen(runtime, account, other_account.chat_id, id_message, "read")
    await wait_for_message(client, other_account, account.chat_id, id_message, status="read")


async def test_mark_incoming_messages_readed(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    settings = {"markIncomingMessagesReaded": "yes"}
    ok(await client.post(account.url("setSettings"), json=settings))
    id_message = await runtime.sandbox.contact_send(account.id, CONTACT, text="hello")
    assert (await seen(runtime, account, CONTACT, id_message)).get("read") is True


async def test_mark_incoming_messages_readed_on_reply(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    settings = {"markIncomingMessagesReadedOnReply": "yes"}
    ok(await client.post(account.url("setSettings"), json=settings))
    id_message = await runtime.sandbox.contact_send(account.id, CONTACT, text="hello")
    assert (await seen(runtime, account, CONTACT, id_message)).get("read") is None
    await send_text(client, account, CONTACT, "hi back")
    await wait_seen(runtime, account, CONTACT, id_message, "read")


async def test_read_chat_errors(client: httpx.AsyncClient, account: Account) -> None:
    assert_error(
        await client.post(account.url("readChat"), json={}),
        400,
        invalid("'value' must have at least 1 keys"),
    )
    assert_error(
        await client.post(account.url("readChat"), json={"chatId": 1}),
        400,
        invalid("'chatId' must be a string"),
    )


# --- sendTyping -------------------------------------------------------------------------------


async def test_send_typing(client: httpx.AsyncClient, runtime: Runtime, account: Account) -> None:
    body = {"chatId": CONTACT, "typingTime": 5000, "typingType": "recording"}
    assert ok(await client.post(account.url("sendTyping"), json=body)) == {}
    until, kind = runtime.sandbox.typing[(account.id, CONTACT)]
    assert kind == "recording" and until > time.time() + 4
    url = account.url("sendTyping")
    for value, details in (
        ("5", "'typingTime' must be a number"),
        (999, "'typingTime' must be larger than or equal to 1000"),
        (20001, "'typingTime' must be less than or equal to 20000"),
    ):
        answer = await client.post(url, json={"chatId": CONTACT, "typingTime": value})
        assert_error(answer, 400, invalid(details))


# --- forwardMessages --------------------------------------------------------------------------


async def test_forward_messages_gives_each_its_own_id(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, other_account: Account
) -> None:
    one = await runtime.sandbox.contact_send(account.id, CONTACT, text="one")
    two = await runtime.sandbox.contact_send(account.id, CONTACT, text="two")
    await wait_for_message(client, account, CONTACT, two)
    body = {"chatId": other_account.chat_id, "chatIdFrom": CONTACT, "messages": [one, two, one]}
    answer = ok(await client.post(account.url("forwardMessages"), json=body))
    ids = answer["messages"]
    assert len(ids) == 3 and len(set(ids)) == 3 and not {one, two} & set(ids)
    texts = []
    for id_message in ids:
        item = await wait_for_message(client, other_account, account.chat_id, id_message)
        texts.append(item["textMessage"])
    assert texts == ["one", "two", "one"]


async def test_forward_messages_errors(client: httpx.AsyncClient, account: Account) -> None:
    url = account.url("forwardMessages")
    base = {"chatId": CONTACT, "chatIdFrom": CONTACT}
    for messages, details in (
        ([], "'messages' must contain at least 1 items"),
        ("x", "'messages' must be an array"),
        ([1], "'messages[0]' must be a string"),
    ):
        answer = await client.post(url, json={**base, "messages": messages})
        assert_error(answer, 400, invalid(details))
    assert_error(
        await client.post(url, json={**base, "x": 1}), 400, invalid("'messages' is required")
    )
    assert_error(
        await client.post(url, json={**base, "messages": ["42"]}),
        400,
        f"Message 42 not found in chat {CONTACT}",
    )


# --- getContacts, getContactInfo, getAvatar ---------------------------------------------------


async def test_get_contacts_lists_the_simulated_contacts(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    await runtime.sandbox.contact_send(account.id, CONTACT, text="hi", sender_name="Ivan")
    contacts = ok(await client.get(account.url("getContacts")))
    assert {"chatId": CONTACT, "name": "Ivan", "contactName": "Ivan", "type": "user",
            "phoneNumber": 0} in contacts  # fmt: skip


async def test_get_contact_info(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, other_account: Account
) -> None:
    await runtime.sandbox.contact_send(account.id, CONTACT, text="hi", sender_name="Ivan")
    info = ok(await client.post(account.url("getContactInfo"), json={"chatId": CONTACT}))
    assert info == {
        "avatar": "",
        "name": "Ivan",
        "contactName": "Ivan",
        "chatId": CONTACT,
        "phoneNumber": 0,
    }
    bob = ok(
        await client.post(account.url("getContactInfo"), json={"chatId": other_account.chat_id})
    )
    assert bob["phoneNumber"] == other_account.instance.phone
    assert_error(
        await client.post(account.url("getContactInfo"), json={"chatId": GROUP}),
        400,
        invalid("The method GetContactInfo does not support group chats"),
    )
    assert_error(
        await client.post(account.url("getContactInfo"), json={}),
        400,
        invalid("'value' must have at least 1 keys"),
    )


async def test_get_avatar(client: httpx.AsyncClient, account: Account) -> None:
    answer = ok(await client.post(account.url("getAvatar"), json={"chatId": CONTACT}))
    assert answer == {"urlAvatar": ""}
    assert_error(
        await client.post(account.url("getAvatar"), json={"chatId": "+7"}),
        400,
        invalid("'chatId' with value '+7' fails to match the required pattern"),
    )


# --- a kind that lacks them -------------------------------------------------------------------

NEW_METHODS = {
    "sendLocation": {"chatId": CONTACT, "latitude": 1, "longitude": 2},
    "sendContact": {"chatId": CONTACT, "contact": {"phoneContact": 79001234568, "company": "B"}},
    "forwardMessages": {"chatId": CONTACT, "chatIdFrom": CONTACT, "messages": ["1"]},
    "sendTyping": {"chatId": CONTACT},
    "editMessage": {"chatId": CONTACT, "idMessage": "1", "message": "x"},
    "deleteMessage": {"chatId": CONTACT, "idMessage": "1"},
    "readChat": {"chatId": CONTACT},
    "getContactInfo": {"chatId": CONTACT},
    "getAvatar": {"chatId": CONTACT},
}


class Nothing:
    """An upstream kind that can do none of the messenger methods."""

    kind = "bare"

    def capabilities(self) -> frozenset[str]:
        return frozenset()

    async def start(self, sink: object) -> None:
        pass

    async def stop(self) -> None:
        pass


async def test_a_kind_without_them_refuses_each(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    runtime.upstreams.adapters["bare"] = Nothing()  # type: ignore[assignment]
    try:
        instance, token = await runtime.instances.create(name="bare", upstream="bare")
        bare = Account(instance, token)
        for name, body in NEW_METHODS.items():
            answer = await client.post(bare.url(name), json=body)
            assert_error(
                answer, 400, f"Method {name} is not available for this instance kind: bare"
            )
        assert_error(
            await client.get(bare.url("getContacts")),
            400,
            "Method getContacts is not available for this instance kind: bare",
        )
        assert await runtime.journal.last(bare.id, "outgoing", 5) == []
    finally:
        del runtime.upstreams.adapters["bare"]
