"""Upstream kinds per instance: the router sends each instance's calls to its kind's adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from maxgate.domain.messenger import ChatInfo, Contact, InboundMessage, InboundSink
from maxgate.domain.records import FileRecord, Instance, Message
from maxgate.errors import ConfigError, UpstreamError
from maxgate.runtime import UPSTREAM_KINDS, Runtime
from maxgate.settings import Settings
from maxgate.upstream.counting import CountingUpstream
from maxgate.upstream.router import Upstreams


class Recorder:
    """A small adapter that records which operations reached it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.calls: list[tuple[str, Any]] = []

    def capabilities(self) -> frozenset[str]:
        return frozenset({"sendMessage"})

    async def start(self, sink: InboundSink) -> None:
        self.calls.append(("start", None))

    async def stop(self) -> None:
        self.calls.append(("stop", None))

    async def send(
        self, instance: Instance, message: Message, body: AsyncIterator[bytes] | None
    ) -> str:
        self.calls.append(("send", instance.id))
        return f"{self.kind}-id"

    async def fetch_file(self, instance_id: int, file: FileRecord) -> AsyncIterator[bytes]:
        self.calls.append(("fetch_file", instance_id))
        yield self.kind.encode()

    async def check_account(self, phone: int) -> str | None:
        self.calls.append(("check_account", phone))
        return None

    async def resolve_phone(self, instance: Instance, phone: int) -> str | None:
        self.calls.append(("resolve_phone", instance.id))
        return f"{self.kind}-chat"

    async def state(self, instance: Instance) -> str:
        self.calls.append(("state", instance.id))
        return "starting"

    async def reboot(self, instance: Instance) -> None:
        self.calls.append(("reboot", instance.id))

    async def logout(self, instance: Instance) -> None:
        self.calls.append(("logout", instance.id))

    async def qr(self, instance: Instance) -> bytes | None:
        self.calls.append(("qr", instance.id))
        return b"png"

    async def send_password(self, instance: Instance, password: str) -> bool:
        self.calls.append(("send_password", instance.id))
        return True

    async def contacts(self, instance: Instance) -> list[Contact]:
        self.calls.append(("contacts", instance.id))
        return [Contact("1", self.kind)]

    async def chats(self, instance: Instance) -> list[ChatInfo]:
        self.calls.append(("chats", instance.id))
        return [ChatInfo("1", "user", self.kind)]

    async def history(self, instance: Instance, chat_id: str, since: int) -> list[InboundMessage]:
        self.calls.append(("history", instance.id))
        return []


def _instance(instance_id: int, kind: str) -> Instance:
    return Instance(instance_id, "", str(instance_id), 0, "authorized", {}, 0.0, False, kind)


async def test_each_instance_reaches_the_adapter_of_its_kind() -> None:
    first, second = Recorder("first"), Recorder("second")
    kinds = {1: "first", 2: "second"}

    async def kind_of(instance_id: int) -> str | None:
        return kinds.get(instance_id)

    router = Upstreams({"first": first, "second": second}, default="first", kind_of=kind_of)
    one, two = _instance(1, "first"), _instance(2, "second")
    assert router.kind == "first" and router.kinds == {"first", "second"}
    await router.start(None)  # type: ignore[arg-type]
    assert await router.send(two, None, None) == "second-id"  # type: ignore[arg-type]
    assert await router.resolve_phone(one, 7) == "first-chat"
    assert await router.state(two) == "starting"
    assert await router.qr(one) == b"png"
    assert await router.send_password(two, "pw") is True
    assert await router.contacts(one) == [Contact("1", "first")]
    assert await router.chats(two) == [ChatInfo("1", "user", "second")]
    assert await router.history(one, "1", 0) == []
    await router.reboot(two)
    await router.logout(one)
    file: Any = None
    assert b"".join([c async for c in router.fetch_file(2, file)]) == b"second"
    assert await router.check_account(5) is None  # through the default kind
    await router.stop()
    assert [name for name, _ in first.calls] == [
        "start",
        "resolve_phone",
        "qr",
        "contacts",
        "history",
        "logout",
        "check_account",
        "stop",
    ]
    assert [name for name, _ in second.calls] == [
        "start",
        "send",
        "state",
        "send_password",
        "chats",
        "reboot",
        "fetch_file",
        "stop",
    ]
    assert all(arg in (None, 2) for _, arg in second.calls)


async def test_a_kind_without_an_adapter_is_refused_clearly() -> None:
    async def kind_of(instance_id: int) -> str | None:
        return {1: "maxbot"}.get(instance_id)

    with pytest.raises(ConfigError, match="unknown upstream kind 'maxbot': this server has one"):
        Upstreams({"one": Recorder("one")}, default="maxbot", kind_of=kind_of)
    router = Upstreams({"one": Recorder("one")}, default="one", kind_of=kind_of)
    with pytest.raises(ConfigError, match="unknown upstream kind 'maxbot'"):
        router.require_kind("maxbot")
    router.require_kind("one")
    assert router.capabilities_of("maxbot") == frozenset()
    assert router.capabilities_of("one") == {"sendMessage"} == router.capabilities()
    with pytest.raises(UpstreamError, match="no upstream of kind 'maxbot'"):
        await router.send(_instance(1, "maxbot"), None, None)  # type: ignore[arg-type]
    file: Any = None
    with pytest.raises(UpstreamError, match="no upstream of kind 'maxbot'"):
        [c async for c in router.fetch_file(1, file)]
    with pytest.raises(UpstreamError, match="no instance 9"):
        [c async for c in router.fetch_file(9, file)]


async def test_counting_counts_the_new_operations_too() -> None:
    class Broken(Recorder):
        async def history(
            self, instance: Instance, chat_id: str, since: int
        ) -> list[InboundMessage]:
            raise UpstreamError("down")

    counting = CountingUpstream(Broken("b"))
    assert counting.capabilities() == {"sendMessage"}
    assert await counting.contacts(_instance(1, "b")) == [Contact("1", "b")]
    with pytest.raises(UpstreamError):
        await counting.history(_instance(1, "b"), "1", 0)
    assert counting.errors[("history", "UpstreamError")] == 1
    assert counting.errors[("contacts", "UpstreamError")] == 0


async def test_the_runtime_routes_by_the_instance_column(settings: Settings) -> None:
    recorder = Recorder("other")
    runtime = Runtime(settings)
    runtime.upstreams.adapters["other"] = recorder  # as a second registered kind would be
    await runtime.open()
    try:
        sandboxed, _ = await runtime.instances.create(name="S")
        other, _ = await runtime.instances.create(name="O", upstream="other")
        assert sandboxed.upstream == "sandbox" and other.upstream == "other"
        assert (await runtime.instances.get(other.id)) == other
        assert await runtime.upstream.qr(other) == b"png"
        assert await runtime.upstream.qr(sandboxed) is None  # the sandbox: authorised
        file = _file(other.id)
        assert b"".join([c async for c in runtime.upstream.fetch_file(other.id, file)]) == (
            b"other"
        )
        assert ("qr", other.id) in recorder.calls and ("fetch_file", other.id) in recorder.calls
    finally:
        await runtime.close()


async def test_the_setting_gives_the_default_kind(settings: Settings) -> None:
    assert set(UPSTREAM_KINDS) == {"sandbox", "maxbot", "maxuser"}
    runtime = Runtime(settings)
    try:
        assert runtime.instances.default_upstream == settings.upstream == "sandbox"
        assert runtime.upstreams.default == "sandbox"
        assert runtime.upstreams.adapter("sandbox") is runtime.sandbox
        assert runtime.upstreams.adapter("maxbot") is runtime.maxbot
    finally:
        await runtime.close()


def _file(instance_id: int) -> FileRecord:
    return FileRecord(
        "f" * 32, instance_id, "remote", None, None, "a", "a/b", "ref", "", 0.0, None, 0.0
    )
