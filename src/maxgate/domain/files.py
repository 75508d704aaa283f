"""Files: their rows, their bytes in the blob store, and bringing absent bytes back.

A file is ``remote`` (only the messenger has it), ``stored`` (our blob store has it until
``expires_at``) or ``evicted`` (retention passed; the messenger may still have it). Whatever the
state, ``materialize`` makes the bytes present again, with one upstream fetch per file however
many callers ask at once.

Eager mirroring (``mirror_pending``) fetches up to ``mirror_concurrency`` files at once: one
file's round trips (the messenger's answer, the fsync before its blob commits, the row update)
overlap the others' transfers. The rows of files fetched meanwhile are recorded together, one
write transaction for all that finished while the previous one was committing. A file counts as
mirrored only once its row says ``stored``; until then it stays ``remote`` and is fetched again
by a later pass (or on demand), so a crash loses nothing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import logging
import os
import stat
import time
from collections.abc import AsyncIterator
from typing import Any

from maxgate.blobs import BlobStore, StoredBlob, blob_key
from maxgate.domain import ids, thumbnails
from maxgate.domain.messenger import InboundFile, Upstream
from maxgate.domain.records import FileRecord
from maxgate.errors import BlobError, MaxgateError, SizeLimitExceeded, UpstreamError
from maxgate.net.deadlines import TransferDeadline, paced
from maxgate.store import files as rows
from maxgate.store.database import Database, Row, Transaction

log = logging.getLogger(__name__)

DEFAULT_MIRROR_CONCURRENCY = 4
MAX_RETRY_DELAY = 86400.0  # a file the messenger will not deliver is tried at least daily


def row_to_file(row: Row, prefix: str = "") -> FileRecord:
    """Build a FileRecord from a row (columns optionally prefixed, as in a join)."""
    m = row._mapping
    return FileRecord(
        id=m[prefix + "id"],
        instance_id=m[prefix + "instance_id"],
        state=m[prefix + "state"],
        sha256=m[prefix + "sha256"],
        size=m[prefix + "size"],
        file_name=m[prefix + "file_name"],
        mime_type=m[prefix + "mime_type"],
        upstream_ref=m[prefix + "upstream_ref"],
        thumbnail=m[prefix + "thumbnail"],
        created_at=m[prefix + "created_at"],
        stored_at=m[prefix + "stored_at"],
        expires_at=m[prefix + "expires_at"],
    )


def row_to_file_values(values: dict[str, Any]) -> FileRecord:
    """Build a FileRecord from the column values just inserted."""
    return FileRecord(**values)


def _is_file(path: str) -> bool:
    """A local stat, on the loop: microseconds, where a blob store round trip is not."""
    return os.path.isfile(path)


class Files:
    """The file lifecycle: rows, blobs, and materialising absent bytes from the upstream."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        upstream: Upstream,
        *,
        retention: float,
        max_size: int,
        fetch_timeout: float = 120.0,
        mirror_concurrency: int = DEFAULT_MIRROR_CONCURRENCY,
    ) -> None:
        if mirror_concurrency < 1:
            raise ValueError(f"mirror_concurrency must be at least 1, got {mirror_concurrency}")
        self.db = db
        self.blobs = blobs
        self.upstream = upstream
        self.retention = retention
        self.max_size = max_size
        self.fetch_timeout = fetch_timeout
        self.mirror_concurrency = mirror_concurrency
        self._inflight: dict[str, asyncio.Task[FileRecord]] = {}
        self._arrived = asyncio.Event()  # a remote file was journaled since the last look
        self._fetched: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def thumbnail_for(self, blob: StoredBlob, mime_type: str) -> str:
        """The ``jpegThumbnail`` of an image blob (``""`` for other kinds), computed once."""
        if not mime_type.startswith("image/") or mime_type == "image/svg+xml":
            return ""
        if blob.size > thumbnails.MAX_SOURCE_BYTES:
            return ""
        try:
            data = await self.blobs.read_all(blob.key)
        except BlobError:
            return ""
        return await asyncio.to_thread(thumbnails.thumbnail, data)

    def stored_row(
        self,
        instance_id: int,
        blob: StoredBlob,
        file_name: str,
        mime_type: str,
        thumbnail: str = "",
    ) -> dict[str, Any]:
        """Column values of a new file whose bytes we already hold."""
        now = time.time()
        return {
            "thumbnail": thumbnail,
            "id": ids.new_file_id(),
            "instance_id": instance_id,
            "state": "stored",
            "sha256": blob.sha256,
            "size": blob.size,
            "file_name": file_name,
            "mime_type": mime_type,
            "upstream_ref": None,
            "created_at": now,
            "stored_at": now,
            "expires_at": now + self.retention,
        }

    def remote_row(self, instance_id: int, inbound: InboundFile) -> dict[str, Any]:
        """Column values of a new file that only the messenger holds so far."""
        now = time.time()
        return {
            "id": ids.new_file_id(),
            "instance_id": instance_id,
            "thumbnail": "",
            "state": "remote",
            "sha256": None,
            "size": inbound.size,
            "file_name": inbound.file_name,
            "mime_type": inbound.mime_type,
            "upstream_ref": inbound.ref,
            "created_at": now,
            "stored_at": None,
            "expires_at": now + self.retention,
        }

    def key(self, sha256: str) -> str:
        """The blob store key of some content."""
        return blob_key(sha256)

    async def create_stored(
        self, instance_id: int, blob: StoredBlob, file_name: str, mime_type: str
    ) -> FileRecord:
        """A file that belongs to no message yet (uploadFile), its bytes already stored."""
        thumbnail = await self.thumbnail_for(blob, mime_type)
        row = self.stored_row(instance_id, blob, file_name, mime_type, thumbnail)
        async with self.db.write() as conn:
            await self.record_blob(conn, blob)
            await rows.insert(conn, row)
        return row_to_file_values(row)

    async def record_blob(self, conn: Transaction, blob: StoredBlob) -> None:
        """Remember a committed blob in the open transaction ``conn`` (idempotent)."""
        await rows.record_blob(conn, blob.sha256, blob.size, blob.key, time.time())

    async def get(self, file_id: str) -> FileRecord | None:
        """The file with that id, or None."""
        row = await rows.by_id(self.db, file_id)
        return row_to_file(row) if row else None

    async def open(
        self, file: FileRecord, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream a stored file's bytes (materialise it first if needed)."""
        present = await self.materialize(file)
        assert present.sha256 is not None
        return self.blobs.read(blob_key(present.sha256), start=start, end=end)

    async def materialize(self, file: FileRecord, *, fresh: bool = False) -> FileRecord:
        """Make a file's bytes present in the blob store; one upstream fetch per file at once.

        The fetch runs in its own task, so a caller that gives up (a client hanging up) does
        not fail the others waiting for the same file. ``fresh``: the caller read ``file`` from
        the store a moment ago (mirroring), so it is not read again. Raises ``UpstreamError``
        (``UpstreamFileGone`` when the messenger lost it) if the bytes are neither here nor
        obtainable in time.
        """
        if await self._present(file):
            return file
        task = self._inflight.get(file.id)
        if task is None:
            work = self._fetch(file) if fresh else self._refresh_and_fetch(file.id)
            task = asyncio.get_running_loop().create_task(work)
            self._inflight[file.id] = task
            task.add_done_callback(lambda _t: self._inflight.pop(file.id, None))
        # Waiting is bounded like the fetch itself (plus its commit); not wait_for: see Outbox.run
        deadline = TransferDeadline(self.fetch_timeout * 2, size=file.size or 0)
        async with asyncio.timeout(deadline.allowed):
            return await asyncio.shield(task)

    async def close(self) -> None:
        """Cancel fetches still in flight (before the store and blob connections close)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, MaxgateError):
                await task
        if self._committer is not None:  # rows of bytes already committed: record them
            with contextlib.suppress(asyncio.CancelledError, MaxgateError):
                await self._committer

    def local_stat(self, file: FileRecord) -> tuple[str, os.stat_result] | None:
        """The local blob file of a stored file and its ``stat``, or None (not stored, not on a
        local store, or the file is gone): the link route's check, without a second stat."""
        if file.state != "stored" or not file.sha256:
            return None
        path = self.blobs.local_file(blob_key(file.sha256))
        if path is None:
            return None
        try:
            found = os.stat(path)
        except FileNotFoundError:
            return None
        return (path, found) if stat.S_ISREG(found.st_mode) else None

    async def _present(self, file: FileRecord) -> bool:
        if file.state != "stored" or not file.sha256:
            return False
        key = blob_key(file.sha256)
        path = self.blobs.local_file(key)
        if path is not None:
            return _is_file(path)
        return await self.blobs.exists(key)

    async def _refresh_and_fetch(self, file_id: str) -> FileRecord:
        # The caller's record may be stale (another process, or a fetch that just finished).
        fresh = await self.get(file_id)
        if fresh is None:
            raise UpstreamError("the file no longer exists")
        if await self._present(fresh):
            return fresh
        return await self._fetch(fresh)

    async def _fetch(self, file: FileRecord) -> FileRecord:
        if file.upstream_ref is None and file.sha256 is None:
            raise UpstreamError("the file has neither bytes here nor a messenger reference")
        # fetch_timeout bounds each wait for bytes; the whole fetch gets that plus one second
        # per MIN_RATE bytes of the file (maxgate.net.deadlines), so large files can finish.
        deadline = TransferDeadline(self.fetch_timeout, size=file.size)
        chunks = paced(
            self.upstream.fetch_file(file.instance_id, file),
            idle=self.fetch_timeout,
            deadline=deadline,
        )
        try:
            blob = await self.blobs.write(chunks, limit=self.max_size)
        except TimeoutError as exc:
            raise UpstreamError("the messenger did not deliver the file in time") from exc
        except SizeLimitExceeded as exc:
            raise UpstreamError(f"the messenger's file is larger than {exc.limit} bytes") from exc
        except BlobError as exc:
            raise UpstreamError(f"the file could not be stored: {exc}") from exc
        now = time.time()
        thumbnail = file.thumbnail or await self.thumbnail_for(blob, file.mime_type)
        expires_at = max(file.expires_at, now + self.retention)
        await self._record_fetched(
            {
                "id": file.id,
                "sha256": blob.sha256,
                "size": blob.size,
                "key": blob.key,
                "stored_at": now,
                "expires_at": expires_at,
                "thumbnail": thumbnail,
            }
        )
        return dataclasses.replace(
            file,
            state="stored",
            sha256=blob.sha256,
            size=blob.size,
            stored_at=now,
            expires_at=expires_at,
            thumbnail=thumbnail,
        )

    async def _record_fetched(self, values: dict[str, Any]) -> None:
        """Turn a fetched file's row ``stored`` (and record its blob); returns once committed.

        Rows handed in while a commit runs go together in the next one (a group commit), so
        files fetched at once do not each wait for the writer in turn."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)  # a caller that gave up leaves no unread error
        self._fetched.append((values, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.get_running_loop().create_task(self._commit_fetched())
        await asyncio.shield(future)

    async def _commit_fetched(self) -> None:
        while self._fetched:
            batch, self._fetched = self._fetched, []
            work = functools.partial(rows.record_mirrored_sync, fetched=[v for v, _ in batch])
            try:
                await self.db.transact(work)
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:  # StoreError: each fetch fails, its file stays remote
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    def remote_arrived(self) -> None:
        """A file only the messenger holds was journaled (``Journal.on_remote_file``): a
        mirroring pass in progress looks for it, a waiting one starts."""
        self._arrived.set()

    async def wait_for_remote(self, at_most: float) -> None:
        """Wait until ``remote_arrived`` is called, at most ``at_most`` seconds."""
        with contextlib.suppress(TimeoutError):  # asyncio.timeout: see Outbox.run
            async with asyncio.timeout(at_most):
                await self._arrived.wait()

    async def mirror_pending(self, *, batch: int = 20) -> int:
        """Eager mirroring: fetch the bytes of up to ``batch`` files only the messenger holds,
        ``mirror_concurrency`` at a time, taking files that arrive meanwhile as slots free up.

        Returns how many were stored. A file that fails is retried later with a growing delay
        (one minute, doubling, at most a day), so lost files never starve newer ones and never
        hold up the others in flight; it can still be materialised on demand at any time. Any
        other error (the store failing) stops the pass once the fetches in flight are done, and
        is raised; the files not recorded stay ``remote`` for the next pass.
        """
        queue: collections.deque[Row] = collections.deque()
        seen: set[str] = set()  # taken in this pass: failed ones may still be due
        running: set[asyncio.Task[bool]] = set()
        arrival: asyncio.Task[bool] | None = None
        failure: BaseException | None = None
        stored = 0
        look = True
        try:
            while True:
                taking = failure is None and len(seen) < batch
                if taking and look and not queue:
                    self._arrived.clear()
                    wanted = batch - len(seen)
                    found = await rows.remote_due(self.db, time.time(), wanted + len(running))
                    queue.extend([r for r in found if r.id not in seen][:wanted])
                    look = len(found) >= wanted + len(running)  # full: more may be waiting
                while taking and queue and len(running) < self.mirror_concurrency:
                    row = queue.popleft()
                    seen.add(row.id)
                    running.add(asyncio.create_task(self._mirror_one(row)))
                    taking = len(seen) < batch
                if not running:
                    break
                waits: set[asyncio.Future[bool]] = set(running)
                if taking and not queue and len(running) < self.mirror_concurrency:
                    if arrival is None:
                        arrival = asyncio.create_task(self._arrived.wait())
                    waits.add(arrival)
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if arrival is not None and arrival in done:
                    arrival, look = None, True
                for task in done & running:
                    running.discard(task)
                    try:
                        stored += task.result()
                    except Exception as exc:
                        failure = failure or exc
        finally:  # cancelled (the runtime closing): the shielded fetches finish or close()
            left = {*running, *([arrival] if arrival is not None else [])}
            for task in left:
                task.cancel()
            if left:  # asyncio.wait: a cancellation of this pass itself is not swallowed
                await asyncio.wait(left)
                for task in left:
                    if not task.cancelled():
                        task.exception()
        if failure is not None:
            raise failure
        return stored

    async def _mirror_one(self, row: Row) -> bool:
        """Fetch one remote file for mirroring; False (and a later retry) when it failed."""
        try:
            await self.materialize(row_to_file(row), fresh=True)
        except (UpstreamError, TimeoutError) as exc:
            delay = min(MAX_RETRY_DELAY, 60.0 * 2.0**row.fetch_attempts)
            log.info("mirroring file %s failed (next try in %g s): %s", row.id, delay, exc)
            await rows.set_retry(self.db, row.id, row.fetch_attempts + 1, time.time() + delay)
            return False
        return True


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
