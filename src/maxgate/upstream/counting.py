"""An upstream wrapper that counts the errors of the messenger, for ``/metrics``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from maxgate.domain.messenger import ChatInfo, Contact, InboundMessage, InboundSink, Upstream
from maxgate.domain.records import FileRecord, Instance, Message
from maxgate.errors import UpstreamError

T = TypeVar("T")

OPERATIONS = (
    "send",
    "fetch_file",
    "check_account",
    "resolve_phone",
    "state",
    "reboot",
    "logout",
    "qr",
    "send_password",
    "contacts",
    "chats",
    "history",
)


class CountingUpstream:
    """Delegates to another upstream and counts the ``UpstreamError`` each operation raises.

    ``errors`` maps (operation, error class name) to a count; both sets are bounded (the
    operations above, the subclasses of UpstreamError), so they are safe metric labels.
    """

    def __init__(self, inner: Upstream) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.errors: dict[tuple[str, str], int] = {(op, "UpstreamError"): 0 for op in OPERATIONS}

    def _count(self, operation: str, exc: UpstreamError) -> None:
        key = (operation, type(exc).__name__)
        self.errors[key] = self.errors.get(key, 0) + 1

    async def _counted(self, operation: str, work: Awaitable[T]) -> T:
        try:
            return await work
        except UpstreamError as exc:
            self._count(operation, exc)
            raise

    def capabilities(self) -> frozenset[str]:
        """The inner upstream's capabilities."""
        return self.inner.capabilities()

    async def start(self, sink: InboundSink) -> None:
        """Start the inner upstream."""
        await self.inner.start(sink)

    async def stop(self) -> None:
        """Stop the inner upstream."""
        await self.inner.stop()

    async def send(
        self, instance: Instance, message: Message, body: AsyncIterator[bytes] | None
    ) -> str:
        """Send through the inner upstream, counting its failures."""
        return await self._counted("send", self.inner.send(instance, message, body))

    async def fetch_file(self, instance_id: int, file: FileRecord) -> AsyncIterator[bytes]:
        """Stream a file from the inner upstream, counting its failures."""
        chunks = self.inner.fetch_file(instance_id, file)
        try:
            async for chunk in chunks:
                yield chunk
        except UpstreamError as exc:
            self._count("fetch_file", exc)
            raise
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:  # a reader that stopped early: release the inner stream now
                await close()

    async def check_account(self, phone: int) -> str | None:
        """Look an account up through the inner upstream, counting its failures."""
        return await self._counted("check_account", self.inner.check_account(phone))

    async def resolve_phone(self, instance: Instance, phone: int) -> str | None:
        """Look a phone number up through the inner upstream, counting its failures."""
        return await self._counted("resolve_phone", self.inner.resolve_phone(instance, phone))

    async def state(self, instance: Instance) -> str:
        """The account's state from the inner upstream, counting its failures."""
        return await self._counted("state", self.inner.state(instance))

    async def reboot(self, instance: Instance) -> None:
        """Reconnect the account through the inner upstream, counting its failures."""
        await self._counted("reboot", self.inner.reboot(instance))

    async def logout(self, instance: Instance) -> None:
        """Log the account out through the inner upstream, counting its failures."""
        await self._counted("logout", self.inner.logout(instance))

    async def qr(self, instance: Instance) -> bytes | None:
        """A login QR code from the inner upstream, counting its failures."""
        return await self._counted("qr", self.inner.qr(instance))

    async def send_password(self, instance: Instance, password: str) -> bool:
        """Answer a two-factor challenge through the inner upstream, counting its failures."""
        return await self._counted("send_password", self.inner.send_password(instance, password))

    async def contacts(self, instance: Instance) -> list[Contact]:
        """The account's contacts from the inner upstream, counting its failures."""
        return await self._counted("contacts", self.inner.contacts(instance))

    async def chats(self, instance: Instance) -> list[ChatInfo]:
        """The account's chats from the inner upstream, counting its failures."""
        return await self._counted("chats", self.inner.chats(instance))

    async def history(self, instance: Instance, chat_id: str, since: int) -> list[InboundMessage]:
        """A chat's messages since a time from the inner upstream, counting its failures."""
        return await self._counted("history", self.inner.history(instance, chat_id, since))
