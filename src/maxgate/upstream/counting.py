"""An upstream wrapper that counts the errors of the messenger, for ``/metrics``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from maxgate.domain.messenger import InboundSink, Upstream
from maxgate.domain.records import FileRecord, Instance, Message
from maxgate.errors import UpstreamError

OPERATIONS = ("send", "fetch_file", "check_account")


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
        try:
            return await self.inner.send(instance, message, body)
        except UpstreamError as exc:
            self._count("send", exc)
            raise

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
        try:
            return await self.inner.check_account(phone)
        except UpstreamError as exc:
            self._count("check_account", exc)
            raise

    async def reboot(self, instance: Instance) -> None:
        """Reconnect the account through the inner upstream."""
        await self.inner.reboot(instance)

    async def logout(self, instance: Instance) -> None:
        """Log the account out through the inner upstream."""
        await self.inner.logout(instance)

    async def qr(self, instance: Instance) -> bytes | None:
        """A login QR code from the inner upstream."""
        return await self.inner.qr(instance)
