"""Receiving by HTTP API in-process: the notification queue, its shapes (spec §4.1), long-poll,
deleteNotification, getWebhooksCount, clearWebhooksQueue and the settings that pick the kinds."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from maxgate.domain import notifications as n
from maxgate.errors import StoreError
from maxgate.runtime import Runtime
from maxgate.settings import Settings
from maxgate.store import notifications as notification_rows
from maxgate.store import tables as t
from tests.api._support import CONTACT, assert_error, invalid, ok, send_text
from tests.api.conftest import GatewayFactory
from tests.conftest import Account
from tests.conftest import contact_sends_file as sandbox_file

INSTANCE_DATA_KEYS = {"idInstance", "wid", "typeInstance"}
MESSAGE_KEYS = {
    "typeWebhook",
    "instanceData",
    "timestamp",
    "idMessage",
    "senderData",
    "messageData",
}
SENDER_KEYS = {
    "chatId",
    "sender",
    "chatName",
    "senderName",
    "senderContactName",
    "senderPhoneNumber",
    "chatType",
}
FILE_DATA_KEYS = {
    "downloadUrl",
    "caption",
    "fileName",
    "jpegThumbnail",
    "mimeType",
    "isAnimated",
    "forwardingScore",
    "isForwarded",
}
STATUS_KEYS = {"typeWebhook", "chatId", "instanceData", "timestamp", "idMessage", "status"}
STATE_KEYS = {"typeWebhook", "instanceData", "timestamp", "stateInstance"}


async def receive(
    client: httpx.AsyncClient, account: Account, timeout: int = 5
) -> dict[str, Any] | None:
    response = await client.get(
        account.url("receiveNotification"), params={"receiveTimeout": timeout}
    )
    result: dict[str, Any] | None = ok(response)
    return result


async def delete(client: httpx.AsyncClient, account: Account, receipt_id: int | str) -> Any:
    return ok(await client.delete(account.url("deleteNotification") + f"/{receipt_id}"))


async def drain(client: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    """Every queued notification's body, oldest first, deleting each (no waiting at the end)."""
    bodies = []
    while (head := await account_head(client, account)) is not None:
        bodies.append(head["body"])
        assert await delete(client, account, head["receiptId"]) == {"result": True, "reason": ""}
    return bodies


async def account_head(client: httpx.AsyncClient, account: Account) -> dict[str, Any] | None:
    # The queue is read through the API, but without waiting out a timeout when it is empty.
    count = ok(await client.get(account.url("getWebhooksCount")))["count"]
    return await receive(client, account) if count else None


async def wait_for_kinds(
    client: httpx.AsyncClient, account: Account, count: int, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Wait until ``count`` notifications are queued, then drain them."""
    deadline = time.monotonic() + timeout
    while ok(await client.get(account.url("getWebhooksCount")))["count"] < count:
        assert time.monotonic() < deadline, "notifications did not arrive"
        await asyncio.sleep(0.05)
    return await drain(client, account)


async def contact_sends_file(runtime: Runtime, account: Account, data: bytes, name: str) -> str:
    return await sandbox_file(
        runtime, account, data, name, contact=CONTACT, caption="the report", sender_name="Ivan"
    )


def check_instance_data(body: dict[str, Any], account: Account) -> None:
    assert body["instanceData"] == {
        "idInstance": account.id,
        "wid": account.instance.wid,
        "typeInstance": "v3",
    }
    assert set(body["instanceData"]) == INSTANCE_DATA_KEYS
    assert type(body["timestamp"]) is int and abs(body["timestamp"] - time.time()) < 120


# -- shapes (spec §4.1) ----------------------------------------------------------------------


async def test_incoming_text_notification_shape(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    id_message = await runtime.sandbox.contact_send(
        account.id, CONTACT, text="hi", sender_name="Ivan"
    )
    head = await receive(client, account)
    assert (
        head is not None
        and type(head["receiptId"]) is int
        and set(head)
        == {
            "receiptId",
            "body",
        }
    )
    body = head["body"]
    assert set(body) == MESSAGE_KEYS
    assert body["typeWebhook"] == "incomingMessageReceived"
    assert body["idMessage"] == id_message
    check_instance_data(body, account)
    assert set(body["senderData"]) == SENDER_KEYS
    assert body["senderData"] == {
        "chatId": CONTACT,
        "sender": CONTACT,
        "chatName": "Ivan",
        "senderName": "Ivan",
        "senderContactName": "",
        "senderPhoneNumber": 0,
        "chatType": "user",
    }
    assert body["messageData"] == {
        "typeMessage": "textMessage",
        "textMessageData": {"textMessage": "hi"},
    }


async def test_incoming_file_notification_carries_a_working_link(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    data = b"%PDF-1.4 " + b"r" * 50_000
    id_message = await contact_sends_file(runtime, account, data, "report.pdf")
    head = await receive(client, account)
    assert head is not None
    body = head["body"]
    assert body["typeWebhook"] == "incomingMessageReceived" and body["idMessage"] == id_message
    data_part = body["messageData"]
    assert data_part["typeMessage"] == "documentMessage"
    file_data = data_part["fileMessageData"]
    assert set(file_data) == FILE_DATA_KEYS
    assert file_data["fileName"] == "report.pdf"
    assert file_data["mimeType"] == "application/pdf"
    assert file_data["caption"] == "the report"
    assert file_data["jpegThumbnail"] == ""
    assert (file_data["isAnimated"], file_data["forwardingScore"], file_data["isForwarded"]) == (
        False,
        0,
        False,
    )
    link = await client.get(file_data["downloadUrl"])
    assert link.status_code == 200 and link.content == data


async def test_the_link_is_rendered_when_read_not_when_queued(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    await contact_sends_file(runtime, account, b"abc" * 1000, "a.pdf")
    first = await receive(client, account)
    # The stored body holds no link at all: it is signed anew on every read.
    async with runtime.db.read() as conn:
        stored = (await conn.execute(sa.select(t.notifications.c.body))).scalar_one()
    assert '"downloadUrl":""' in stored
    assert first is not None
    assert first["body"]["messageData"]["fileMessageData"]["downloadUrl"].startswith("http")


async def test_outgoing_api_message_and_its_statuses(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    id_message = await send_text(client, account, CONTACT, "hello")
    bodies = await wait_for_kinds(client, account, 4)
    kinds = [b["typeWebhook"] for b in bodies]
    assert kinds == ["outgoingAPIMessageReceived"] + ["outgoingMessageStatus"] * 3
    api = bodies[0]
    assert set(api) == MESSAGE_KEYS and api["idMessage"] == id_message
    check_instance_data(api, account)
    assert api["senderData"]["chatId"] == CONTACT
    assert api["senderData"]["sender"] == account.chat_id
    assert api["senderData"]["senderPhoneNumber"] == account.instance.phone
    assert api["messageData"] == {
        "typeMessage": "textMessage",
        "textMessageData": {"textMessage": "hello"},
    }
    statuses = bodies[1:]
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    for status in statuses:
        assert set(status) == STATUS_KEYS
        assert status["chatId"] == CONTACT and status["idMessage"] == id_message
        check_instance_data(status, account)


async def test_outgoing_api_file_message_links_the_sent_file(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    data = b"file bytes " * 500
    response = await client.post(
        account.url("sendFileByUpload"),
        data={"chatId": CONTACT, "caption": "see"},
        files={"file": ("notes.txt", data, "text/plain")},
    )
    id_message = ok(response)["idMessage"]
    head = await receive(client, account)
    assert head is not None
    body = head["body"]
    assert body["typeWebhook"] == "outgoingAPIMessageReceived" and body["idMessage"] == id_message
    file_data = body["messageData"]["fileMessageData"]
    assert set(file_data) == FILE_DATA_KEYS
    assert (file_data["fileName"], file_data["caption"]) == ("notes.txt", "see")
    assert (await client.get(file_data["downloadUrl"])).content == data


async def test_failed_status_carries_a_description(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    ok(await client.post(account.url("setSettings"), json={"delaySendMessagesMilliseconds": 60000}))
    await send_text(client, account, CONTACT, "first")  # goes out, then the queue waits a minute
    second = await send_text(client, account, CONTACT, "second")
    await wait_for_kinds(client, account, 3)  # 2 x outgoingAPIMessageReceived, first's "sent"
    assert ok(await client.get(account.url("clearMessagesQueue"))) == {"isCleared": True}
    bodies = [b for b in await wait_for_kinds(client, account, 1) if b["idMessage"] == second]
    failed = [b for b in bodies if b.get("status") == "failed"]
    assert len(failed) == 1
    assert set(failed[0]) == STATUS_KEYS | {"description"}
    assert failed[0]["description"] == "cleared from the queue"


async def test_message_sent_from_the_phone_is_outgoing_message_received(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, other_account: Account
) -> None:
    id_message = await runtime.sandbox.own_send(account.instance, other_account.chat_id, text="yo")
    mine = await receive(client, account)
    assert mine is not None
    body = mine["body"]
    assert set(body) == MESSAGE_KEYS
    assert body["typeWebhook"] == "outgoingMessageReceived" and body["idMessage"] == id_message
    assert body["senderData"]["chatId"] == other_account.chat_id
    assert body["senderData"]["sender"] == account.chat_id
    assert body["senderData"]["chatName"] == "Bob"
    journal = ok(
        await client.post(
            account.url("getMessage"),
            json={"chatId": other_account.chat_id, "idMessage": id_message},
        )
    )
    assert (journal["type"], journal["sendByApi"], journal["statusMessage"]) == (
        "outgoing",
        False,
        "sent",
    )
    theirs = await receive(client, other_account)
    assert theirs is not None and theirs["body"]["typeWebhook"] == "incomingMessageReceived"
    assert theirs["body"]["idMessage"] == id_message


async def test_state_changes_logout_qr_reboot(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    assert ok(await client.get(account.url("qr"))) == {
        "type": "alreadyLogged",
        "message": "instance account already authorized",
    }
    assert ok(await client.get(account.url("logout"))) == {"isLogout": True}
    state = ok(await client.get(account.url("getStateInstance")))
    assert state == {"stateInstance": "notAuthorized"}
    qr = ok(await client.get(account.url("qr")))
    assert qr["type"] == "qrCode"
    assert base64.b64decode(qr["message"]).startswith(b"\x89PNG\r\n\x1a\n")
    bodies = await wait_for_kinds(client, account, 2)  # the sandbox's phone scans the code
    assert ok(await client.get(account.url("getStateInstance"))) == {"stateInstance": "authorized"}
    assert ok(await client.get(account.url("reboot"))) == {"isReboot": True}
    bodies += await wait_for_kinds(client, account, 2)
    for body in bodies:
        assert set(body) == STATE_KEYS and body["typeWebhook"] == "stateInstanceChanged"
        check_instance_data(body, account)
    assert [b["stateInstance"] for b in bodies] == [
        "notAuthorized",
        "authorized",
        "starting",
        "authorized",
    ]


# -- the queue -------------------------------------------------------------------------------


async def test_same_head_until_deleted_then_fifo(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    ids = [await runtime.sandbox.contact_send(account.id, CONTACT, text=f"m{i}") for i in range(3)]
    first = await receive(client, account)
    again = await receive(client, account)
    assert first == again and first is not None
    seen = []
    for _ in ids:
        head = await receive(client, account)
        assert head is not None
        seen.append(head["body"]["idMessage"])
        assert await delete(client, account, head["receiptId"]) == {"result": True, "reason": ""}
    assert seen == ids
    assert ok(await client.get(account.url("getWebhooksCount"))) == {"count": 0}


async def test_delete_unknown_or_deleted_or_foreign_receipt(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, other_account: Account
) -> None:
    await runtime.sandbox.contact_send(account.id, CONTACT, text="x")
    head = await receive(client, account)
    assert head is not None
    receipt = head["receiptId"]
    foreign = await delete(client, other_account, receipt)
    assert foreign["result"] is False and str(receipt) in foreign["reason"]
    assert await delete(client, account, receipt) == {"result": True, "reason": ""}
    again = await delete(client, account, receipt)
    assert again == {"result": False, "reason": f"Notification with receiptId {receipt} not found"}
    assert (await delete(client, account, 999999))["result"] is False


@pytest.mark.parametrize("raw", ["abc", "-1", "1.5", "9" * 30])
async def test_delete_with_a_receipt_that_is_no_number(
    client: httpx.AsyncClient, account: Account, raw: str
) -> None:
    response = await client.delete(account.url("deleteNotification") + f"/{raw}")
    assert_error(response, 400, invalid("'receiptId' must be a number"))


async def test_delete_without_a_receipt_and_with_the_wrong_verb(
    client: httpx.AsyncClient, account: Account
) -> None:
    assert_error(await client.get(account.url("deleteNotification") + "/1"), 405)
    assert_error(await client.post(account.url("receiveNotification")), 405)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("4", "'receiveTimeout' must be greater than or equal to 5"),
        ("61", "'receiveTimeout' must be less than or equal to 60"),
        ("soon", "'receiveTimeout' must be a number"),
    ],
)
async def test_receive_timeout_bounds(
    client: httpx.AsyncClient, account: Account, raw: str, message: str
) -> None:
    response = await client.get(account.url("receiveNotification"), params={"receiveTimeout": raw})
    assert_error(response, 400, invalid(message))


async def test_long_poll_wakes_as_soon_as_something_is_queued(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    async def later() -> str:
        await asyncio.sleep(0.3)
        return await runtime.sandbox.contact_send(account.id, CONTACT, text="now")

    started = time.monotonic()
    head, id_message = await asyncio.gather(receive(client, account, 30), later())
    assert head is not None and head["body"]["idMessage"] == id_message
    assert time.monotonic() - started < 15  # far from the 30 s timeout


async def test_long_poll_answers_null_after_the_timeout(
    client: httpx.AsyncClient, account: Account
) -> None:
    started = time.monotonic()
    response = await client.get(account.url("receiveNotification"))  # default 5 s
    assert response.status_code == 200 and response.text == "null"
    assert time.monotonic() - started >= 4.9


async def test_rows_queued_by_another_process_wake_the_long_poll(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings, account: Account
) -> None:
    other = Runtime(settings)  # e.g. `maxgate sandbox send` in another process: no wake here
    await other.open()
    try:

        async def later() -> str:
            await asyncio.sleep(0.3)
            return await other.sandbox.contact_send(account.id, CONTACT, text="from afar")

        head, id_message = await asyncio.gather(receive(client, account, 30), later())
    finally:
        await other.close()
    assert head is not None and head["body"]["idMessage"] == id_message


async def test_webhooks_count_and_clear(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, other_account: Account
) -> None:
    for i in range(3):
        await runtime.sandbox.contact_send(account.id, CONTACT, text=str(i))
    await runtime.sandbox.contact_send(other_account.id, CONTACT, text="theirs")
    assert ok(await client.get(account.url("getWebhooksCount"))) == {"count": 3}
    assert ok(await client.get(account.url("clearWebhooksQueue"))) == {"isCleared": True}
    assert ok(await client.get(account.url("getWebhooksCount"))) == {"count": 0}
    assert ok(await client.get(other_account.url("getWebhooksCount"))) == {"count": 1}


@pytest.mark.parametrize(
    ("setting", "silenced"),
    [
        ("incomingWebhook", {"incomingMessageReceived"}),
        ("outgoingAPIMessageWebhook", {"outgoingAPIMessageReceived"}),
        ("outgoingWebhook", {"outgoingMessageStatus"}),
        ("outgoingMessageWebhook", {"outgoingMessageReceived"}),
        ("stateWebhook", {"stateInstanceChanged"}),
    ],
)
async def test_settings_turn_kinds_off_and_on(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: Account,
    setting: str,
    silenced: set[str],
) -> None:
    async def everything(silenced: set[str]) -> set[str]:
        await runtime.sandbox.contact_send(account.id, CONTACT, text="in")
        await runtime.sandbox.own_send(account.instance, CONTACT, text="from the phone")
        await send_text(client, account, CONTACT, "by api")
        await runtime.journal.on_state(account.id, "authorized")
        per_kind = {
            "incomingMessageReceived": 1,
            "outgoingMessageReceived": 1,
            "outgoingAPIMessageReceived": 1,
            "outgoingMessageStatus": 3,  # sent, delivered, read
            "stateInstanceChanged": 1,
        }
        expected = sum(count for kind, count in per_kind.items() if kind not in silenced)
        return {b["typeWebhook"] for b in await wait_for_kinds(client, account, expected)}

    ok(await client.post(account.url("setSettings"), json={setting: "no"}))
    kinds = await everything(silenced)
    assert not kinds & silenced
    assert kinds == set(n.KIND_SETTINGS) - silenced
    ok(await client.post(account.url("setSettings"), json={setting: "yes"}))
    assert await everything(set()) == set(n.KIND_SETTINGS)


async def test_sweeper_drops_notifications_older_than_the_retention(
    runtime: Runtime, account: Account
) -> None:
    await runtime.sandbox.contact_send(account.id, CONTACT, text="old")
    assert await runtime.notifications.sweep() == 0
    later = time.time() + runtime.settings.notification_retention + 1
    assert await runtime.notifications.sweep(now=later) == 1
    assert await runtime.notifications.count(account.id) == 0


async def test_a_message_is_never_journaled_without_its_notification(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, monkeypatch: Any
) -> None:
    # The notification's INSERT fails inside the transaction (as a full disk would).
    monkeypatch.setattr(
        notification_rows, "INSERT", sa.text("INSERT INTO no_such_table VALUES (1)")
    )
    with pytest.raises(StoreError):
        await runtime.sandbox.contact_send(account.id, CONTACT, text="lost?")
    monkeypatch.undo()
    async with runtime.db.read() as conn:
        messages = (await conn.execute(sa.select(sa.func.count()).select_from(t.messages))).scalar()
        chats = (await conn.execute(sa.select(sa.func.count()).select_from(t.chats))).scalar()
    assert (messages, chats) == (0, 0)  # rolled back with the notification
    assert await runtime.notifications.count(account.id) == 0
    # And the same message goes through once the store works again.
    await runtime.sandbox.contact_send(account.id, CONTACT, text="kept")
    assert await runtime.notifications.count(account.id) == 1


async def test_receive_answers_null_while_a_webhook_url_is_set(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(outbound_allow="127.0.0.0/8")
    client, account = gateway.client, await gateway.account()
    # Nothing listens on port 9 of loopback: deliveries fail and the queue keeps its entry.
    ok(await client.post(account.url("setSettings"), json={"webhookUrl": "http://127.0.0.1:9/"}))
    await gateway.runtime.sandbox.contact_send(account.id, CONTACT, text="for the hook")
    assert await receive(client, account) is None
    assert ok(await client.get(account.url("getWebhooksCount"))) == {"count": 1}
    ok(await client.post(account.url("setSettings"), json={"webhookUrl": ""}))
    head = await receive(client, account)
    assert head is not None and head["body"]["messageData"]["textMessageData"] == {
        "textMessage": "for the hook"
    }
