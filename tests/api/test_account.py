"""Account and queue methods: state, settings, checkAccount, the outgoing queue."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from maxgate.runtime import Runtime
from maxgate.upstream import sandboxlogin
from tests.api._support import (
    CONTACT,
    assert_error,
    invalid,
    ok,
    send_text,
    wait_for_message,
)
from tests.conftest import Account

# What a refusal the allow-list can lift adds after GREEN-API-style text (written out: clients
# may match on it).
HINT = "; allow it with the setting outbound_allow (MAXGATE_OUTBOUND_ALLOW)"

YES_NO_KEYS = (
    "markIncomingMessagesReaded",
    "markIncomingMessagesReadedOnReply",
    "outgoingWebhook",
    "outgoingMessageWebhook",
    "outgoingAPIMessageWebhook",
    "incomingWebhook",
    "stateWebhook",
    "editedMessageWebhook",
    "deletedMessageWebhook",
)
SETTINGS_KEYS = {
    "wid",
    "typeInstance",
    "webhookUrl",
    "webhookUrlToken",
    "delaySendMessagesMilliseconds",
    *YES_NO_KEYS,
}
WEBHOOK_KINDS = (
    "outgoingWebhook",
    "outgoingMessageWebhook",
    "outgoingAPIMessageWebhook",
    "incomingWebhook",
    "stateWebhook",
    "editedMessageWebhook",
    "deletedMessageWebhook",
)


async def test_get_state_instance(client: httpx.AsyncClient, account: Account) -> None:
    assert ok(await client.get(account.url("getStateInstance"))) == {"stateInstance": "authorized"}


async def test_get_settings(client: httpx.AsyncClient, account: Account) -> None:
    settings = ok(await client.get(account.url("getSettings")))
    assert set(settings) == SETTINGS_KEYS
    assert settings["typeInstance"] == "v3"
    assert settings["wid"] == f"{account.instance.phone}@c.us"
    assert settings["webhookUrl"] == ""
    assert settings["webhookUrlToken"] == ""
    assert settings["delaySendMessagesMilliseconds"] == 500
    for key in WEBHOOK_KINDS:
        assert settings[key] == "yes", key
    for key in YES_NO_KEYS:
        assert settings[key] in ("yes", "no"), key


async def test_set_settings_applies_at_once(client: httpx.AsyncClient, account: Account) -> None:
    changes = {
        "webhookUrl": "https://hooks.example.com/maxgate",
        "webhookUrlToken": "s3cr3t-token",
        "delaySendMessagesMilliseconds": 1000,
        "incomingWebhook": "no",
        "markIncomingMessagesReaded": "yes",
        "unknownKey": "ignored",
    }
    assert ok(await client.post(account.url("setSettings"), json=changes)) == {"saveSettings": True}
    settings = ok(await client.get(account.url("getSettings")))
    assert settings["webhookUrl"] == "https://hooks.example.com/maxgate"
    assert settings["delaySendMessagesMilliseconds"] == 1000
    assert settings["incomingWebhook"] == "no"
    assert settings["markIncomingMessagesReaded"] == "yes"
    assert settings["outgoingWebhook"] == "yes"  # untouched
    assert "unknownKey" not in settings
    assert settings["webhookUrlToken"] != "s3cr3t-token"  # a secret: never echoed
    # A subset changes only itself; an empty webhookUrl switches webhooks off again.
    assert ok(await client.post(account.url("setSettings"), json={"webhookUrl": ""}))
    settings = ok(await client.get(account.url("getSettings")))
    assert settings["webhookUrl"] == ""
    assert settings["delaySendMessagesMilliseconds"] == 1000


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (
            {"delaySendMessagesMilliseconds": 499},
            "'delaySendMessagesMilliseconds' must be greater than or equal to 500",
        ),
        (
            {"delaySendMessagesMilliseconds": 600001},
            "'delaySendMessagesMilliseconds' must be less than or equal to 600000",
        ),
        (
            {"delaySendMessagesMilliseconds": "1000"},
            "'delaySendMessagesMilliseconds' must be a number",
        ),
        ({"incomingWebhook": "maybe"}, "'incomingWebhook' must be one of [yes, no]"),
        ({"stateWebhook": True}, "'stateWebhook' must be a string"),
        ({"webhookUrl": 5}, "'webhookUrl' must be a string"),
        ({}, "'value' must have at least 1 keys"),
        ({"wid": "1@c.us", "typeInstance": "v2"}, "'value' must have at least 1 keys"),
        (
            {"webhookUrl": "http://10.0.0.1/hook"},
            "'webhookUrl' is not allowed: address 10.0.0.1 is not allowed (private)" + HINT,
        ),
        (
            {"webhookUrl": "http://127.0.0.1:7880/hook"},
            "'webhookUrl' is not allowed: address 127.0.0.1 is not allowed (loopback)" + HINT,
        ),
        (
            {"webhookUrl": "http://169.254.169.254/latest"},
            # no hint: only an entry naming the address opens it, and that is rarely meant
            "'webhookUrl' is not allowed: address 169.254.169.254 is not allowed (cloud metadata)",
        ),
        (
            {"webhookUrl": "ftp://example.com/hook"},  # no hint: no setting opens a scheme
            "'webhookUrl' is not allowed: scheme ftp is not allowed, only http and https",
        ),
        (
            {"webhookUrl": "not a url"},
            "'webhookUrl' with value 'not a url' fails to match the required pattern",
        ),
    ],
)
async def test_set_settings_refuses(
    client: httpx.AsyncClient, account: Account, body: dict[str, object], details: str
) -> None:
    before = ok(await client.get(account.url("getSettings")))
    response = await client.post(account.url("setSettings"), json=body)
    assert_error(response, 400, invalid(details))
    assert ok(await client.get(account.url("getSettings"))) == before


async def test_a_refused_webhook_address_names_the_setting_after_the_old_text(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.post(
        account.url("setSettings"), json={"webhookUrl": "http://127.0.0.1/"}
    )
    message = assert_error(response, 400)
    old = (
        "Validation failed. Details: 'webhookUrl' is not allowed: address 127.0.0.1 is not allowed"
    )
    assert message.startswith(old + " (loopback)")  # clients matching on the start still match
    assert "outbound_allow" in message and "MAXGATE_OUTBOUND_ALLOW" in message


# Loopback and unspecified addresses written in the shorthand forms the system resolver
# reads as addresses without asking DNS; the guard names them as written and as meant.
SHORTHAND_LITERALS = [
    ("127.1", "127.0.0.1", "loopback"),
    ("2130706433", "127.0.0.1", "loopback"),
    ("0x7f000001", "127.0.0.1", "loopback"),
    ("017700000001", "127.0.0.1", "loopback"),
    ("127.0.0.1.", "127.0.0.1", "loopback"),
    ("0", "0.0.0.0", "unspecified"),
]


@pytest.mark.parametrize(("host", "address", "reason"), SHORTHAND_LITERALS)
async def test_set_settings_refuses_shorthand_address_literals(
    client: httpx.AsyncClient, account: Account, host: str, address: str, reason: str
) -> None:
    before = ok(await client.get(account.url("getSettings")))
    response = await client.post(
        account.url("setSettings"), json={"webhookUrl": f"http://{host}/hook"}
    )
    refused = f"address {host} ({address}) is not allowed ({reason})"
    assert_error(response, 400, invalid(f"'webhookUrl' is not allowed: {refused}" + HINT))
    assert ok(await client.get(account.url("getSettings"))) == before


async def test_set_settings_takes_public_literals_and_names(
    client: httpx.AsyncClient, account: Account
) -> None:
    for url in ("http://93.184.216.34/hook", "https://hooks.example.com./hook"):
        assert ok(await client.post(account.url("setSettings"), json={"webhookUrl": url}))
        assert ok(await client.get(account.url("getSettings")))["webhookUrl"] == url


async def test_set_settings_bounds_are_inclusive(
    client: httpx.AsyncClient, account: Account
) -> None:
    for delay in (500, 600000):
        body = {"delaySendMessagesMilliseconds": delay}
        assert ok(await client.post(account.url("setSettings"), json=body))
        settings = ok(await client.get(account.url("getSettings")))
        assert settings["delaySendMessagesMilliseconds"] == delay


async def test_get_account_settings(client: httpx.AsyncClient, account: Account) -> None:
    body = ok(await client.get(account.url("getAccountSettings")))
    assert set(body) == {"phone", "chatId", "avatar", "stateInstance", "deviceId"}
    assert body["chatId"] == account.chat_id
    assert str(body["phone"]) == str(account.instance.phone)
    assert body["stateInstance"] == "authorized"
    assert account.token not in str(body)


async def test_check_account(
    client: httpx.AsyncClient, account: Account, other_account: Account
) -> None:
    phone = other_account.instance.phone
    found = ok(await client.post(account.url("checkAccount"), json={"phoneNumber": phone}))
    assert found == {"exist": True, "chatId": other_account.chat_id}
    missing = ok(await client.post(account.url("checkAccount"), json={"phoneNumber": 70000000001}))
    assert missing["exist"] is False
    response = await client.post(account.url("checkAccount"), json={"phoneNumber": str(phone)})
    assert_error(response, 400, invalid("'phoneNumber' must be a number"))
    response = await client.post(account.url("checkAccount"), json={"phoneNumber": 1.5})
    assert_error(response, 400, invalid("'phoneNumber' must be an integer"))


async def test_messages_queue(client: httpx.AsyncClient, account: Account) -> None:
    assert ok(await client.get(account.url("showMessagesQueue"))) == []
    assert ok(await client.get(account.url("getMessagesCount"))) == {"count": 0}
    body = {"delaySendMessagesMilliseconds": 600000}
    assert ok(await client.post(account.url("setSettings"), json=body))
    # The first message goes out at once; the pause of 10 minutes starts after it.
    first = await send_text(client, account, CONTACT, "goes out")
    await wait_for_message(client, account, CONTACT, first, status="read")
    waiting = [await send_text(client, account, CONTACT, f"waits {n}") for n in range(3)]

    queue = ok(await client.get(account.url("showMessagesQueue")))
    assert [entry["messageID"] for entry in queue] == waiting
    assert [entry["body"]["message"] for entry in queue] == ["waits 0", "waits 1", "waits 2"]
    assert all(entry["body"]["chatId"] == CONTACT for entry in queue)
    assert ok(await client.get(account.url("getMessagesCount"))) == {"count": 3}
    for id_message in waiting:
        item = await wait_for_message(client, account, CONTACT, id_message)
        assert item["statusMessage"] == "pending"

    assert ok(await client.get(account.url("clearMessagesQueue"))) == {"isCleared": True}
    assert ok(await client.get(account.url("showMessagesQueue"))) == []
    assert ok(await client.get(account.url("getMessagesCount"))) == {"count": 0}
    for id_message in waiting:
        item = await wait_for_message(client, account, CONTACT, id_message)
        assert item["statusMessage"] == "failed"
    item = await wait_for_message(client, account, CONTACT, first)
    assert item["statusMessage"] == "read"
    # Clearing an empty queue is fine too.
    assert ok(await client.get(account.url("clearMessagesQueue"))) == {"isCleared": True}


async def test_queues_are_per_instance(
    client: httpx.AsyncClient, account: Account, other_account: Account
) -> None:
    body = {"delaySendMessagesMilliseconds": 600000}
    assert ok(await client.post(account.url("setSettings"), json=body))
    first = await send_text(client, account, CONTACT, "goes out")
    await wait_for_message(client, account, CONTACT, first, status="read")
    await send_text(client, account, CONTACT, "waits")
    assert ok(await client.get(account.url("getMessagesCount"))) == {"count": 1}
    assert ok(await client.get(other_account.url("getMessagesCount"))) == {"count": 0}
    assert ok(await client.get(other_account.url("showMessagesQueue"))) == []
    assert ok(await client.get(other_account.url("clearMessagesQueue"))) == {"isCleared": True}
    assert ok(await client.get(account.url("getMessagesCount"))) == {"count": 1}


async def test_send_authorization_password_finishes_a_two_factor_qr_login(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandboxlogin, "QR_SCAN_SECONDS", 0.01)
    url = account.url("sendAuthorizationPassword")

    def failed(reason: str) -> dict[str, object]:
        return {"status": True, "data": {"status": "fail", "reason": reason}}

    assert ok(await client.post(url, json={"password": "x"})) == failed("already_registered")
    runtime.sandbox.set_password(account.id, "correct horse")
    assert ok(await client.get(account.url("logout"))) == {"isLogout": True}
    assert ok(await client.post(url, json={"password": "x"})) == failed("authorization_not_started")
    assert ok(await client.get(account.url("qr")))["type"] == "qrCode"
    for _ in range(200):  # the sandbox's phone scans the code
        if runtime.sandbox.awaits_password(account.id):
            break
        await asyncio.sleep(0.05)
    assert ok(await client.post(url, json={"password": "wrong"})) == failed("invalid_password")
    assert ok(await client.post(url, json={})) == failed("invalid_password")  # optional field
    answer = ok(await client.post(url, json={"password": "correct horse"}))
    assert answer == {"status": True, "data": {"status": "success"}}
    state = ok(await client.get(account.url("getStateInstance")))
    assert state == {"stateInstance": "authorized"}
    assert_error(
        await client.post(url, json={"password": 5}),
        400,
        "Validation failed. Details: 'password' must be a string",
    )
