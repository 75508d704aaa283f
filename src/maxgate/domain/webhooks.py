"""Webhook delivery: POST each queued notification to the instance's ``webhookUrl``, in order.

The queue is the ``notifications`` table, so nothing is lost on a restart or a crash. A worker
claims the head of an instance's queue (a batch of rows, leased for a while) in a write
transaction that holds the instance's row — ``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite — so however many server processes share one database, an instance's notifications leave
one at a time and in order. A 2xx answer deletes the row; anything else, a timeout or a refused
connection schedules the head again (a few seconds, then every minute) and holds back the rows
behind it, until the sweeper drops what is older than the queue retention.

Delivery is at-least-once (a crash between a receiver's 200 and our delete sends it again), so
every POST carries ``X-Maxgate-Delivery: <receiptId>`` for receivers to drop duplicates, and, when
the instance has a ``webhookSecret``, ``X-Maxgate-Signature: sha256=<hex>`` — an HMAC-SHA256 over
``<X-Maxgate-Timestamp>.<body>``.

Instances without a ``webhookUrl`` keep their queue for receiveNotification. A notification of
one that a dispatch pass found without a URL in the last ``QUIET_SECONDS`` wakes no dispatch
(a burst of received messages would otherwise scan every queue head once per message); the
dispatch loop's tick looks again anyway, so a URL set meanwhile is picked up within a second.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from maxgate.domain.drains import Drains
from maxgate.domain.instances import Instances
from maxgate.domain.notifications import Notifications
from maxgate.domain.records import Instance
from maxgate.errors import MaxgateError
from maxgate.net.poster import WebhookPoster
from maxgate.store import webhooks as rows
from maxgate.store.database import Database, Row

log = logging.getLogger(__name__)

BATCH = 100
QUIET_SECONDS = 1.0  # how long an instance found without a webhookUrl wakes no dispatch
DEFAULT_RETRY_DELAYS = (5.0, 10.0, 60.0)  # the last one repeats
_encode = msgspec.json.Encoder().encode


def webhook_url(instance: Instance) -> str:
    """Where an instance's notifications go; "" means receiveNotification."""
    return str(instance.settings.get("webhookUrl") or "")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Maxgate-Signature`` value for a body sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Webhooks:
    """Drains the notification queues of instances with a ``webhookUrl``."""

    def __init__(
        self,
        db: Database,
        instances: Instances,
        notifications: Notifications,
        poster: WebhookPoster,
        *,
        timeout: float,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
    ) -> None:
        self.db = db
        self.instances = instances
        self.notifications = notifications
        self._poster = poster
        self.timeout = timeout
        self.retry_delays = tuple(retry_delays) or DEFAULT_RETRY_DELAYS
        # A crashed deliverer holds its rows until the lease runs out: keep it short.
        self.lease = max(15.0, 3 * timeout)
        self._drains = Drains("webhook delivery")
        self._quiet: dict[int, float] = {}  # instance without a webhookUrl → until (monotonic)

    def notify(self, instance_id: int) -> None:
        """A notification was queued; an instance being drained picks it up by itself, and one
        found without a ``webhookUrl`` just now waits for the next tick (module docs)."""
        if self._drains.busy(instance_id):
            return
        if self._quiet.get(instance_id, 0.0) > time.monotonic():
            return
        self._drains.wake.set()

    def retry_delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed delivery of a notification."""
        return self.retry_delays[min(attempts, len(self.retry_delays)) - 1]

    async def run(self, *, tick: float = 1.0) -> None:
        """Work forever: start a drain for every instance whose queue head is due."""
        await self._drains.run(self.dispatch, tick=tick)

    async def dispatch(self) -> float:
        """Start draining every instance with a due head; returns seconds until the next."""
        now = time.time()
        quiet_until = time.monotonic() + QUIET_SECONDS
        quiet: dict[int, float] = {}
        wait = 1.0
        for instance_id, next_attempt_at, lease_until in await rows.heads(self.db):
            if self._drains.busy(instance_id):
                continue
            due = max(next_attempt_at, lease_until)
            if due > now:
                wait = min(wait, due - now)
                continue
            instance = await self.instances.get(instance_id)
            if instance is None or instance.deleted or not webhook_url(instance):
                quiet[instance_id] = quiet_until
                continue
            self._drains.start(instance_id, self._drain)
        self._quiet = quiet
        return max(wait, 0.01)

    async def _drain(self, instance_id: int) -> None:
        while True:
            instance = await self.instances.get(instance_id)
            if instance is None or instance.deleted or not webhook_url(instance):
                return
            claimed = await self._claim(instance_id)
            if not claimed or not await self._deliver_batch(instance, claimed):
                return

    async def _claim(self, instance_id: int) -> list[Row]:
        """Lease the head of an instance's queue (up to BATCH rows) if it is due and free."""
        now = time.time()
        until = now + self.lease
        return await self.db.transact(
            lambda conn: rows.claim_sync(conn, instance_id, now=now, until=until, batch=BATCH)
        )

    async def _deliver_batch(self, instance: Instance, claimed: list[Row]) -> bool:
        """POST the leased rows in order; settle them. False when the head must wait."""
        stop_by = time.time() + self.lease - self.timeout - 5.0
        delivered: list[int] = []
        failed: tuple[Any, str] | None = None
        try:
            for row in claimed:
                if time.time() > stop_by:
                    break  # the lease runs out: settle and claim again
                url = webhook_url(instance)
                error = await self._post(instance, url, row)
                if error is not None:
                    failed = (row, error)
                    break
                delivered.append(row.id)
        finally:
            await self._settle(instance.id, claimed, delivered, failed)
        return failed is None

    async def _post(self, instance: Instance, url: str, row: Any) -> str | None:
        """Deliver one notification; None on success, else why it failed."""
        body = _encode(await self.notifications.render(row.body, row.file_id))
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Maxgate-Delivery": str(row.id),
            "X-Maxgate-Attempt": str(row.attempts + 1),
            "X-Maxgate-Timestamp": timestamp,
        }
        token = str(instance.settings.get("webhookUrlToken") or "")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        secret = str(instance.settings.get("webhookSecret") or "")
        if secret:
            headers["X-Maxgate-Signature"] = signature(secret, timestamp, body)
        try:
            status = await self._poster.post(url, body, headers, deadline=self.timeout)
        except MaxgateError as exc:  # OutboundError ("no answer within 5 s", …), OutboundBlocked
            return f"{exc.__class__.__name__}: {exc}"[:500]
        if 200 <= status < 300:
            return None
        return f"HTTP {status}"

    async def _settle(
        self,
        instance_id: int,
        claimed: list[Row],
        delivered: list[int],
        failed: tuple[Any, str] | None,
    ) -> None:
        """Delete what was delivered, schedule a failed head again, release the rest."""
        now = time.time()
        retry = None
        if failed is not None:
            row, error = failed
            attempts = row.attempts + 1
            delay = self.retry_delay(attempts)
            log.warning(
                "webhook of instance %s, receipt %s failed (attempt %d, next in %g s): %s",
                instance_id, row.id, attempts, delay, error,
            )  # fmt: skip
            retry = (row.id, attempts, now + delay, error)
        done = set(delivered)
        if failed is not None:
            done.add(failed[0].id)
        rest = [row.id for row in claimed if row.id not in done]
        await rows.settle(self.db, delivered=delivered, failed=retry, released=rest)

    async def close(self) -> None:
        """Cancel deliveries in flight (their leases run out; they are sent again)."""
        await self._drains.close()
        await self._poster.close()
