"""The runtime: every part of a running gateway, built from one Settings object.

The HTTP app and the CLI both build a Runtime; the CLI uses it without the background workers
(it works on the same database and storage while a server runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from maxgate.blobs import BlobStore
from maxgate.domain.files import Files
from maxgate.domain.instances import Instances
from maxgate.domain.journal import Journal
from maxgate.domain.links import LinkSigner, file_link
from maxgate.domain.messenger import Upstream
from maxgate.domain.notifications import Notifications
from maxgate.domain.outbox import Outbox
from maxgate.domain.records import Instance
from maxgate.domain.retention import Retention
from maxgate.domain.webhooks import Webhooks
from maxgate.errors import ConfigError, MaxgateError
from maxgate.net.client import OutboundClient, outbound_client
from maxgate.net.poster import WebhookPoster
from maxgate.net.urlguard import UrlGuard
from maxgate.settings import MAX_FILE_SIZE_CAP, Settings
from maxgate.store.database import Database
from maxgate.upstream.counting import CountingUpstream
from maxgate.upstream.maxbot import MaxBot
from maxgate.upstream.maxbot.adapter import WEBHOOK_PATH
from maxgate.upstream.maxbot.api import trusted_context
from maxgate.upstream.maxuser import MaxUser
from maxgate.upstream.router import Upstreams
from maxgate.upstream.sandbox import Sandbox

log = logging.getLogger(__name__)

TEMP_BLOB_AGE = 6 * 3600.0
SWEEP_INTERVAL = 60.0
MIRROR_BATCH = 500  # files a mirroring pass takes at most (it takes new arrivals as it goes)
MIRROR_IDLE = 5.0  # seconds between looks for due retries when nothing arrives


def _sandbox(runtime: Runtime) -> Upstream:
    return runtime.sandbox


def _maxbot(runtime: Runtime) -> Upstream:
    return runtime.maxbot


def _maxuser(runtime: Runtime) -> Upstream:
    return runtime.maxuser


def _webhook_base(settings: Settings) -> str:
    """Where MAX delivers maxbot updates (``maxbot_updates``): "" for polling."""
    mode = settings.maxbot_updates
    if mode == "auto":
        mode = "webhook" if settings.base_url.startswith("https://") else "polling"
    return settings.base_url + WEBHOOK_PATH if mode == "webhook" else ""


UPSTREAM_KINDS: dict[str, Callable[[Runtime], Upstream]] = {
    "sandbox": _sandbox,
    "maxbot": _maxbot,
    "maxuser": _maxuser,
}
"""The messenger adapters a server can host, by kind: a builder from the runtime's parts. A
new upstream is one module in ``maxgate.upstream`` implementing ``Upstream``, registered here;
each instance names its kind (``instance create --upstream``), the setting ``upstream`` the
kind of instances created without one."""


class Runtime:
    """The parts of a gateway: store, blobs, upstream, domain services and workers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.resolved_database_url)
        self.blobs = BlobStore(settings.resolved_blob_url)
        self.instances = Instances(self.db, default_upstream=settings.upstream)
        self.sandbox = Sandbox(
            self.db, BlobStore(settings.sandbox_blob_url), retention=settings.sandbox_retention
        )
        self._max_http: OutboundClient | None = None
        self.maxbot = MaxBot(
            self.db,
            lambda: self.max_http,
            base_url=settings.maxbot_base_url,
            # Each worker process paces its own calls: the token's budget is split between them.
            rps=max(1, settings.maxbot_rps // settings.workers),
            poll_timeout=settings.maxbot_poll_timeout,
            file_size_limit=MAX_FILE_SIZE_CAP,
            webhook_base=_webhook_base(settings),
        )
        self.maxuser = MaxUser(
            self.db,
            url=settings.maxuser_url,
            send_interval=settings.maxuser_send_interval,
            lock_path=settings.data_path / "maxuser.lock",
        )
        # One adapter per kind; each instance's calls go to its own kind's (upstream/router.py).
        self.upstreams = Upstreams(
            {kind: build(self) for kind, build in UPSTREAM_KINDS.items()},
            default=settings.upstream,
            kind_of=self._upstream_kind,
        )
        self.upstream = CountingUpstream(self.upstreams)  # errors by operation, for /metrics
        self.files = Files(
            self.db,
            self.blobs,
            self.upstream,
            retention=settings.file_retention,
            # Received files are mirrored up to MAX's own limit: max_file_size bounds what API
            # clients upload; refusing a received file would make it undownloadable for good.
            max_size=MAX_FILE_SIZE_CAP,
            fetch_timeout=settings.outbound_timeout,
            mirror_concurrency=settings.mirror_concurrency,
        )
        self.signer = LinkSigner(settings.link_key.reveal(), settings.base_url)
        self.notifications = Notifications(
            self.db,
            file_by_id=self.files.get,
            link=lambda file: file_link(self.signer, file, settings.file_retention),
            retention=settings.notification_retention,
        )
        self.journal = Journal(
            self.db, self.files, instances=self.instances, notifications=self.notifications
        )
        self.retention = Retention(self.db, self.blobs)
        self.outbox = Outbox(self.db, self.instances, self.journal, self.files, self.upstream)
        self.journal.on_outbox = self.outbox.notify
        self.guard = UrlGuard(settings.outbound_allow)
        self._http: OutboundClient | None = None
        self.webhooks = Webhooks(
            self.db,
            self.instances,
            self.notifications,
            WebhookPoster(lambda: self.http),  # the shared outbound client, made on first use
            timeout=settings.webhook_timeout,
            retry_delays=settings.webhook_retry_delays,
        )
        self.notifications.on_added = self.webhooks.notify
        if settings.mirror_mode == "eager":
            self.journal.on_remote_file = self.files.remote_arrived
        self._workers: list[asyncio.Task[None]] = []
        self._kinds: dict[int, str] = {}  # instance id -> upstream kind (_upstream_kind)

    async def _upstream_kind(self, instance_id: int) -> str | None:
        # An instance's kind never changes (nor does its id go to another): each is read once.
        kind = self._kinds.get(instance_id)
        if kind is None:
            instance = await self.instances.get(instance_id)
            if instance is None:
                return None
            if len(self._kinds) >= 100_000:
                self._kinds.clear()
            kind = self._kinds[instance_id] = instance.upstream
        return kind

    @property
    def http(self) -> OutboundClient:
        """The guarded outbound HTTP client (sendFileByUrl, webhooks), made on first use."""
        if self._http is None:
            self._http = outbound_client(self.guard, timeout=self.settings.outbound_timeout)
        return self._http

    @property
    def max_http(self) -> OutboundClient:
        """The outbound client for MAX (its CA trusted), made on first use."""
        if self._max_http is None:
            self._max_http = outbound_client(
                self.guard,
                timeout=self.settings.outbound_timeout,
                ssl_context=trusted_context(self.settings.maxbot_ca_bundle),
            )
        return self._max_http

    async def create_instance(
        self,
        *,
        name: str = "",
        upstream: str | None = None,
        bot_token: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> tuple[Instance, str]:
        """Create an instance of a kind this server has; returns it with its API token.

        A ``maxbot`` instance needs ``bot_token``, checked with MAX first (``GET /me``:
        ``UpstreamError`` for a token MAX refuses or a MAX that cannot be reached); other
        kinds take none (``ConfigError``).
        """
        kind = upstream or self.settings.upstream
        self.upstreams.require_kind(kind)
        if kind == MaxBot.kind:
            if not bot_token:
                raise ConfigError("a maxbot instance needs the bot's token (--bot-token-file)")
            await self.maxbot.verify(bot_token)
        elif bot_token:
            raise ConfigError(f"an instance of kind {kind} takes no bot token")
        instance, token = await self.instances.create(name=name, upstream=kind, settings=settings)
        if bot_token:
            try:
                await self.maxbot.enroll(instance.id, bot_token)
            except MaxgateError:
                await self.instances.delete(instance.id)
                raise
        return instance, token

    async def open(self) -> None:
        """Migrate the schema and start the upstream (no background workers)."""
        await self.db.migrate()
        await self.upstream.start(self.journal)

    async def start_workers(self) -> None:
        """Start the background workers: sending, webhooks, mirroring, sweeping."""
        await self.outbox.recover()
        self._workers = [
            asyncio.create_task(self.outbox.run(), name="maxgate-outbox"),
            asyncio.create_task(self.webhooks.run(), name="maxgate-webhooks"),
            asyncio.create_task(self.notifications.watch(), name="maxgate-notification-watch"),
        ]
        self._workers.append(asyncio.create_task(self._sweep_loop(), name="maxgate-sweep"))
        self._workers.append(asyncio.create_task(self.maxbot.run(), name="maxgate-maxbot"))
        self._workers.append(asyncio.create_task(self.maxuser.run(), name="maxgate-maxuser"))
        if self.settings.mirror_mode == "eager":
            self._workers.append(asyncio.create_task(self._mirror_loop(), name="maxgate-mirror"))

    async def _mirror_loop(self) -> None:
        """Mirror received files as they are journaled (woken by ``Files.remote_arrived``),
        and every MIRROR_IDLE seconds those whose retry is due."""
        while True:
            try:
                while await self.files.mirror_pending(batch=MIRROR_BATCH) > 0:
                    pass
            except MaxgateError:
                log.exception("mirroring failed; retrying")
            await self.files.wait_for_remote(MIRROR_IDLE)

    async def _sweep_loop(self) -> None:
        """Evict expired bytes every SWEEP_INTERVAL; drop crash leftovers hourly."""
        next_temp_sweep = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self.retention.sweep()
                await self.notifications.sweep()
                if loop.time() >= next_temp_sweep:
                    await self.blobs.sweep_temp(older_than_seconds=TEMP_BLOB_AGE)
                    next_temp_sweep = loop.time() + 3600
            except MaxgateError:
                log.exception("sweeping failed; retrying")
            await asyncio.sleep(
                min(
                    SWEEP_INTERVAL,
                    self.settings.file_retention,
                    self.settings.notification_retention,
                )
            )

    async def close(self) -> None:
        """Stop workers and release every connection."""
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.outbox.close()
        await self.webhooks.close()
        await self.files.close()
        await self.upstream.stop()
        for client in (self._http, self._max_http):
            if client is not None:
                await client.aclose()
        await self.db.close()
