"""Content-addressed blob storage over obstore: a local directory or an S3-compatible bucket.

Bytes stream into a temporary object under ``tmp/`` while their sha256 and size are computed;
``commit()`` then moves them to ``blobs/ab/cd/<sha256>``. A ``blobs/`` key therefore only ever
names complete bytes: a crash leaves at most a temporary object, which ``sweep_temp`` removes.

Deduplication and eviction meet in one place. A commit whose content is stored already drops
its own copy, and its caller records a file holding that content a moment later; meanwhile
retention may find no file holding it and delete it. So such a commit first *holds* the content
(``tmp/hold-<sha256>``, its time refreshed), then checks the blob is still there, and only then
drops its copy; ``delete_unless_held`` deletes a blob only if it has no hold younger than
``HOLD_SECONDS``. On a local store both steps run under one file lock (``evict.lock``: shared
for commits, exclusive for deletions), so either the deleter sees the hold, or the committer
sees the blob gone and publishes its own copy. S3 has no lock and no rename: the deleter copies
the blob aside, deletes it, looks for a hold and copies it back if there is one.

Over 500 lines for one reason: the commit/hold/delete protocol above must be read as a whole
(its two backends, local disk with a lock and S3 without, side by side); split, a reader would
check a rule in one module against its other half in another.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import pathlib
import re
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Self, cast
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import obstore
from obstore.exceptions import BaseError as _ObstoreBaseError
from obstore.store import LocalStore, S3Store

from maxgate.blobs.sinks import PART_CONCURRENCY, PART_SIZE, FileSink, ObjectSink, Sink
from maxgate.errors import BlobError, BlobNotFound, BlobStoreFull, ConfigError, SizeLimitExceeded
from maxgate.space import FullMark, full_errno, is_full, low_on_space

if TYPE_CHECKING:
    from obstore import GetOptions
    from obstore.store import ClientConfig, S3Config

MAX_COPY_SIZE = 5 * 1024**3  # S3 CopyObject's limit; larger temp objects are re-streamed
CHECK_SECONDS = 10.0  # BlobStore.check's deadline (obstore retries for minutes otherwise)
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # the longest validity SigV4 allows
HOLD_SECONDS = 600.0  # how long a deduplicating commit keeps its content from eviction
_EVICT_LOCK = "evict.lock"  # a local store's lock between commits and deletions (module docs)
MAX_SAFE_DIRS = 70_000  # local_path's checked directories (blobs/ab/cd: 65,536 at most)

_OBSTORE_ERRORS = (_ObstoreBaseError, OSError, ValueError)
_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"
_KEY_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_SECRETS = {"access_key_id", "secret_access_key", "session_token"}
_S3_CONFIG = {"endpoint", "region", *_SECRETS}
_S3_FLAGS = {"virtual_hosted_style_request", "skip_signature", "unsigned_payload"}
_CLIENT_CONFIG = {"timeout", "connect_timeout"}
_CLIENT_FLAGS = {"allow_http", "allow_invalid_certificates"}


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A committed blob: its content hash, its size and the storage key derived from the hash."""

    sha256: str
    size: int
    key: str


def blob_key(sha256: str) -> str:
    """Return the storage key of the blob with this hex sha256: ``blobs/ab/cd/<sha256>``."""
    if not _SHA256_RE.fullmatch(sha256):
        raise ValueError(f"sha256 must be 64 lowercase hex digits, got {sha256!r}")
    return f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class BlobWriter:
    """A streaming write in progress.

    Bytes go to a temporary object (``temp_key``); sha256 and size are computed while
    streaming; nothing is visible under a content key until ``commit()``. Use it as
    ``async with store.writer() as w:`` — leaving the block without ``commit()`` (normally or
    by an exception) aborts; it never commits on its own.
    """

    temp_key: str
    """The key of the temporary object the bytes are streamed into."""

    def __init__(self, store: BlobStore, *, limit: int | None = None) -> None:
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be None or >= 0, got {limit}")
        self._store = store
        self._limit = limit
        self.temp_key = f"tmp/{uuid.uuid4().hex}"
        self._sink: Sink | None = store._open_sink(self.temp_key)
        self._size = 0
        self._lock = asyncio.Lock()
        self._interrupted = False  # a write() did not finish: the temp object's bytes are unknown
        self._finishing: asyncio.Task[StoredBlob] | None = None

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    async def write(self, data: bytes) -> None:
        """Append ``data``; past the limit, abort (dropping the temp object) and raise
        ``SizeLimitExceeded``."""
        async with self._lock:
            if self._sink is None or self._finishing is not None or self._interrupted:
                raise BlobError(
                    "write() on a blob writer that was committed, aborted or interrupted"
                )
            size = self._size + len(data)
            if self._limit is not None and size > self._limit:
                await self._discard()
                raise SizeLimitExceeded(size, self._limit)
            if not data:
                return
            self._interrupted = True
            try:
                await self._sink.write(data)
            except _OBSTORE_ERRORS as exc:
                await self._discard()
                raise self._store._failed(exc, f"writing {self.temp_key}") from exc
            self._size = size
            self._interrupted = False

    async def commit(self) -> StoredBlob:
        """Finish the upload and move it to its content key; when that key already exists
        (same bytes stored before), drop the temp object instead. Calling it again returns the
        same result; it keeps running to the end even if the caller is cancelled."""
        async with self._lock:
            if self._finishing is None:
                if self._sink is None or self._interrupted:
                    await self._discard()
                    raise BlobError("commit() on a blob writer that was aborted or interrupted")
                self._finishing = asyncio.create_task(self._finish(self._sink))
                self._sink = None
            task = self._finishing
        return await asyncio.shield(task)

    async def abort(self) -> None:
        """Drop the temp object. Safe to call twice, and a no-op after ``commit()``."""
        async with self._lock:
            if self._finishing is not None:
                # A commit owns the temp object now; wait for it so that nothing outlives us.
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._finishing)
                return
            await self._discard()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.abort()

    async def _finish(self, sink: Sink) -> StoredBlob:
        try:
            try:
                sha256 = await sink.close()
                blob = StoredBlob(sha256, self._size, blob_key(sha256))
                await self._store._publish(self.temp_key, blob)
            except _OBSTORE_ERRORS as exc:
                raise self._store._failed(exc, f"committing {self.temp_key}") from exc
        except BaseException:
            await self._store._drop_temp(sink, self.temp_key)
            raise
        self._store._full.clear()
        return blob

    async def _discard(self) -> None:
        sink, self._sink = self._sink, None
        await asyncio.shield(self._store._drop_temp(sink, self.temp_key))


class BlobStore:
    """Content-addressed blob storage on a local directory or an S3-compatible bucket.

    ``url`` is ``file:///abs/path`` (the directory is created; add ``?fsync=false`` to skip
    flushing to disk before a commit) or ``s3://bucket/optional/prefix?endpoint=…&region=…
    &allow_http=true``. S3 credentials come from the standard ``AWS_*`` environment variables
    or the ``access_key_id`` / ``secret_access_key`` / ``session_token`` query parameters;
    other parameters: ``virtual_hosted_style_request``, ``skip_signature``,
    ``unsigned_payload``, ``allow_invalid_certificates``, ``timeout`` (default 1h, it bounds a
    whole streaming read) and ``connect_timeout``. Secrets never appear in the repr.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        try:
            params = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True))
        except ValueError as exc:
            raise ConfigError(f"blob store URL has a malformed query: {exc}") from exc
        shown = "&".join(
            f"{k}={'***' if k in _SECRETS else quote(v, safe=':/')}" for k, v in params.items()
        )
        self._shown_url = parts._replace(query=shown).geturl()
        self._root: pathlib.Path | None = None
        self._root_name: str | None = None
        self._safe_dirs: set[str] = set()  # directories under the root known to stay inside
        self._fsync = False
        self._full = FullMark()  # found full in a way free space does not show (maxgate.space)
        self._store: LocalStore | S3Store
        if parts.scheme == "file":
            self._store = self._open_local(parts.netloc, unquote(parts.path), params)
        elif parts.scheme == "s3":
            self._store = self._open_s3(parts.netloc, unquote(parts.path), params)
        else:
            raise ConfigError(
                f"blob store URL must start with file:// or s3://, got {self._shown_url!r}"
            )

    def _open_local(self, host: str, path: str, params: dict[str, str]) -> LocalStore:
        """Open a LocalStore rooted at ``path`` (created if missing)."""
        if host not in ("", "localhost") or not path.startswith("/"):
            raise ConfigError(f"blob store URL must be file:///abs/path, got {self._shown_url}")
        _check_params(params, {"fsync"})
        self._fsync = _flag("fsync", params.get("fsync", "true"))
        root = pathlib.Path(path)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the blob store directory {root}: {exc}") from exc
        self._root = root.resolve()
        self._root_name = str(self._root)
        return LocalStore(self._root)

    def _open_s3(self, bucket: str, path: str, params: dict[str, str]) -> S3Store:
        """Open an S3Store; unset options come from the ``AWS_*`` environment variables."""
        if not bucket:
            raise ConfigError(f"blob store URL must be s3://bucket/…, got {self._shown_url}")
        _check_params(params, _S3_CONFIG | _S3_FLAGS | _CLIENT_CONFIG | _CLIENT_FLAGS)
        config: dict[str, str | bool] = {}
        # object_store's default 30 s bounds a whole request: it would cut long streaming reads.
        client: dict[str, str | bool] = {"timeout": "1h"}
        for name, value in params.items():
            target = config if name in _S3_CONFIG | _S3_FLAGS else client
            target[name] = _flag(name, value) if name in _S3_FLAGS | _CLIENT_FLAGS else value
        try:
            return S3Store(
                bucket,
                prefix=path.strip("/") or None,
                config=cast("S3Config", config),
                client_options=cast("ClientConfig", client),
            )
        except _OBSTORE_ERRORS as exc:
            raise ConfigError(f"bad blob store URL {self._shown_url}: {_first_line(exc)}") from exc

    def __repr__(self) -> str:
        return f"BlobStore({self._shown_url!r})"

    def writer(self, *, limit: int | None = None) -> BlobWriter:
        """Start a streaming write; ``limit`` caps its size in bytes (None: no cap)."""
        return BlobWriter(self, limit=limit)

    async def write(self, chunks: AsyncIterable[bytes], *, limit: int | None = None) -> StoredBlob:
        """Stream ``chunks`` into the store and commit them; raises ``SizeLimitExceeded``."""
        async with self.writer(limit=limit) as writer:
            async for chunk in chunks:
                await writer.write(chunk)
            return await writer.commit()

    async def read(
        self, key: str, *, start: int = 0, end: int | None = None, chunk_size: int = 256 * 1024
    ) -> AsyncIterator[bytes]:
        """Stream the bytes ``[start, end)`` of a blob, like slicing: a range past the end is
        cut short or empty. ``BlobNotFound`` is raised on the first iteration."""
        _check_key(key)
        if start < 0 or (end is not None and end < start) or chunk_size <= 0:
            raise ValueError(f"bad read range start={start} end={end} chunk_size={chunk_size}")
        if end == start:
            await self.size(key)
            return
        options: GetOptions = {}
        if end is not None:
            options["range"] = (start, end)
        elif start:
            options["range"] = {"offset": start}
        try:
            result = await obstore.get_async(self._store, key, options=options)
        except _OBSTORE_ERRORS as exc:
            # Both backends refuse a range starting at or past the end; slicing gives b"".
            if (
                "range" in options
                and not isinstance(exc, FileNotFoundError)
                and start >= await self.size(key)
            ):
                return
            raise _translate(exc, f"reading {key}") from exc
        try:
            async for chunk in result.stream(min_chunk_size=chunk_size):
                yield chunk
        except _OBSTORE_ERRORS as exc:
            raise _translate(exc, f"reading {key}") from exc

    async def read_all(self, key: str) -> bytes:
        """Return a whole blob in memory: for small blobs only (thumbnails, tests)."""
        _check_key(key)
        try:
            result = await obstore.get_async(self._store, key)
            return bytes(await result.bytes_async())
        except _OBSTORE_ERRORS as exc:
            raise _translate(exc, f"reading {key}") from exc

    async def exists(self, key: str) -> bool:
        """Tell whether a blob is stored under ``key``."""
        try:
            await self.size(key)
        except BlobNotFound:
            return False
        return True

    async def size(self, key: str) -> int:
        """Return the size of a blob in bytes; raises ``BlobNotFound``."""
        _check_key(key)
        try:
            return (await obstore.head_async(self._store, key))["size"]
        except _OBSTORE_ERRORS as exc:
            raise _translate(exc, f"looking up {key}") from exc

    async def delete(self, key: str) -> None:
        """Delete a blob; a missing key is not an error."""
        _check_key(key)
        try:
            await obstore.delete_async(self._store, key)
        except FileNotFoundError:
            pass
        except _OBSTORE_ERRORS as exc:
            raise _translate(exc, f"deleting {key}") from exc

    def local_path(self, key: str) -> pathlib.Path | None:
        """Return the file of a blob for zero-copy serving (local stores), None on S3.

        Raises ``ValueError`` for a key that is malformed or would resolve outside the root
        (through a symlink planted in the store)."""
        found = self.local_file(key)
        return None if found is None else pathlib.Path(found)

    def local_file(self, key: str) -> str | None:
        """``local_path`` as a string, for hot paths (no pathlib objects).

        A directory found inside the root is remembered, so the common case costs one
        ``lstat`` instead of resolving every component of the path on every request."""
        _check_key(key)
        if self._root_name is None:
            return None
        directory, _, name = f"{self._root_name}/{key}".rpartition("/")
        if directory not in self._safe_dirs:
            if not self._inside(directory):
                raise ValueError(f"blob key {key!r} resolves outside the store")
            if os.path.isdir(directory):  # a missing one is checked again once it exists
                if len(self._safe_dirs) >= MAX_SAFE_DIRS:
                    self._safe_dirs.clear()
                self._safe_dirs.add(directory)
        path = f"{directory}/{name}"
        if os.path.islink(path) and not self._inside(path):
            raise ValueError(f"blob key {key!r} resolves outside the store")
        return path

    def _inside(self, path: str) -> bool:
        assert self._root is not None
        return pathlib.Path(path).resolve().is_relative_to(self._root)

    async def presigned_url(
        self,
        key: str,
        *,
        expires_in: int,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        """Return a presigned GET URL valid for ``expires_in`` seconds, or None when the caller
        must serve the bytes itself: on a local store, and whenever ``filename`` or
        ``content_type`` is given, because S3's ``response-content-disposition`` /
        ``-content-type`` parameters must be signed and obstore 0.12's ``sign`` takes no extra
        query parameters (adding them after signing breaks SigV4)."""
        _check_key(key)
        if not 0 < expires_in <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_in must be 1..{MAX_PRESIGN_SECONDS} s, got {expires_in}")
        if not isinstance(self._store, S3Store) or filename is not None or content_type is not None:
            return None
        try:
            return await obstore.sign_async(self._store, "GET", key, timedelta(seconds=expires_in))
        except _OBSTORE_ERRORS as exc:
            raise _translate(exc, f"signing {key}", not_found=False) from exc

    async def sweep_temp(self, *, older_than_seconds: float) -> int:
        """Delete temporary objects (left by crashes) older than that; return how many.

        On S3 a crash in mid-upload leaves an incomplete multipart upload, which is not an
        object and cannot be listed through obstore: configure the bucket lifecycle rule
        ``AbortIncompleteMultipartUpload`` for those."""
        if older_than_seconds < 0:
            raise ValueError(f"older_than_seconds must be >= 0, got {older_than_seconds}")
        cutoff = time.time() - older_than_seconds
        if self._root is not None:
            # obstore's LocalStore hides in-progress uploads ("<key>#<n>" staging files) from
            # listings, so the directory is scanned directly.
            return await asyncio.to_thread(_sweep_dir, self._root / "tmp", cutoff)
        count = 0
        try:
            async for batch in obstore.list(self._store, "tmp", chunk_size=1000):
                stale = [m["path"] for m in batch if m["last_modified"].timestamp() < cutoff]
                if stale:
                    await obstore.delete_async(self._store, stale)
                    count += len(stale)
        except _OBSTORE_ERRORS as exc:
            raise _translate(exc, "sweeping tmp/", not_found=False) from exc
        return count

    async def check(self) -> None:
        """Check cheaply that the store is reachable and usable, within ``CHECK_SECONDS``
        (obstore would otherwise retry for minutes); raises ``BlobError``, and
        ``BlobStoreFull`` when a local store's filesystem has (almost) no room left now, or a
        write found the store full lately in a way that cannot be measured (``maxgate.space``).
        """
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                if self._root is not None:
                    if not await asyncio.to_thread(os.access, self._root, os.W_OK | os.X_OK):
                        raise BlobError(f"blob store directory {self._root} is not writable")
                    if low := await asyncio.to_thread(low_on_space, str(self._root)):
                        raise BlobStoreFull(f"blob store {self!r} is full: {low}")
                else:
                    await obstore.list_with_delimiter_async(self._store, "tmp")
        except TimeoutError as exc:
            raise BlobError(f"blob store {self!r} did not answer within {CHECK_SECONDS} s") from exc
        except _OBSTORE_ERRORS as exc:
            raise _translate(exc, f"checking {self!r}", not_found=False) from exc
        if self._full.recent:
            raise BlobStoreFull(f"blob store {self!r} was found full by a recent write")

    def _failed(self, exc: Exception, what: str) -> BlobError:
        """The error for a failed write; a full store that free space does not show (anything
        but ENOSPC on a local store: a quota, a full S3 backend) is remembered for ``check``."""
        error = _translate(exc, what, not_found=False)
        if isinstance(error, BlobStoreFull) and (
            self._root is None or full_errno(exc) != errno.ENOSPC
        ):
            self._full.set()
        return error

    def _open_sink(self, temp_key: str) -> Sink:
        """The write side of a new temporary object."""
        if self._root_name is not None:
            return FileSink(f"{self._root_name}/{temp_key}", fsync=self._fsync)
        return ObjectSink(self._store, temp_key)

    async def delete_unless_held(self, sha256: str, *, hold_seconds: float = HOLD_SECONDS) -> bool:
        """Delete the blob of ``sha256`` unless a commit deduplicated onto it in the last
        ``hold_seconds`` (see the module's docstring); True when it is gone (or was absent).

        On S3 the blob is copied aside first and copied back if held, so a reader may miss it
        for that moment; a local store deletes under a lock and never hides a kept blob."""
        key = blob_key(sha256)
        cutoff = time.time() - hold_seconds
        try:
            if self._root_name is not None:
                root = self._root_name
                return await asyncio.to_thread(
                    _delete_unless_held_file,
                    f"{root}/{key}",
                    hold=f"{root}/{_hold_key(sha256)}",
                    lock=f"{root}/{_EVICT_LOCK}",
                    cutoff=cutoff,
                )
            trash = f"tmp/trash-{uuid.uuid4().hex}"
            return await self._delete_unless_held_object(key, trash, _hold_key(sha256), cutoff)
        except _OBSTORE_ERRORS as exc:
            raise _translate(exc, f"deleting {key}", not_found=False) from exc

    async def _delete_unless_held_object(
        self, key: str, trash: str, hold: str, cutoff: float
    ) -> bool:
        try:
            await obstore.copy_async(self._store, key, trash)
        except FileNotFoundError:
            return True
        try:
            await obstore.delete_async(self._store, key)
            try:
                held = (await obstore.head_async(self._store, hold))["last_modified"]
            except FileNotFoundError:
                return True
            if held.timestamp() < cutoff:
                return True
            await obstore.copy_async(self._store, trash, key)
            return False
        finally:
            with contextlib.suppress(*_OBSTORE_ERRORS):
                await obstore.delete_async(self._store, trash)

    async def _publish(self, temp_key: str, blob: StoredBlob) -> None:
        """Move a finished temp object to its content key; if the key exists, hold it and drop
        the temp object (see the module's docstring)."""
        if self._root_name is not None:
            await asyncio.to_thread(
                _publish_file,
                f"{self._root_name}/{temp_key}",
                f"{self._root_name}/{blob.key}",
                hold=f"{self._root_name}/{_hold_key(blob.sha256)}",
                lock=f"{self._root_name}/{_EVICT_LOCK}",
                fsync=self._fsync,
            )
            return
        if await self.exists(blob.key):
            await obstore.put_async(self._store, _hold_key(blob.sha256), b"")
            if await self.exists(blob.key):
                await obstore.delete_async(self._store, temp_key)
                return
        if blob.size > MAX_COPY_SIZE:
            source = await obstore.get_async(self._store, temp_key)
            await obstore.put_async(
                self._store,
                blob.key,
                source.stream(min_chunk_size=PART_SIZE),
                chunk_size=PART_SIZE,
                max_concurrency=PART_CONCURRENCY,
            )
            await obstore.delete_async(self._store, temp_key)
        else:
            # Server-side copy, then delete; both copies of the same bytes are identical.
            await obstore.rename_async(self._store, temp_key, blob.key, overwrite=True)

    async def _drop_temp(self, sink: Sink | None, temp_key: str) -> None:
        """Best-effort removal of a temp object. An unfinished sink is aborted first, which
        aborts its S3 multipart upload or closes its local file."""
        if sink is not None:
            with contextlib.suppress(*_OBSTORE_ERRORS):
                await sink.abort()
        with contextlib.suppress(*_OBSTORE_ERRORS):
            if self._root_name is not None:
                await asyncio.to_thread(_unlink, f"{self._root_name}/{temp_key}")
            else:
                await obstore.delete_async(self._store, temp_key)


def _check_params(params: dict[str, str], known: set[str]) -> None:
    if unknown := sorted(params.keys() - known):
        raise ConfigError(f"unknown blob store URL parameters {unknown}; known: {sorted(known)}")


def _check_key(key: str) -> None:
    if not _KEY_RE.fullmatch(key):
        raise ValueError(f"malformed blob key {key!r}")


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"blob store URL parameter {name} must be true or false, got {value!r}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _translate(exc: Exception, what: str, *, not_found: bool = True) -> BlobError:
    if not_found and isinstance(exc, FileNotFoundError):
        return BlobNotFound(f"{what}: no such blob")
    if is_full(exc):
        return BlobStoreFull(f"{what} failed, the store is full: {_first_line(exc)}")
    return BlobError(f"{what} failed: {_first_line(exc)}")


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _hold_key(sha256: str) -> str:
    return f"tmp/hold-{sha256}"


def _publish_file(temp: str, final: str, *, hold: str, lock: str, fsync: bool) -> None:
    """Local commit, in one thread hop: when the content is stored already, hold it and drop
    the temp file (under the shared eviction lock); else rename the temp file into place
    (rename(2) replaces atomically, so a concurrent commit of the same bytes is harmless) and
    make the directory entry durable."""
    if os.path.exists(final):
        with _locked(lock, fcntl.LOCK_SH):
            os.close(os.open(hold, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
            os.utime(hold)  # an older hold is refreshed
            if os.path.exists(final):  # still there, and held now: ours is not needed
                os.unlink(temp)
                return
    directory = os.path.dirname(final)
    os.makedirs(directory, exist_ok=True)
    os.rename(temp, final)
    if fsync:
        _fsync(directory)


def _delete_unless_held_file(final: str, *, hold: str, lock: str, cutoff: float) -> bool:
    """Delete a local blob unless held since ``cutoff`` (under the exclusive eviction lock)."""
    with _locked(lock, fcntl.LOCK_EX):
        if not os.path.exists(final):
            return True
        try:
            if os.stat(hold).st_mtime >= cutoff:
                return False
        except FileNotFoundError:
            pass
        with contextlib.suppress(FileNotFoundError):
            os.unlink(final)
        return True


@contextlib.contextmanager
def _locked(path: str, operation: int) -> Iterator[None]:
    """``flock`` a lock file (shared by every process using the store); closing releases it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, operation)
        yield
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _sweep_dir(directory: pathlib.Path, cutoff: float) -> int:
    count = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(directory) as entries:
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    count += 1
    return count
