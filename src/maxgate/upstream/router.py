"""The upstreams of one server: an adapter per kind, and each instance's calls sent to its own.

An instance's kind is its ``upstream`` column (``Instance.upstream``); the ``upstream`` setting
only names the kind of instances created without one. ``Upstreams`` is itself an ``Upstream``,
so the domain holds one object whatever the mix of kinds on the server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from maxgate.domain.messenger import ChatInfo, Contact, InboundMessage, InboundSink, Upstream
from maxgate.domain.records import FileRecord, Instance, Message
from maxgate.errors import ConfigError, UpstreamError


class Upstreams:
    """Routes every call to the adapter of the instance's kind.

    ``kind_of`` finds an instance's kind by id (None for no such instance), for the one
    operation that gets an id rather than an instance (``fetch_file``).
    """

    def __init__(
        self,
        adapters: Mapping[str, Upstream],
        *,
        default: str,
        kind_of: Callable[[int], Awaitable[str | None]],
    ) -> None:
        self.adapters = dict(adapters)
        self._kind_of = kind_of
        self.require_kind(default)
        self.default = default
        self.kind = default

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds this server has an adapter for."""
        return frozenset(self.adapters)

    def require_kind(self, kind: str) -> None:
        """Refuse a kind this server has no adapter for (``ConfigError``, naming the kinds)."""
        if kind not in self.adapters:
            known = ", ".join(sorted(self.adapters))
            raise ConfigError(f"unknown upstream kind {kind!r}: this server has {known}")

    def adapter(self, kind: str) -> Upstream:
        """The adapter of a kind; UpstreamError for a kind this server does not have (an
        instance made by a server with more kinds, say)."""
        try:
            return self.adapters[kind]
        except KeyError:
            raise UpstreamError(f"this server has no upstream of kind {kind!r}") from None

    def of(self, instance: Instance) -> Upstream:
        """The adapter behind an instance."""
        return self.adapter(instance.upstream)

    def capabilities_of(self, kind: str) -> frozenset[str]:
        """What an instance of that kind can do; nothing for a kind this server does not have."""
        adapter = self.adapters.get(kind)
        return adapter.capabilities() if adapter is not None else frozenset()

    def capabilities(self) -> frozenset[str]:
        """The default kind's capabilities (per instance: ``capabilities_of``)."""
        return self.capabilities_of(self.default)

    async def start(self, sink: InboundSink) -> None:
        """Start every adapter, all reporting to ``sink``."""
        for adapter in self.adapters.values():
            await adapter.start(sink)

    async def stop(self) -> None:
        """Stop every adapter (the last started first)."""
        for adapter in reversed(list(self.adapters.values())):
            await adapter.stop()

    async def send(
        self, instance: Instance, message: Message, body: AsyncIterator[bytes] | None
    ) -> str:
        """Send through the instance's adapter."""
        return await self.of(instance).send(instance, message, body)

    async def fetch_file(self, instance_id: int, file: FileRecord) -> AsyncIterator[bytes]:
        """Stream a file through the adapter of the instance it belongs to."""
        kind = await self._kind_of(instance_id)
        if kind is None:
            raise UpstreamError(f"no instance {instance_id} to fetch a file for")
        chunks = self.adapter(kind).fetch_file(instance_id, file)
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:  # a reader that stopped early: release the inner stream now
                await close()

    async def check_account(self, phone: int) -> str | None:
        """Look a phone number up through the default kind (see ``Upstream.check_account``)."""
        return await self.adapter(self.default).check_account(phone)

    async def resolve_phone(self, instance: Instance, phone: int) -> str | None:
        """Look a phone number up for an instance through its adapter."""
        return await self.of(instance).resolve_phone(instance, phone)

    async def state(self, instance: Instance) -> str:
        """The instance's state as its messenger sees it."""
        return await self.of(instance).state(instance)

    async def reboot(self, instance: Instance) -> None:
        """Reconnect the instance's account."""
        await self.of(instance).reboot(instance)

    async def logout(self, instance: Instance) -> None:
        """Log the instance's account out."""
        await self.of(instance).logout(instance)

    async def qr(self, instance: Instance) -> bytes | None:
        """A login QR code for the instance, or None when it is authorised."""
        return await self.of(instance).qr(instance)

    async def send_password(self, instance: Instance, password: str) -> bool:
        """Answer the instance's two-factor challenge."""
        return await self.of(instance).send_password(instance, password)

    async def contacts(self, instance: Instance) -> list[Contact]:
        """The instance's contacts."""
        return await self.of(instance).contacts(instance)

    async def chats(self, instance: Instance) -> list[ChatInfo]:
        """The instance's chats on its messenger."""
        return await self.of(instance).chats(instance)

    async def history(self, instance: Instance, chat_id: str, since: int) -> list[InboundMessage]:
        """A chat's messages since a time, from the instance's messenger."""
        return await self.of(instance).history(instance, chat_id, since)
