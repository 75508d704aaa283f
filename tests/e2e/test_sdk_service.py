"""GREEN-API's official Python SDK, unmodified, calling the service methods it has (readChat,
getContacts, getContactInfo, getAvatar) against a real maxgate server; the methods the SDK
lacks (sendLocation, sendContact, forwardMessages, sendTyping, editMessage, deleteMessage) are
called as raw HTTP, as a user of the SDK would."""

from __future__ import annotations

import httpx
import pytest
from max_api_client_python import API

from tests.e2e.conftest import Server, wait_until

pytestmark = pytest.mark.e2e


def sdk(server: Server, info: dict[str, object]) -> API.GreenAPI:
    return API.GreenAPI(
        str(info["idInstance"]),
        str(info["apiTokenInstance"]),
        host=f"{server.base_url}/v3",
        media=f"{server.base_url}/v3",
    )


def url(server: Server, info: dict[str, object], method: str) -> str:
    return (
        f"{server.base_url}/v3/waInstance{info['idInstance']}/{method}/{info['apiTokenInstance']}"
    )


def test_sdk_service_methods(server: Server) -> None:
    info_a, info_b = server.create_instance(), server.create_instance()
    alice, bob = sdk(server, info_a), sdk(server, info_b)
    to_bob, to_alice = str(info_b["chatId"]), str(info_a["chatId"])

    sent = alice.sending.sendMessage(to_bob, "Hello Bob")
    assert sent.code == 200, sent.error
    id_message = sent.data["idMessage"]
    wait_until(lambda: bob.journals.getMessage(to_alice, id_message).code == 200)

    read = bob.marking.readChat(to_alice, id_message)
    assert (read.code, read.data) == (200, {"setRead": True})
    contacts = bob.serviceMethods.getContacts()
    assert contacts.code == 200
    assert to_alice in {c["chatId"] for c in contacts.data}
    info = bob.serviceMethods.getContactInfo(to_alice)
    assert info.code == 200 and info.data["chatId"] == to_alice
    avatar = bob.serviceMethods.getAvatar(to_alice)
    assert (avatar.code, avatar.data) == (200, {"urlAvatar": ""})
    group = bob.serviceMethods.getContactInfo("-10000000000001")
    assert group.code == 400
    assert "does not support group chats" in str(group.error)

    # What the SDK has no method for, as raw HTTP against the same server.
    wait_until(
        lambda: alice.journals.getMessage(to_bob, id_message).data.get("statusMessage") == "read"
    )
    edit = {"chatId": to_bob, "idMessage": id_message, "message": "Hello, Bob"}
    assert httpx.post(url(server, info_a, "editMessage"), json=edit).json() == {
        "idMessage": id_message
    }
    wait_until(lambda: bob.journals.getMessage(to_alice, id_message).data.get("isEdited"))
    place = {"chatId": to_bob, "latitude": 55.75, "longitude": 37.61}
    located = httpx.post(url(server, info_a, "sendLocation"), json=place).json()["idMessage"]
    wait_until(lambda: bob.journals.getMessage(to_alice, located).code == 200)
    assert bob.journals.getMessage(to_alice, located).data["typeMessage"] == "locationMessage"
    forward = {"chatId": to_alice, "chatIdFrom": to_alice, "messages": [id_message, located]}
    forwarded = httpx.post(url(server, info_b, "forwardMessages"), json=forward).json()
    assert len(set(forwarded["messages"])) == 2
    removal = {"chatId": to_bob, "idMessage": id_message}
    assert httpx.post(url(server, info_a, "deleteMessage"), json=removal).json() == {}
    wait_until(lambda: bob.journals.getMessage(to_alice, id_message).data.get("isDeleted"))
