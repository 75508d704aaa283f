"""Instances: creation, authentication, deletion and their GREEN-API settings.

Authentication runs on every API call, so ``Instances.authenticate`` keeps what it looked up for
``auth_cache_seconds`` (1 s by default) in this process: instance id → (instance, token hash).
Changes made through this ``Instances`` object (settings, state, deletion) drop the entry at
once; another process (a second worker, the CLI) sees them within that second.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from maxgate.domain import ids
from maxgate.domain.records import Instance
from maxgate.errors import StoreConflict
from maxgate.store import instances as rows
from maxgate.store.database import Database

YES_NO_SETTINGS = (
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
DEFAULT_SETTINGS: dict[str, Any] = {
    "webhookUrl": "",
    "webhookUrlToken": "",
    "delaySendMessagesMilliseconds": 500,
    "markIncomingMessagesReaded": "no",
    "markIncomingMessagesReadedOnReply": "no",
    # Decision (spec §4.1): a self-hosted gateway delivers every kind by default.
    "outgoingWebhook": "yes",
    "outgoingMessageWebhook": "yes",
    "outgoingAPIMessageWebhook": "yes",
    "incomingWebhook": "yes",
    "stateWebhook": "yes",
    # GREEN-API's v1 settings of the same names (v3 lists none): edits and removals notified.
    "editedMessageWebhook": "yes",
    "deletedMessageWebhook": "yes",
}
DELAY_RANGE = (500, 600000)
AUTH_CACHE_SECONDS = 1.0
AUTH_CACHE_SIZE = 10_000  # entries; expired ones are dropped when it fills up


def _row_to_instance(row: Any) -> Instance:
    return Instance(
        id=row.id,
        name=row.name,
        chat_id=row.chat_id,
        phone=row.phone,
        state=row.state,
        settings={**DEFAULT_SETTINGS, **json.loads(row.settings)},
        created_at=row.created_at,
        deleted=row.deleted_at is not None,
        upstream=row.upstream,
    )


class Instances:
    """Creates, finds, authenticates and deletes instances."""

    def __init__(
        self,
        db: Database,
        *,
        auth_cache_seconds: float = AUTH_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        default_upstream: str = "sandbox",
    ) -> None:
        self.db = db
        self.default_upstream = default_upstream  # the kind of an instance created without one
        self.auth_cache_seconds = auth_cache_seconds
        self._clock = clock
        # instance id -> (valid until, the instance, its token hash)
        self._auth_cache: dict[int, tuple[float, Instance, str]] = {}

    async def create(
        self,
        *,
        name: str = "",
        settings: dict[str, Any] | None = None,
        upstream: str | None = None,
    ) -> tuple[Instance, str]:
        """Create an instance; returns it with its token (shown once, stored only hashed).

        ``upstream`` is the kind of messenger behind it (``default_upstream`` when None); the
        caller checks that the server has that kind (``Upstreams.require_kind``).
        """
        token = ids.new_instance_token()
        for _attempt in range(20):
            instance_id = max(await rows.top_id(self.db) + 1, ids.FIRST_INSTANCE_ID)
            row = {
                "id": instance_id,
                "name": name,
                "token_hash": ids.token_hash(token),
                "chat_id": ids.sandbox_chat_id(instance_id),
                "phone": ids.sandbox_phone(instance_id),
                "state": "authorized",
                "settings": json.dumps({**DEFAULT_SETTINGS, **(settings or {})}),
                "upstream": upstream or self.default_upstream,
                "created_at": time.time(),
            }
            try:
                await rows.insert(self.db, row)
            except StoreConflict:
                continue  # another process took that id first
            instance = await self.get(instance_id)
            assert instance is not None
            return instance, token
        raise StoreConflict("could not allocate an instance id")

    async def get(self, instance_id: int) -> Instance | None:
        """The instance with that id (deleted ones included), or None."""
        row = await rows.by_id(self.db, instance_id)
        return _row_to_instance(row) if row else None

    async def authenticate(self, instance_id: int, token: str) -> tuple[Instance | None, bool]:
        """Find an instance and check its token in constant time: (instance, token_ok).

        The lookup is cached for ``auth_cache_seconds`` (see the module's docstring).
        """
        now = self._clock()
        cached = self._auth_cache.get(instance_id)
        if cached is not None and cached[0] > now:
            _, instance, stored_hash = cached
            return instance, ids.token_matches(token, stored_hash)
        row = await rows.by_id(self.db, instance_id)
        if row is None:
            ids.token_matches(token, "0" * 64)  # same work for unknown ids
            return None, False
        instance = _row_to_instance(row)
        if self.auth_cache_seconds > 0:
            if len(self._auth_cache) >= AUTH_CACHE_SIZE:
                self._prune(now)
            self._auth_cache[instance_id] = (
                now + self.auth_cache_seconds,
                instance,
                row.token_hash,
            )
        return instance, ids.token_matches(token, row.token_hash)

    def forget(self, instance_id: int) -> None:
        """Drop an instance from the authentication cache (after changing it)."""
        self._auth_cache.pop(instance_id, None)

    def _prune(self, now: float) -> None:
        expired = [key for key, (until, _, _) in self._auth_cache.items() if until <= now]
        for key in expired:
            del self._auth_cache[key]
        if len(self._auth_cache) >= AUTH_CACHE_SIZE:
            self._auth_cache.clear()

    async def by_chat_id(self, chat_id: str) -> Instance | None:
        """The live instance a sandbox chatId belongs to, or None."""
        row = await rows.live_by_chat_id(self.db, chat_id)
        return _row_to_instance(row) if row else None

    async def by_phone(self, phone: int) -> Instance | None:
        """The live instance with that phone number, or None."""
        row = await rows.live_by_phone(self.db, phone)
        return _row_to_instance(row) if row else None

    async def list(self, *, include_deleted: bool = False) -> list[Instance]:
        """All instances, oldest first."""
        found = await rows.all_rows(self.db, include_deleted=include_deleted)
        return [_row_to_instance(r) for r in found]

    async def delete(self, instance_id: int) -> bool:
        """Mark an instance deleted; False if there is no such live instance."""
        deleted = await rows.mark_deleted(self.db, instance_id, time.time())
        self.forget(instance_id)
        return deleted

    async def update_settings(self, instance_id: int, changes: dict[str, Any]) -> Instance:
        """Merge validated settings into an instance's settings; applies at once."""
        async with self.db.write() as conn:
            merged = {**json.loads(await rows.settings_of(conn, instance_id)), **changes}
            await rows.set_settings(conn, instance_id, json.dumps(merged))
        self.forget(instance_id)
        instance = await self.get(instance_id)
        assert instance is not None
        return instance

    async def set_state(self, instance_id: int, state: str) -> None:
        """Record the messenger connection state of an instance."""
        async with self.db.write() as conn:
            await rows.set_state(conn, instance_id, state)
        self.forget(instance_id)
