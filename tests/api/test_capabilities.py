"""A v3 method an instance's upstream cannot honour: the documented 400, through real requests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from maxgate.api.routing import METHODS
from maxgate.domain.messenger import GATEWAY_METHODS, MESSENGER_METHODS, InboundSink
from maxgate.domain.records import Instance
from maxgate.runtime import Runtime
from maxgate.upstream.maxbot import CAPABILITIES as MAXBOT_CAPABILITIES
from maxgate.upstream.sandbox import CAPABILITIES
from tests.api._support import assert_error
from tests.conftest import Account


class LogoutOnly:
    """An upstream kind that can do one messenger method: logout."""

    kind = "limited"

    def __init__(self) -> None:
        self.logged_out: list[int] = []

    def capabilities(self) -> frozenset[str]:
        return frozenset({"logout"})

    async def start(self, sink: InboundSink) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def logout(self, instance: Instance) -> None:
        self.logged_out.append(instance.id)


@pytest.fixture
async def limited(runtime: Runtime) -> AsyncIterator[LogoutOnly]:
    """The ``limited`` kind registered on the running app's runtime."""
    adapter = LogoutOnly()
    runtime.upstreams.adapters["limited"] = adapter  # type: ignore[assignment]
    yield adapter
    del runtime.upstreams.adapters["limited"]


async def _account(runtime: Runtime, kind: str) -> Account:
    instance, token = await runtime.instances.create(name=kind, upstream=kind)
    return Account(instance, token)


def not_available(method: str, kind: str) -> str:
    return f"Method {method} is not available for this instance kind: {kind}"


async def test_a_method_the_kind_lacks_is_a_400_naming_method_and_kind(
    client: httpx.AsyncClient, runtime: Runtime, limited: LogoutOnly
) -> None:
    account = await _account(runtime, "limited")
    assert_error(await client.get(account.url("qr")), 400, not_available("qr", "limited"))
    assert_error(
        await client.post(account.url("sendMessage"), json={"chatId": "10000001", "message": "x"}),
        400,
        not_available("sendMessage", "limited"),
    )
    # checked before the body: even a body that would not validate gets this answer
    assert_error(
        await client.post(account.url("checkAccount"), json={}),
        400,
        not_available("checkAccount", "limited"),
    )
    assert await runtime.journal.last(account.id, "outgoing", 5) == []  # nothing was queued


async def test_what_the_kind_has_and_what_maxgate_answers_alone_still_work(
    client: httpx.AsyncClient, runtime: Runtime, limited: LogoutOnly
) -> None:
    account = await _account(runtime, "limited")
    response = await client.get(account.url("logout"))
    assert response.status_code == 200 and response.json() == {"isLogout": True}
    assert limited.logged_out == [account.id]
    for method in ("getSettings", "getStateInstance", "lastIncomingMessages", "getChats"):
        assert (await client.get(account.url(method))).status_code == 200, method


async def test_a_kind_this_server_has_no_adapter_for_can_do_no_messenger_method(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    account = await _account(runtime, "nosuchkind")
    assert_error(
        await client.get(account.url("reboot")), 400, not_available("reboot", "nosuchkind")
    )
    assert (await client.get(account.url("getSettings"))).status_code == 200


async def test_the_token_is_checked_first(
    client: httpx.AsyncClient, runtime: Runtime, limited: LogoutOnly
) -> None:
    account = await _account(runtime, "limited")
    wrong = Account(account.instance, "0" * 50)
    assert_error(await client.get(wrong.url("qr")), 401, "Unauthorized")


async def test_sandbox_instances_have_every_method(
    client: httpx.AsyncClient, account: Account
) -> None:
    assert account.instance.upstream == "sandbox"
    response = await client.post(account.url("checkAccount"), json={"phoneNumber": 79990000001})
    assert response.status_code == 200


def test_every_method_is_either_the_gateways_or_the_messengers(app: object) -> None:
    served = {
        spec.name for spec in METHODS.values() if spec.handler.__module__.startswith("maxgate.")
    }
    assert GATEWAY_METHODS.isdisjoint(MESSENGER_METHODS)
    unclassified = served - GATEWAY_METHODS - MESSENGER_METHODS
    assert not unclassified, f"add these to GATEWAY_METHODS or MESSENGER_METHODS: {unclassified}"
    # the sandbox plays every messenger method served today
    assert served & MESSENGER_METHODS <= CAPABILITIES


def test_the_methods_doc_names_what_the_sandbox_can_do(app: object) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "methods.md").read_text("utf-8")
    found = re.search(r"<!-- methods:messenger -->.*?\n\| sandbox \| ([^|]+) \|", text, re.S)
    assert found is not None
    served = {
        spec.name for spec in METHODS.values() if spec.handler.__module__.startswith("maxgate.")
    }
    assert set(found[1].strip().split(", ")) == served & CAPABILITIES
    bot = re.search(r"<!-- methods:messenger -->.*?\n\| maxbot \| ([^|]+) \|", text, re.S)
    assert bot is not None and set(bot[1].strip().split(", ")) == MAXBOT_CAPABILITIES
    assert not_available("<method>", "<kind>") in text


async def test_the_sandbox_writes_only_into_sandbox_instances(
    client: httpx.AsyncClient, runtime: Runtime, limited: LogoutOnly
) -> None:
    account = await _account(runtime, "limited")
    partner = runtime.settings.partner_token.reveal()
    contact = {"idInstance": account.id, "chatId": "20000001", "message": "hi"}
    answer = await client.post(f"/partner/sandboxSendMessage/{partner}", json=contact)
    assert_error(answer, 400, "sandboxSendMessage needs the sandbox upstream")
    assert await runtime.journal.last(account.id, "incoming", 5) == []


async def test_the_device_id_names_the_instance_kind(
    client: httpx.AsyncClient, runtime: Runtime, limited: LogoutOnly
) -> None:
    account = await _account(runtime, "limited")
    answer = await client.get(account.url("getAccountSettings"))
    assert answer.json()["deviceId"] == f"maxgate-limited-{account.id}"
