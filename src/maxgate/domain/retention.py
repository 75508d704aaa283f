"""Retention: evicting the bytes of expired files, and checking stored blobs.

Eviction works in bounded batches: first the files' state changes to ``evicted`` in the
database, then a blob is deleted — only when no file still ``stored`` holds the same content,
and no upload deduplicated onto it a moment ago (``BlobStore.delete_unless_held``: its file row
may not be written yet). A blob kept for that reason is looked at again once the hold has
passed. Evicted is not gone: the metadata stays, and the bytes come back from the messenger on
demand.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import Any

from maxgate.blobs import BlobStore
from maxgate.blobs.store import HOLD_SECONDS
from maxgate.errors import BlobError, BlobNotFound
from maxgate.store import files as rows
from maxgate.store.database import Database


@dataclasses.dataclass(slots=True)
class SweepResult:
    """What one sweep did."""

    evicted_files: int = 0
    deleted_blobs: int = 0
    freed_bytes: int = 0
    temp_objects: int = 0


@dataclasses.dataclass(slots=True)
class VerifyResult:
    """What ``verify`` found: blobs checked, and the keys whose bytes are wrong or missing."""

    checked: int = 0
    mismatched: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)


class Retention:
    """Evicts expired bytes and verifies stored ones."""

    def __init__(
        self, db: Database, blobs: BlobStore, *, hold_seconds: float = HOLD_SECONDS
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.hold_seconds = hold_seconds
        self._held: dict[str, float] = {}  # sha256 -> when a hold kept its blob

    async def sweep(self, *, batch: int = 500, now: float | None = None) -> SweepResult:
        """Evict every expired stored file, ``batch`` at a time; then look again at blobs a
        hold kept earlier, once their hold has passed."""
        result = SweepResult()
        while True:
            evicted, hashes = await self._evict_batch(batch, time.time() if now is None else now)
            result.evicted_files += evicted
            for sha256 in hashes:
                self._count(result, await self._drop_if_unheld(sha256))
            if evicted < batch:
                break
        due = time.time() - self.hold_seconds
        for sha256 in [sha for sha, kept in self._held.items() if kept <= due]:
            self._count(result, await self._drop_if_unheld(sha256))
        return result

    @staticmethod
    def _count(result: SweepResult, freed: int | None) -> None:
        if freed is not None:
            result.deleted_blobs += 1
            result.freed_bytes += freed

    async def _evict_batch(self, batch: int, now: float) -> tuple[int, set[str]]:
        evicted = await rows.evict_expired(self.db, now, batch)
        return len(evicted), {r.sha256 for r in evicted if r.sha256}

    async def _drop_if_unheld(self, sha256: str) -> int | None:
        """Delete a blob no stored file holds any more; returns its size, or None if kept."""
        if await rows.is_held(self.db, sha256):
            self._held.pop(sha256, None)
            return None
        if not await self.blobs.delete_unless_held(sha256, hold_seconds=self.hold_seconds):
            self._held[sha256] = time.time()  # an upload is about to record a file holding it
            return None
        self._held.pop(sha256, None)
        # A file recorded meanwhile re-published the bytes (see BlobStore): its row is kept.
        return await rows.forget_blob(self.db, sha256)

    async def stats(self) -> list[dict[str, Any]]:
        """Files and bytes by instance and state."""
        return await rows.stats(self.db)

    async def verify(self) -> VerifyResult:
        """Re-hash every recorded blob; report wrong and missing ones."""
        result = VerifyResult()
        for sha256, key in await rows.blobs(self.db):
            result.checked += 1
            digest = hashlib.sha256()
            try:
                async for chunk in self.blobs.read(key):
                    digest.update(chunk)
            except BlobNotFound:
                result.missing.append(key)
                continue
            except BlobError:
                result.missing.append(key)
                continue
            if digest.hexdigest() != sha256:
                result.mismatched.append(key)
        return result
