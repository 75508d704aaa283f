"""Where a blob writer's bytes go while they stream in, and where their sha256 is computed.

``FileSink`` (local stores) creates the temporary file and appends to it with ``os.writev`` in a
worker thread, and hashes there too: hashlib and ``write`` release the GIL, so the event loop
keeps receiving the next bytes meanwhile, and there is no copy into an intermediate buffer.
Small writes are gathered into batches of ``BATCH_SIZE`` first, so each thread hop carries a
useful amount of work (a file smaller than that is created, written, hashed and flushed in one
hop, at ``close``). Write-back to disk is started every ``WRITEBACK_SIZE`` bytes
(``sync_file_range`` on Linux), so the ``fsync`` before a commit has little left to wait for.

``ObjectSink`` (S3) streams through obstore's multipart writer; the hash is computed on the
loop, as the bytes are handed over.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import obstore

from maxgate.errors import BlobError

if TYPE_CHECKING:
    from obstore import AsyncWritableFile
    from obstore.store import LocalStore, S3Store

BATCH_SIZE = 256 * 1024  # bytes gathered before a thread hop (see the module docs)
WRITEBACK_SIZE = 8 * 1024 * 1024  # start write-back to disk every this many bytes
PART_SIZE = 5 * 1024 * 1024  # obstore writer buffer = S3 part size (S3's minimum)
PART_CONCURRENCY = 2  # parts in flight: a writer holds about (1 + 2) * PART_SIZE bytes at most


class Sink(Protocol):
    """The write side of one temporary object."""

    async def write(self, data: bytes) -> None:
        """Append ``data`` (and hash it)."""

    async def close(self) -> str:
        """Flush everything (durably, for local files that asked for it); the hex sha256."""

    async def abort(self) -> None:
        """Stop writing; leaves no upload in progress (the temporary object is the caller's)."""


class ObjectSink:
    """Streams into an object through obstore's writer (multipart upload on S3)."""

    def __init__(self, store: LocalStore | S3Store, key: str) -> None:
        self._file: AsyncWritableFile = obstore.open_writer_async(
            store, key, buffer_size=PART_SIZE, max_concurrency=PART_CONCURRENCY
        )
        self._hash = hashlib.sha256()

    async def write(self, data: bytes) -> None:
        """Hand ``data`` to the writer, then hash it."""
        await self._file.write(data)
        self._hash.update(data)

    async def close(self) -> str:
        """Complete the upload."""
        await self._file.close()
        return self._hash.hexdigest()

    async def abort(self) -> None:
        """Abort the upload (an S3 multipart upload, or obstore's local staging file)."""
        # Leaving obstore's writer context with an exception is its (only) abort call.
        with contextlib.suppress(Exception):
            await self._file.__aexit__(BlobError, BlobError("aborted"), None)


class FileSink:
    """Appends to a local file from a worker thread, hashing there (see the module docs)."""

    def __init__(self, path: str, *, fsync: bool) -> None:
        self.path = path
        self._fsync = fsync
        self._fd: int | None = None
        self._hash = hashlib.sha256()
        self._batch: list[bytes] = []
        self._batched = 0
        self._written = 0
        self._writeback_from = 0
        self._pending: asyncio.Future[None] | None = None

    async def write(self, data: bytes) -> None:
        """Queue ``data``; every ``BATCH_SIZE`` bytes the batch goes to the worker thread,
        after the previous batch is on disk (one batch in flight, so memory stays bounded)."""
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= BATCH_SIZE:
            await self._settle()
            self._pending = self._run(self._append, self._take())

    async def close(self) -> str:
        """Write what is left, fsync (when asked) and close the file."""
        await self._settle()
        self._pending = self._run(self._finish, self._take())
        await self._settle()
        return self._hash.hexdigest()

    async def abort(self) -> None:
        """Wait for the worker thread to leave the file, then close it."""
        pending, self._pending = self._pending, None
        if pending is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)
        self._batch = []
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _take(self) -> list[bytes]:
        batch, self._batch, self._batched = self._batch, [], 0
        return batch

    def _run(self, work: Callable[[list[bytes]], None], batch: list[bytes]) -> asyncio.Future[None]:
        return asyncio.get_running_loop().run_in_executor(None, work, batch)

    async def _settle(self) -> None:
        """Wait for the batch in flight; a cancelled caller leaves it running (abort waits)."""
        if self._pending is not None:
            await asyncio.shield(self._pending)
            self._pending = None

    # --- in the worker thread ---

    def _append(self, batch: list[bytes]) -> None:
        # The file is created here, in the thread: creating an inode can take milliseconds on
        # a busy file system, which the event loop would spend waiting (P7's profile).
        fd = self._fd if self._fd is not None else self._open()
        for chunk in batch:
            self._hash.update(chunk)
        _write_all(fd, batch)
        self._written += sum(map(len, batch))
        if self._fsync and self._written - self._writeback_from >= WRITEBACK_SIZE:
            _start_writeback(fd, self._writeback_from, self._written - self._writeback_from)
            self._writeback_from = self._written

    def _finish(self, batch: list[bytes]) -> None:
        self._append(batch)
        fd, self._fd = self._fd, None
        assert fd is not None
        try:
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o644)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fd = os.open(self.path, flags, 0o644)
        self._fd = fd
        return fd


def _write_all(fd: int, batch: list[bytes]) -> None:
    """``writev`` every byte of ``batch`` (a write may be partial)."""
    views = [memoryview(chunk) for chunk in batch if chunk]
    while views:
        written = os.writev(fd, views[:1024])  # IOV_MAX
        while written and views:
            if written >= len(views[0]):
                written -= len(views.pop(0))
            else:
                views[0] = views[0][written:]
                written = 0


def _load_sync_file_range() -> Callable[[int, int, int], None] | None:
    """``sync_file_range(fd, offset, n, SYNC_FILE_RANGE_WRITE)`` from libc (Linux only; the
    ``os`` module has no binding for it), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    write = 2  # SYNC_FILE_RANGE_WRITE: start write-back of dirty pages, do not wait

    def start(fd: int, offset: int, count: int) -> None:
        function(fd, offset, count, write)  # best effort: an error only means no head start

    return start


_SYNC_FILE_RANGE = _load_sync_file_range()


def _start_writeback(fd: int, offset: int, count: int) -> None:
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, offset, count)
