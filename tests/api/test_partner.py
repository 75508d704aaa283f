"""Partner methods: createInstance, getInstances, deleteInstanceAccount (spec §3 "Partner")."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from maxgate.net.urlguard import UrlGuard, parse_allow_list
from maxgate.runtime import Runtime
from tests.api._support import CONTACT, assert_error, invalid, ok, send_text
from tests.conftest import Account


@pytest.fixture
def partner(runtime: Runtime) -> str:
    """The operator's partner token."""
    return runtime.settings.partner_token.reveal()


def partner_url(method: str, token: str) -> str:
    return f"/partner/{method}/{token}"


async def create(
    client: httpx.AsyncClient, runtime: Runtime, partner: str, body: Any = None
) -> Account:
    """createInstance; returns the new instance as an Account (with the token it answered)."""
    response = await client.post(partner_url("createInstance", partner), json=body or {})
    answer = ok(response)
    assert set(answer) == {"idInstance", "apiTokenInstance", "typeInstance"}
    assert type(answer["idInstance"]) is int
    assert re.fullmatch(r"31\d{8}", str(answer["idInstance"]))
    assert re.fullmatch(r"[0-9a-f]{50}", answer["apiTokenInstance"])
    assert answer["typeInstance"] == "v3"
    state = ok(
        await client.get(
            f"/v3/waInstance{answer['idInstance']}/getStateInstance/{answer['apiTokenInstance']}"
        )
    )
    assert state == {"stateInstance": "authorized"}
    ids = [i["idInstance"] for i in ok(await client.get(partner_url("getInstances", partner)))]
    assert answer["idInstance"] in ids
    instance = await runtime.instances.get(answer["idInstance"])
    assert instance is not None
    return Account(instance, answer["apiTokenInstance"])


async def test_create_instance(client: httpx.AsyncClient, runtime: Runtime, partner: str) -> None:
    first = await create(client, runtime, partner)
    second = await create(client, runtime, partner)
    assert second.id != first.id
    assert second.token != first.token
    # The new token works for real calls, and only for its own instance.
    assert await send_text(client, second, CONTACT, "from a new instance")
    response = await client.get(f"/v3/waInstance{first.id}/getSettings/{second.token}")
    assert_error(response, 401, "Unauthorized")


async def test_create_instance_with_name_and_settings(
    client: httpx.AsyncClient, runtime: Runtime, partner: str
) -> None:
    body = {
        "name": "Support desk",
        "delaySendMessagesMilliseconds": 2000,
        "incomingWebhook": "no",
        "webhookUrl": "https://crm.example.com/hook",
    }
    account = await create(client, runtime, partner, body)
    listed = ok(await client.get(partner_url("getInstances", partner)))
    entry = next(i for i in listed if i["idInstance"] == account.id)
    assert entry["name"] == "Support desk"
    assert entry["typeInstance"] == "v3"
    assert type(entry["timeCreated"]) is int
    settings = ok(await client.get(account.url("getSettings")))
    assert settings["delaySendMessagesMilliseconds"] == 2000
    assert settings["incomingWebhook"] == "no"
    assert settings["webhookUrl"] == "https://crm.example.com/hook"
    assert settings["outgoingWebhook"] == "yes"  # the default for what was not given


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"incomingWebhook": "maybe"}, "'incomingWebhook' must be one of [yes, no]"),
        ({"name": 5}, "'name' must be a string"),
        (
            {"delaySendMessagesMilliseconds": 100},
            "'delaySendMessagesMilliseconds' must be greater than or equal to 500",
        ),
        (
            {"webhookUrl": "http://192.168.1.10/hook"},
            "'webhookUrl' is not allowed: address 192.168.1.10 is not allowed (private)"
            "; allow it with the setting outbound_allow (MAXGATE_OUTBOUND_ALLOW)",
        ),
        ([1, 2], "'value' must be of type object"),
    ],
)
async def test_create_instance_refuses(
    client: httpx.AsyncClient, partner: str, body: Any, details: str
) -> None:
    before = ok(await client.get(partner_url("getInstances", partner)))
    response = await client.post(partner_url("createInstance", partner), json=body)
    assert_error(response, 400, invalid(details))
    assert ok(await client.get(partner_url("getInstances", partner))) == before


async def test_get_instances(
    client: httpx.AsyncClient, partner: str, account: Account, other_account: Account
) -> None:
    listed = ok(await client.get(partner_url("getInstances", partner)))
    assert [i["idInstance"] for i in listed] == [account.id, other_account.id]
    assert [i["name"] for i in listed] == ["Alice", "Bob"]
    for entry in listed:
        assert {"idInstance", "name", "typeInstance", "timeCreated"} <= set(entry)
        assert "apiTokenInstance" not in entry
    assert account.token not in str(listed) and other_account.token not in str(listed)


async def test_delete_instance_account(
    client: httpx.AsyncClient, partner: str, account: Account, other_account: Account
) -> None:
    url = partner_url("deleteInstanceAccount", partner)
    assert ok(await client.post(url, json={"idInstance": account.id})) == {
        "deleteInstanceAccount": True
    }
    for method, verb in (("getStateInstance", "GET"), ("sendMessage", "POST")):
        response = await client.request(verb, account.url(method))
        assert_error(response, 400, "Instance is deleted")
    again = ok(await client.post(url, json={"idInstance": account.id}))
    assert again["deleteInstanceAccount"] is False
    assert isinstance(again.get("reason"), str) and again["reason"]
    unknown = ok(await client.post(url, json={"idInstance": 3109999999}))
    assert unknown["deleteInstanceAccount"] is False
    listed = ok(await client.get(partner_url("getInstances", partner)))
    assert [i["idInstance"] for i in listed] == [other_account.id]
    # The other instance is untouched.
    assert ok(await client.get(other_account.url("getStateInstance")))


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({}, "'value' must have at least 1 keys"),
        ({"idInstance": "3100000001"}, "'idInstance' must be a number"),
        ({"name": "x"}, "'idInstance' is required"),
    ],
)
async def test_delete_instance_account_refuses(
    client: httpx.AsyncClient, partner: str, account: Account, body: Any, details: str
) -> None:
    response = await client.post(partner_url("deleteInstanceAccount", partner), json=body)
    assert_error(response, 400, invalid(details))
    assert ok(await client.get(account.url("getStateInstance")))


async def test_wrong_partner_token(
    client: httpx.AsyncClient, partner: str, account: Account
) -> None:
    wrong = partner[:-1] + ("0" if partner[-1] != "0" else "1")
    for method, verb, body in (
        ("createInstance", "POST", {"name": "x"}),
        ("getInstances", "GET", None),
        ("deleteInstanceAccount", "POST", {"idInstance": account.id}),
    ):
        for token in (wrong, "", "x", account.token):
            if not token:
                response = await client.request(verb, f"/partner/{method}/")
                assert_error(response, 404, "Not Found")
                continue
            response = await client.request(verb, partner_url(method, token), json=body)
            assert_error(response, 401, "Unauthorized")
    assert ok(await client.get(account.url("getStateInstance")))  # not deleted
    listed = ok(await client.get(partner_url("getInstances", partner)))
    assert [i["idInstance"] for i in listed] == [account.id]  # nothing created


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"upstream": "maxbot"}, "a maxbot instance needs the bot's token (--bot-token-file)"),
        (
            {"upstream": "sandbox", "botToken": "t"},
            "an instance of kind sandbox takes no bot token",
        ),
        (
            {"upstream": "pigeon"},
            "unknown upstream kind 'pigeon': this server has maxbot, maxuser, sandbox",
        ),
    ],
)
async def test_create_instance_of_a_kind_refuses(
    client: httpx.AsyncClient, runtime: Runtime, partner: str, body: dict[str, Any], message: str
) -> None:
    before = len(await runtime.instances.list())
    response = await client.post(partner_url("createInstance", partner), json=body)
    assert_error(response, 400, message)
    assert len(await runtime.instances.list()) == before  # nothing made


async def test_create_a_maxbot_instance_with_its_token_checked(
    client: httpx.AsyncClient, runtime: Runtime, partner: str, tmp_path: Any
) -> None:
    from tests.fakemax.conftest import serve_fake

    with serve_fake(tmp_path, "--tokens", "good-token") as (base, _log):
        runtime.maxbot.base_url = base  # the fake, on a loopback address
        runtime.guard = runtime.max_http.guard = UrlGuard(parse_allow_list("127.0.0.0/8"))
        refused = await client.post(
            partner_url("createInstance", partner), json={"upstream": "maxbot", "botToken": "bad"}
        )
        assert_error(refused, 400, "MAX Bot API answered 401 verify.token: Invalid access_token")
        made = await client.post(
            partner_url("createInstance", partner),
            json={"upstream": "maxbot", "botToken": "good-token", "name": "bot"},
        )
        assert made.status_code == 200, made.text
    instance = await runtime.instances.get(made.json()["idInstance"])
    assert instance is not None and instance.upstream == "maxbot"
    assert "good-token" not in repr(instance) and "good-token" not in made.text
    settings = await client.get(
        f"/waInstance{instance.id}/getSettings/{made.json()['apiTokenInstance']}"
    )
    assert "good-token" not in settings.text
