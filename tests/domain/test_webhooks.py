"""Webhook delivery against a real receiver on 127.0.0.1: order, headers, retries, timeouts,
hand-back to receiveNotification, and two workers sharing one queue."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from maxgate.domain.webhooks import signature
from maxgate.runtime import Runtime
from maxgate.store import tables as t
from tests.api._support import CONTACT, ok
from tests.api.test_notifications import contact_sends_file
from tests.conftest import Account, Gateway, GatewayFactory
from tests.webhook_receiver import Receiver, webhook_receiver

FAST = {
    "outbound_allow": "127.0.0.0/8",
    "webhook_timeout": "0.5s",
    "webhook_retry_delays": "0.2s,0.3s",
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


async def hooked(gateway: Gateway, receiver: Receiver, **settings: Any) -> tuple[Gateway, Account]:
    account = await gateway.account("Hooked")
    body = {"webhookUrl": receiver.url, **settings}
    ok(await gateway.client.post(account.url("setSettings"), json=body))
    return gateway, account


async def contact_texts(runtime: Runtime, account: Account, count: int) -> list[str]:
    return [
        await runtime.sandbox.contact_send(account.id, CONTACT, text=f"m{i}") for i in range(count)
    ]


async def queue_empties(runtime: Runtime, account: Account, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await runtime.notifications.count(account.id):
        assert asyncio.get_running_loop().time() < deadline, "the queue did not empty"
        await asyncio.sleep(0.02)


async def test_delivers_in_order_with_token_receipt_and_signature(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    gateway, account = await hooked(
        await make_gateway(**FAST), receiver, webhookUrlToken="tok-123", webhookSecret="s3cret"
    )
    ids = await contact_texts(gateway.runtime, account, 5)
    arrived = await receiver.arrived(5)
    assert [d.body["idMessage"] for d in arrived] == ids
    receipts = [int(d.headers["X-Maxgate-Delivery"]) for d in arrived]
    assert receipts == sorted(receipts) and len(set(receipts)) == 5
    for delivery in arrived:
        assert delivery.headers["Authorization"] == "Bearer tok-123"
        assert delivery.headers["Content-Type"] == "application/json"
        assert delivery.headers["X-Maxgate-Attempt"] == "1"
        expected = signature("s3cret", delivery.headers["X-Maxgate-Timestamp"], delivery.raw)
        assert delivery.headers["X-Maxgate-Signature"] == expected
        assert delivery.body["typeWebhook"] == "incomingMessageReceived"
    await queue_empties(gateway.runtime, account)  # a 200 deletes the notification


async def test_no_authorization_or_signature_headers_without_token_and_secret(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    gateway, account = await hooked(await make_gateway(**FAST), receiver)
    await contact_texts(gateway.runtime, account, 1)
    (delivery,) = await receiver.arrived(1)
    assert "Authorization" not in delivery.headers
    assert "X-Maxgate-Signature" not in delivery.headers


async def test_a_failing_receiver_gets_retries_and_order_is_kept(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    receiver.fail_next = 3
    gateway, account = await hooked(await make_gateway(**FAST), receiver)
    ids = await contact_texts(gateway.runtime, account, 3)
    arrived = await receiver.arrived(3)
    assert [d.body["idMessage"] for d in arrived] == ids
    with receiver.lock:
        everything = list(receiver.deliveries)
    # The head was tried 4 times before anything behind it went out.
    assert [d.body["idMessage"] for d in everything[:4]] == [ids[0]] * 4
    assert [d.status for d in everything[:4]] == [500, 500, 500, 200]
    assert [d.headers["X-Maxgate-Attempt"] for d in everything[:4]] == ["1", "2", "3", "4"]
    assert len({d.headers["X-Maxgate-Delivery"] for d in everything[:4]}) == 1


async def test_a_hanging_receiver_times_out_and_is_retried(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    receiver.hang_next, receiver.hang_seconds = 1, 2.0
    gateway, account = await hooked(await make_gateway(**FAST), receiver)
    (id_message,) = await contact_texts(gateway.runtime, account, 1)
    arrived = await receiver.arrived(1)
    assert arrived[0].body["idMessage"] == id_message
    assert arrived[0].headers["X-Maxgate-Attempt"] == "2"
    await queue_empties(gateway.runtime, account)


async def test_the_failure_is_recorded_for_the_operator(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    receiver.fail_next = 1000
    gateway, account = await hooked(await make_gateway(**FAST), receiver)
    await contact_texts(gateway.runtime, account, 1)
    while len(receiver.deliveries) < 2:
        await asyncio.sleep(0.05)
    async with gateway.runtime.db.read() as conn:
        row = (
            await conn.execute(sa.select(t.notifications.c.attempts, t.notifications.c.last_error))
        ).one()
    assert row.attempts >= 1 and row.last_error == "HTTP 500"


async def test_clearing_the_webhook_url_hands_the_queue_back(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    receiver.fail_next = 1000
    gateway, account = await hooked(await make_gateway(**FAST), receiver)
    ids = await contact_texts(gateway.runtime, account, 2)
    while not receiver.deliveries:
        await asyncio.sleep(0.05)
    ok(await gateway.client.post(account.url("setSettings"), json={"webhookUrl": ""}))
    await asyncio.sleep(0.6)  # a lease held by an attempt in flight runs out or is released
    got = []
    for _ in ids:
        response = await gateway.client.get(
            account.url("receiveNotification"), params={"receiveTimeout": 5}
        )
        head = ok(response)
        assert head is not None
        got.append(head["body"]["idMessage"])
        receipt = head["receiptId"]
        deleted = ok(await gateway.client.delete(account.url("deleteNotification") + f"/{receipt}"))
        assert deleted["result"] is True
    assert got == ids


async def test_file_notifications_carry_a_link_that_works(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    gateway, account = await hooked(await make_gateway(**FAST), receiver)
    data = b"%PDF" + b"q" * 70_000
    await contact_sends_file(gateway.runtime, account, data, "q.pdf")
    (delivery,) = await receiver.arrived(1)
    link = delivery.body["messageData"]["fileMessageData"]["downloadUrl"]
    assert (await gateway.client.get(link)).content == data


async def test_two_workers_on_one_database_deliver_each_once_in_order(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    gateway, account = await hooked(await make_gateway(**FAST), receiver)
    second = Runtime(gateway.settings)  # another server process on the same database
    await second.open()
    worker = asyncio.create_task(second.webhooks.run(tick=0.05))
    try:
        ids = await contact_texts(gateway.runtime, account, 40)
        arrived = await receiver.arrived(40)
        await asyncio.sleep(0.5)
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        await second.close()
    assert [d.body["idMessage"] for d in receiver.accepted] == ids
    assert len(arrived) == 40


async def test_webhook_url_into_a_private_network_is_refused(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway()  # no outbound_allow: loopback is off limits
    account = await gateway.account()
    response = await gateway.client.post(
        account.url("setSettings"), json={"webhookUrl": "http://127.0.0.1:8080/hook"}
    )
    assert response.status_code == 400
    assert "'webhookUrl' is not allowed" in response.json()["message"]


async def test_webhook_secret_is_write_only(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway()
    account = await gateway.account()
    client = gateway.client
    ok(await client.post(account.url("setSettings"), json={"webhookSecret": "hush"}))
    shown = ok(await client.get(account.url("getSettings")))
    assert shown["webhookSecret"] == "********"
    ok(await client.post(account.url("setSettings"), json=shown | {"wid": None}))
    instance = await gateway.runtime.instances.get(account.id)
    assert instance is not None and instance.settings["webhookSecret"] == "hush"
    assert "hush" not in json.dumps(shown)


@pytest.mark.postgres
async def test_on_postgresql_two_workers_deliver_each_once_in_order(
    make_gateway: GatewayFactory, receiver: Receiver, pg_url: str
) -> None:
    gateway, account = await hooked(
        await make_gateway(database_url=pg_url, **FAST), receiver, webhookSecret="k"
    )
    second = Runtime(gateway.settings)
    await second.open()
    worker = asyncio.create_task(second.webhooks.run(tick=0.05))
    try:
        ids = await contact_texts(gateway.runtime, account, 30)
        await receiver.arrived(30)
        await queue_empties(gateway.runtime, account)
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        await second.close()
    assert [d.body["idMessage"] for d in receiver.accepted] == ids
    # receiveNotification and deleteNotification on PostgreSQL too, once the hook is cleared.
    client = gateway.client
    ok(await client.post(account.url("setSettings"), json={"webhookUrl": ""}))
    await gateway.runtime.sandbox.contact_send(account.id, CONTACT, text="polled")
    head = ok(await client.get(account.url("receiveNotification"), params={"receiveTimeout": 5}))
    assert head["body"]["messageData"]["textMessageData"]["textMessage"] == "polled"
    deleted = ok(await client.delete(account.url("deleteNotification") + f"/{head['receiptId']}"))
    assert deleted == {"result": True, "reason": ""}


async def test_a_burst_for_an_instance_without_webhook_url_scans_the_heads_rarely(
    make_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notifications kept for receiveNotification wake no dispatch pass each (the tick looks)."""
    from maxgate.store import webhooks as webhook_rows

    gateway = await make_gateway(**FAST)
    account = await gateway.account("Polling")
    scans: list[float] = []
    real = webhook_rows.heads

    async def counted(db: Any) -> Any:
        scans.append(asyncio.get_running_loop().time())
        return await real(db)

    monkeypatch.setattr(webhook_rows, "heads", counted)
    await contact_texts(gateway.runtime, account, 1)
    await asyncio.sleep(0.1)  # a pass finds the instance without a webhookUrl
    before = len(scans)
    await contact_texts(gateway.runtime, account, 100)
    await asyncio.sleep(0.1)
    assert len(scans) - before <= 5  # the 1 s tick, not one pass per notification
    assert await gateway.runtime.notifications.count(account.id) == 101


async def test_a_webhook_url_set_later_gets_the_queue(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    gateway = await make_gateway(**FAST)
    account = await gateway.account("Later")
    ids = await contact_texts(gateway.runtime, account, 2)
    await asyncio.sleep(0.1)  # found without a webhookUrl: quiet for a moment
    ok(await gateway.client.post(account.url("setSettings"), json={"webhookUrl": receiver.url}))
    ids += await contact_texts(gateway.runtime, account, 1)
    deliveries = await receiver.arrived(3)
    assert [d.body["idMessage"] for d in deliveries] == ids
