"""The sending and service methods of issue 13 through ``Client`` and ``AsyncClient``, against
the sandbox of the app in-process: sendLocation, sendContact, forwardMessages, editMessage,
deleteMessage, sendTyping, readChat, getContacts, getContactInfo, getAvatar.

Each test runs twice (the ``make_api`` fixture): with the async client, then the sync one.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from maxgate.client import (
    Avatar,
    BadRequestError,
    ChatRead,
    Client,
    Contact,
    ContactInfo,
    DecodeError,
    Forwarded,
    JournalItem,
    SentMessage,
)
from maxgate.runtime import Runtime
from tests.client.conftest import Api, ApiFactory
from tests.client.test_methods import CONTACT, wait_for
from tests.conftest import Account

GROUP = "-10000000000001"


async def journaled(api: Api, chat_id: str, id_message: str) -> JournalItem:
    """Poll getMessage until the journal has the message (a contact's arrives a moment later)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return await api.get_message(chat_id, id_message)  # type: ignore[no-any-return]
        except BadRequestError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)


async def seen(runtime: Runtime, account: Account, id_message: str) -> dict[str, Any]:
    """What the simulated contact sees of a message of ``account`` (the sandbox's marks)."""
    found: dict[str, Any] = await runtime.sandbox.seen(account.id, CONTACT, id_message)
    return found


async def test_send_location(
    make_api: ApiFactory, account: Account, other_account: Account
) -> None:
    alice, bob = make_api(account), make_api(other_account)
    sent = await alice.send_location(
        CONTACT, 12.3456789, 10.1112131, name_location="Restaurant", address="123456, Perm"
    )
    assert isinstance(sent, SentMessage) and sent.id_message
    item = await wait_for(alice, CONTACT, sent.id_message, "read")
    assert item.type_message == "locationMessage" and item.location is not None
    assert (item.location["latitude"], item.location["longitude"]) == (12.3456789, 10.1112131)
    assert (item.location["nameLocation"], item.location["address"]) == (
        "Restaurant",
        "123456, Perm",
    )

    to_bob = await alice.send_location(other_account.chat_id, 55.75, 37.61)
    bobs = await journaled(bob, account.chat_id, to_bob.id_message)
    assert (bobs.type, bobs.type_message) == ("incoming", "locationMessage")
    assert bobs.location is not None and bobs.location["longitude"] == 37.61
    with pytest.raises(BadRequestError, match="'latitude' must be less than or equal to 90"):
        await alice.send_location(CONTACT, 91, 0)


async def test_send_contact(api: Api) -> None:
    sent = await api.send_contact(
        CONTACT, 79001234568, first_name="Artem", last_name="Evpatoriysky", company="Acme"
    )
    assert isinstance(sent, SentMessage)
    item = await wait_for(api, CONTACT, sent.id_message, "read")
    assert item.type_message == "contactMessage" and item.contact is not None
    assert item.contact["displayName"] == "Artem Evpatoriysky"
    assert "TEL;type=CELL;waid=79001234568:+79001234568" in item.contact["vcard"]
    assert "ORG:Acme" in item.contact["vcard"]
    company = await api.send_contact(CONTACT, 79001234569, company="Acme", quoted_message_id="1")
    assert company.id_message != sent.id_message
    with pytest.raises(BadRequestError, match=r"must contain at least one of \[firstName"):
        await api.send_contact(CONTACT, 79001234568)


async def test_forward_messages(
    make_api: ApiFactory, runtime: Runtime, account: Account, other_account: Account
) -> None:
    alice, bob = make_api(account), make_api(other_account)
    one = await runtime.sandbox.contact_send(account.id, CONTACT, text="one")
    two = await runtime.sandbox.contact_send(account.id, CONTACT, text="two")
    await journaled(alice, CONTACT, two)
    forwarded = await alice.forward_messages(other_account.chat_id, CONTACT, [one, two, one])
    assert isinstance(forwarded, Forwarded)
    ids = forwarded.messages
    assert len(ids) == 3 and len(set(ids)) == 3 and not {one, two} & set(ids)
    texts = [(await journaled(bob, account.chat_id, i)).text_message for i in ids]
    assert texts == ["one", "two", "one"]

    with pytest.raises(BadRequestError, match=f"Message 42 not found in chat {CONTACT}"):
        await alice.forward_messages(other_account.chat_id, CONTACT, ("42",))
    with pytest.raises(BadRequestError, match="'messages' must contain at least 1 items"):
        await alice.forward_messages(other_account.chat_id, CONTACT, [])
    with pytest.raises(TypeError, match="not one string"):
        await alice.forward_messages(other_account.chat_id, CONTACT, one)


async def test_edit_message_and_delete_message(
    make_api: ApiFactory, runtime: Runtime, account: Account, other_account: Account
) -> None:
    alice, bob = make_api(account), make_api(other_account)
    draft = await alice.send_message(CONTACT, "draft")
    await wait_for(alice, CONTACT, draft.id_message, "read")
    edited = await alice.edit_message(CONTACT, draft.id_message, "final")
    assert edited == SentMessage(id_message=draft.id_message)
    item = await alice.get_message(CONTACT, draft.id_message)
    assert (item.text_message, item.is_edited) == ("final", True)
    assert await seen(runtime, account, draft.id_message) == {"text": "final", "edited": True}

    assert await alice.delete_message(CONTACT, draft.id_message) is None
    assert (await alice.get_message(CONTACT, draft.id_message)).is_deleted is True
    assert (await seen(runtime, account, draft.id_message))["deleted"] is True
    with pytest.raises(BadRequestError, match="Message by id not found") as caught:
        await alice.delete_message(CONTACT, draft.id_message)
    assert caught.value.method == "deleteMessage"

    to_bob = await alice.send_message(other_account.chat_id, "hi Bob")
    await wait_for(alice, other_account.chat_id, to_bob.id_message, "read")
    await alice.edit_message(other_account.chat_id, to_bob.id_message, "hello Bob")
    bobs = await journaled(bob, account.chat_id, to_bob.id_message)
    assert (bobs.text_message, bobs.is_edited) == ("hello Bob", True)
    with pytest.raises(BadRequestError, match="only outgoing messages can be changed"):
        await bob.edit_message(account.chat_id, to_bob.id_message, "mine now")
    await alice.delete_message(other_account.chat_id, to_bob.id_message)
    assert (await bob.get_message(account.chat_id, to_bob.id_message)).is_deleted is True


async def test_send_typing(api: Api, runtime: Runtime, account: Account) -> None:
    assert await api.send_typing(CONTACT, typing_time=5000, typing_type="recording") is None
    until, kind = runtime.sandbox.typing[(account.id, CONTACT)]
    assert kind == "recording" and until > time.time() + 4
    assert await api.send_typing(CONTACT) is None
    until, kind = runtime.sandbox.typing[(account.id, CONTACT)]
    assert kind == "typing" and until < time.time() + 2
    with pytest.raises(BadRequestError, match="'typingTime' must be larger than or equal to 1000"):
        await api.send_typing(CONTACT, typing_time=999)


async def test_read_chat(api: Api, runtime: Runtime, account: Account) -> None:
    first = await runtime.sandbox.contact_send(account.id, CONTACT, text="one")
    second = await runtime.sandbox.contact_send(account.id, CONTACT, text="two")
    assert await api.read_chat(CONTACT, id_message=first) == ChatRead(set_read=True)
    assert (await seen(runtime, account, first)).get("read") is True
    assert (await seen(runtime, account, second)).get("read") is None
    assert await api.read_chat(CONTACT) == ChatRead(set_read=True)
    assert (await seen(runtime, account, second)).get("read") is True


async def test_get_contacts_get_contact_info_and_get_avatar(
    api: Api, runtime: Runtime, account: Account, other_account: Account
) -> None:
    await runtime.sandbox.contact_send(account.id, CONTACT, text="hi", sender_name="Ivan")
    contacts = await api.get_contacts()
    assert all(isinstance(c, Contact) for c in contacts)
    ivan = Contact(chat_id=CONTACT, name="Ivan", contact_name="Ivan", type="user", phone_number=0)
    assert ivan in contacts

    info = await api.get_contact_info(CONTACT)
    assert info == ContactInfo(
        chat_id=CONTACT, avatar="", name="Ivan", contact_name="Ivan", phone_number=0
    )
    bob = await api.get_contact_info(other_account.chat_id)
    assert bob.phone_number == other_account.instance.phone
    with pytest.raises(BadRequestError, match="does not support group chats"):
        await api.get_contact_info(GROUP)

    assert await api.get_avatar(CONTACT) == Avatar(url_avatar="")
    with pytest.raises(BadRequestError, match="fails to match the required pattern"):
        await api.get_avatar("+7")


@pytest.mark.parametrize("body", [b"", b"{}", b' {"future": 1}\n'])
def test_an_answer_of_nothing_is_none(body: bytes) -> None:
    """sendTyping and deleteMessage answer ``{}`` (maxgate) or an empty body (the vendor's)."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    with Client(api_url="http://g", id_instance=1, api_token="t", transport=transport) as client:
        client.send_typing("1")  # no DecodeError; both return None (mypy knows)
        client.delete_message("1", "2")


def test_an_answer_of_nothing_that_is_not_json_is_a_decode_error() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"<html>"))
    with (
        Client(api_url="http://g", id_instance=1, api_token="t", transport=transport) as client,
        pytest.raises(DecodeError, match="sendTyping: unexpected answer"),
    ):
        client.send_typing("1")
