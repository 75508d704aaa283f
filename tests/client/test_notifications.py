"""receiveNotification / deleteNotification and the ``notifications()`` iterator, against the
app in-process (the real queue), plus the contract's ``null`` with a fake."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from maxgate.client import (
    AsyncClient,
    Cleared,
    Client,
    Count,
    DecodeError,
    DeleteResult,
    Notification,
    TransportError,
)
from maxgate.runtime import Runtime
from tests.client._support import sha256
from tests.client.conftest import Api
from tests.conftest import Account
from tests.conftest import contact_sends_file as sandbox_file

CONTACT = "20000001"
CREDENTIALS = {"api_url": "http://gateway.test", "id_instance": 3100000001, "api_token": "a" * 50}


async def contact_writes(runtime: Runtime, account: Account, text: str) -> str:
    return await runtime.sandbox.contact_send(account.id, CONTACT, text=text, sender_name="Ivan")


async def contact_sends_file(runtime: Runtime, account: Account, data: bytes, name: str) -> str:
    return await sandbox_file(runtime, account, data, name, contact=CONTACT, caption="see attached")


async def test_receive_and_delete(api: Api, runtime: Runtime, account: Account) -> None:
    id_message = await contact_writes(runtime, account, "hi")
    assert await api.get_webhooks_count() == Count(count=1)
    received = await api.receive_notification(receive_timeout=5)
    assert isinstance(received, Notification) and received.receipt_id > 0
    body = received.body
    assert (body.type_webhook, body.id_message) == ("incomingMessageReceived", id_message)
    assert body.instance_data is not None and body.instance_data.id_instance == account.id
    assert body.sender_data is not None
    assert (body.sender_data.chat_id, body.sender_data.sender_name) == (CONTACT, "Ivan")
    assert body.message_data is not None and body.message_data.text_message_data is not None
    assert body.message_data.text_message_data.text_message == "hi"
    assert body.file is None and body.message_chat_id == CONTACT
    assert received.raw["typeWebhook"] == "incomingMessageReceived"
    assert received.raw["messageData"]["textMessageData"] == {"textMessage": "hi"}

    again = await api.receive_notification(receive_timeout=5)  # the head stays until deleted
    assert again == received
    assert await api.delete_notification(received.receipt_id) == DeleteResult(
        result=True, reason=""
    )
    gone = await api.delete_notification(received.receipt_id)
    assert gone.result is False and str(received.receipt_id) in gone.reason
    assert await api.get_webhooks_count() == Count(count=0)


async def test_a_file_notification_links_to_the_file(
    api: Api, runtime: Runtime, account: Account, tmp_path: Path
) -> None:
    data = b"%PDF-1.4 " + bytes(range(256)) * 400
    await contact_sends_file(runtime, account, data, "invoice.pdf")
    received = await api.receive_notification(receive_timeout=5)
    assert received is not None and received.body.file is not None
    file = received.body.file
    assert (file.file_name, file.caption, file.mime_type) == (
        "invoice.pdf",
        "see attached",
        "application/pdf",
    )
    assert received.body.message_data is not None
    assert received.body.message_data.type_message == "documentMessage"
    done = await api.download_link(file.download_url, tmp_path)
    assert (tmp_path / "invoice.pdf").read_bytes() == data and done.sha256 == sha256(data)


async def test_clear_webhooks_queue(api: Api, runtime: Runtime, account: Account) -> None:
    for n in range(3):
        await contact_writes(runtime, account, f"m{n}")
    assert await api.get_webhooks_count() == Count(count=3)
    assert await api.clear_webhooks_queue() == Cleared(is_cleared=True)
    assert await api.get_webhooks_count() == Count(count=0)


async def take(api: Api, count: int) -> list[Notification]:
    """The first ``count`` notifications of ``notifications()``, then stop iterating."""
    client = api.client
    if isinstance(client, AsyncClient):
        got: list[Notification] = []
        stream = client.notifications(receive_timeout=5)
        async for notification in stream:
            got.append(notification)
            if len(got) == count:
                break
        await stream.aclose()
        return got

    def run() -> list[Notification]:
        assert isinstance(client, Client)
        got: list[Notification] = []
        for notification in client.notifications(receive_timeout=5):
            got.append(notification)
            if len(got) == count:
                break
        return got

    return await asyncio.to_thread(run)


async def test_notifications_deletes_each_when_the_next_is_asked_for(
    api: Api, runtime: Runtime, account: Account
) -> None:
    sent = [await contact_writes(runtime, account, f"m{n}") for n in range(3)]
    first = await take(api, 2)
    assert [n.body.id_message for n in first] == sent[:2]
    # The first was deleted when the second was asked for; the second, where the loop
    # stopped, was not: it comes back first (at-least-once).
    assert await api.get_webhooks_count() == Count(count=2)
    rest = await take(api, 2)
    assert [n.body.id_message for n in rest] == sent[1:]
    assert rest[0].receipt_id == first[1].receipt_id
    assert await api.get_webhooks_count() == Count(count=1)


def test_an_empty_queue_is_null_and_polling_goes_on() -> None:
    answers = [
        b"null",
        b"null",
        b'{"receiptId": 7, "body": {"typeWebhook": "stateInstanceChanged",'
        b' "stateInstance": "authorized", "timestamp": 1}}',
        b'{"result": true, "reason": ""}',
        b"null",
    ]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path.replace("a" * 50, "TOKEN")
        seen.append(f"{request.method} {path} {request.url.query.decode()}".strip())
        if not answers:
            raise httpx.ConnectError("the fake has nothing more to say", request=request)
        return httpx.Response(200, content=answers.pop(0))

    with Client(transport=httpx.MockTransport(handler), **CREDENTIALS) as client:
        assert client.receive_notification(receive_timeout=10) is None
        stream = client.notifications(receive_timeout=30)
        notification = next(stream)
        assert (notification.receipt_id, notification.body.state_instance) == (7, "authorized")
        with pytest.raises(TransportError):
            next(stream)
    assert seen == [
        "GET /waInstance3100000001/receiveNotification/TOKEN receiveTimeout=10",
        "GET /waInstance3100000001/receiveNotification/TOKEN receiveTimeout=30",
        "GET /waInstance3100000001/receiveNotification/TOKEN receiveTimeout=30",
        "DELETE /waInstance3100000001/deleteNotification/TOKEN/7",
        "GET /waInstance3100000001/receiveNotification/TOKEN receiveTimeout=30",
        "GET /waInstance3100000001/receiveNotification/TOKEN receiveTimeout=30",
    ]


def test_a_malformed_notification_names_its_receipt() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"receiptId": 9, "body": {"timestamp": 1}}')

    client = Client(transport=httpx.MockTransport(handler), **CREDENTIALS)
    with client, pytest.raises(DecodeError, match="receipt 9"):
        client.receive_notification()
