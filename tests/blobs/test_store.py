"""The blob store against a local directory and a moto S3 server."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import httpx
import obstore
import pytest

from maxgate.blobs import BlobStore, StoredBlob, blob_key
from maxgate.blobs import store as store_module
from maxgate.errors import BlobError, BlobNotFound, ConfigError, SizeLimitExceeded

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MiB = 1024 * 1024

if TYPE_CHECKING:
    from .conftest import StoreCase


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def keys(case: StoreCase, prefix: str) -> list[str]:
    """Every object under ``prefix`` as the backend lists it, plus (local) staging files."""
    listed = [m["path"] for m in await obstore.list(case.raw, prefix).collect_async()]
    if case.root is not None and (case.root / prefix).exists():
        listed += [str(p.relative_to(case.root)) for p in (case.root / prefix).rglob("*")]
        listed = [k for k in dict.fromkeys(listed) if not (case.root / k).is_dir()]
    return sorted(listed)


async def read(case: StoreCase, key: str, **kwargs: int) -> bytes:
    return b"".join([chunk async for chunk in case.blobs.read(key, **kwargs)])


# --- writing -------------------------------------------------------------------------------


async def test_round_trip(case: StoreCase) -> None:
    data = os.urandom(300_000)
    blob = await case.blobs.write(chunks_of(data[:1000], data[1000:200_000], data[200_000:]))
    sha = hashlib.sha256(data).hexdigest()
    assert blob == StoredBlob(sha256=sha, size=len(data), key=f"blobs/{sha[:2]}/{sha[2:4]}/{sha}")
    assert blob.key == blob_key(sha)
    assert await case.blobs.read_all(blob.key) == data
    assert await read(case, blob.key) == data
    assert await case.blobs.exists(blob.key)
    assert await case.blobs.size(blob.key) == len(data)
    assert await keys(case, "blobs") == [blob.key]
    assert await keys(case, "tmp") == []


async def test_writer_counts_and_commits(case: StoreCase) -> None:
    async with case.blobs.writer() as writer:
        await writer.write(b"hello ")
        await writer.write(b"")
        await writer.write(b"world")
        assert writer.size == 11
        blob = await writer.commit()
        assert await writer.commit() == blob  # idempotent
    assert blob.sha256 == hashlib.sha256(b"hello world").hexdigest()
    assert await case.blobs.read_all(blob.key) == b"hello world"
    await writer.abort()  # after commit: no-op
    assert await case.blobs.exists(blob.key)
    with pytest.raises(BlobError):
        await writer.write(b"more")


async def test_empty_blob(case: StoreCase) -> None:
    blob = await case.blobs.write(chunks_of())
    assert blob == StoredBlob(EMPTY_SHA256, 0, blob_key(EMPTY_SHA256))
    assert await case.blobs.read_all(blob.key) == b""
    assert await read(case, blob.key) == b""
    assert await read(case, blob.key, start=0, end=10) == b""
    assert await case.blobs.size(blob.key) == 0


async def test_dedup_returns_the_same_blob_and_drops_the_temp(case: StoreCase) -> None:
    first = await case.blobs.write(chunks_of(b"same bytes"))
    path = case.blobs.local_path(first.key)
    inode = path.stat().st_ino if path else None
    assert await keys(case, "tmp") == []
    second = await case.blobs.write(chunks_of(b"same ", b"bytes"))
    assert second == first
    if path is not None:
        assert path.stat().st_ino == inode  # left alone, not replaced
    assert await keys(case, "blobs") == [first.key]
    assert await keys(case, "tmp") == [f"tmp/hold-{first.sha256}"]  # the hold, no copy


async def test_concurrent_commits_of_the_same_content(case: StoreCase) -> None:
    data = os.urandom(100_000)
    blobs = await asyncio.gather(*(case.blobs.write(chunks_of(data)) for _ in range(6)))
    assert len(set(blobs)) == 1
    assert await case.blobs.read_all(blobs[0].key) == data
    assert await keys(case, "blobs") == [blobs[0].key]
    assert set(await keys(case, "tmp")) <= {f"tmp/hold-{blobs[0].sha256}"}


async def test_size_limit_aborts_and_leaves_nothing(case: StoreCase) -> None:
    writer = case.blobs.writer(limit=6 * MiB)
    await writer.write(b"x" * (5 * MiB))
    await writer.write(b"x" * (1 * MiB))  # exactly the limit is fine
    with pytest.raises(SizeLimitExceeded) as raised:
        await writer.write(b"x")
    assert (raised.value.size, raised.value.limit) == (6 * MiB + 1, 6 * MiB)
    assert await keys(case, "tmp") == []
    assert await keys(case, "blobs") == []
    assert case.pending_uploads() == 0
    with pytest.raises(BlobError):
        await writer.commit()
    with pytest.raises(SizeLimitExceeded):
        await case.blobs.write(chunks_of(b"abc", b"def"), limit=5)
    assert await keys(case, "tmp") == []
    assert await keys(case, "blobs") == []


async def test_abort_leaves_nothing(case: StoreCase) -> None:
    writer = case.blobs.writer()
    await writer.write(b"y" * (6 * MiB))  # past one part: data has reached the backend
    await writer.abort()
    await writer.abort()
    assert await keys(case, "tmp") == []
    assert await keys(case, "blobs") == []
    assert case.pending_uploads() == 0  # the multipart upload was finished, then deleted
    with pytest.raises(BlobError):
        await writer.commit()


async def test_cancelled_commit_still_finishes(case: StoreCase) -> None:
    writer = case.blobs.writer()
    await writer.write(b"commit me anyway")
    task = asyncio.create_task(writer.commit())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await writer.abort()  # waits for the shielded commit; does not undo it
    blob = await writer.commit()
    assert await case.blobs.read_all(blob.key) == b"commit me anyway"
    assert await keys(case, "tmp") == []


async def test_context_manager_aborts_without_commit(case: StoreCase) -> None:
    with pytest.raises(RuntimeError):
        async with case.blobs.writer() as writer:
            await writer.write(b"doomed")
            raise RuntimeError("client went away")
    async with case.blobs.writer() as writer:
        await writer.write(b"never committed")
    assert await keys(case, "tmp") == []
    assert await keys(case, "blobs") == []


async def test_streaming_50_mib(case: StoreCase) -> None:
    expected = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for i in range(50):
            chunk = bytes([i]) * MiB
            expected.update(chunk)
            yield chunk

    blob = await case.blobs.write(body())
    assert (blob.sha256, blob.size) == (expected.hexdigest(), 50 * MiB)
    got = hashlib.sha256()
    async for chunk in case.blobs.read(blob.key, chunk_size=MiB):
        got.update(chunk)
    assert got.hexdigest() == blob.sha256


async def test_large_s3_objects_are_restreamed_instead_of_copied(
    s3: StoreCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MAX_COPY_SIZE", 1)
    data = os.urandom(7 * MiB)
    blob = await s3.blobs.write(chunks_of(data[: 3 * MiB], data[3 * MiB :]))
    assert await s3.blobs.read_all(blob.key) == data
    assert await keys(s3, "tmp") == []


async def test_many_small_writes_hash_like_one(case: StoreCase) -> None:
    """Local writers gather small writes into batches for the writing thread."""
    pieces = [os.urandom(n) for n in (1, 100, 4096, 65_536, 3, 300_000, 1_200_000, 7)] * 3
    blob = await case.blobs.write(chunks_of(*pieces))
    data = b"".join(pieces)
    assert (blob.sha256, blob.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert await case.blobs.read_all(blob.key) == data


async def test_a_write_cancelled_mid_flight_leaves_nothing(case: StoreCase) -> None:
    writer = case.blobs.writer()
    await writer.write(b"a" * (64 * MiB))  # local: still being written when the next comes
    task = asyncio.create_task(writer.write(b"b" * (3 * MiB)))
    await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with pytest.raises(BlobError, match="interrupted"):
        await writer.commit()  # the bytes on disk are unknown now: never published
    await writer.abort()
    assert await keys(case, "tmp") == []
    assert await keys(case, "blobs") == []


async def test_a_failing_disk_is_a_blob_error(local: StoreCase) -> None:
    assert local.root is not None
    local.root.mkdir(parents=True, exist_ok=True)
    (local.root / "tmp").write_bytes(b"a file where the temp directory should be")
    writer = local.blobs.writer()
    # The temp file is created in the sink's thread: the error comes with the next batch.
    with pytest.raises(BlobError, match="writing tmp/"):
        await writer.write(b"x" * (2 * MiB))
        await writer.write(b"x" * (2 * MiB))
    await writer.abort()
    assert await keys(local, "blobs") == []


async def test_local_writes_start_write_back_and_fsync(
    local: StoreCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before a commit the bytes reach the disk (fsync), and write-back starts as they come."""
    from maxgate.blobs import sinks

    synced: list[int] = []
    started: list[tuple[int, int]] = []
    real_fsync = os.fsync
    monkeypatch.setattr(sinks.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    monkeypatch.setattr(sinks, "_start_writeback", lambda fd, at, n: started.append((at, n)))
    await local.blobs.write(chunks_of(*[bytes([i]) * MiB for i in range(20)]))
    assert len(synced) == 2  # the temp file, then the directory it was renamed into
    assert started and started[0][0] == 0
    assert sum(n for _, n in started) >= 16 * MiB


async def test_a_deduplicating_commit_holds_the_content_from_eviction(case: StoreCase) -> None:
    first = await case.blobs.write(chunks_of(b"popular bytes"))
    assert await case.blobs.delete_unless_held(first.sha256) is True  # nobody holds it
    assert not await case.blobs.exists(first.key)
    first = await case.blobs.write(chunks_of(b"popular bytes"))
    again = await case.blobs.write(chunks_of(b"popular bytes"))  # deduplicated: held
    assert again == first
    assert await case.blobs.delete_unless_held(first.sha256) is False
    assert await case.blobs.read_all(first.key) == b"popular bytes"  # put back whole
    assert await case.blobs.delete_unless_held(first.sha256, hold_seconds=0) is True
    assert not await case.blobs.exists(first.key)
    assert await case.blobs.delete_unless_held(first.sha256) is True  # absent: nothing to do
    assert [k for k in await keys(case, "tmp") if not k.startswith("tmp/hold-")] == []
    assert await case.blobs.sweep_temp(older_than_seconds=0) == 1  # the hold goes in time


async def test_a_commit_racing_an_eviction_keeps_its_bytes(
    local: StoreCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deleter runs between the commit's first look (the blob is there) and its hold: the
    commit then finds the blob gone and publishes its own copy."""
    first = await local.blobs.write(chunks_of(b"raced bytes"))
    blob_file = str(local.blobs.local_path(first.key))
    assert local.root is not None
    real_exists = os.path.exists
    looks: list[bool] = []
    deleting: list[bool] = []

    def exists(path: Any) -> bool:
        if str(path) == blob_file and not deleting:
            looks.append(real_exists(path))
            if len(looks) == 1:  # the deleter comes in right after the commit's first look
                deleting.append(True)
                deleted = store_module._delete_unless_held_file(
                    blob_file,
                    hold=f"{local.root}/tmp/hold-{first.sha256}",
                    lock=f"{local.root}/evict.lock",
                    cutoff=time.time(),
                )
                deleting.clear()
                assert deleted
            return looks[-1]
        return real_exists(path)

    monkeypatch.setattr(store_module.os.path, "exists", exists)
    again = await local.blobs.write(chunks_of(b"raced bytes"))
    monkeypatch.undo()
    assert again == first and looks == [True, False]  # seen, then gone once held: published
    assert await local.blobs.read_all(first.key) == b"raced bytes"


async def test_a_fresh_hold_keeps_the_blob_from_a_deleter_in_another_process(
    local: StoreCase,
) -> None:
    """Deletion and commits share a lock file: a deleter waits for a commit in progress."""
    first = await local.blobs.write(chunks_of(b"locked bytes"))
    assert local.root is not None
    code = textwrap.dedent(
        f"""
        import fcntl, os, time
        fd = os.open({str(local.root / "evict.lock")!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_SH)  # a commit holding the lock...
        print("locked", flush=True)
        time.sleep(0.5)
        os.close(os.open({str(local.root / "tmp" / f"hold-{first.sha256}")!r},
                         os.O_WRONLY | os.O_CREAT))
        os.utime({str(local.root / "tmp" / f"hold-{first.sha256}")!r})  # ...holds the content
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
    ) as committer:
        assert committer.stdout is not None and committer.stdout.readline() == "locked\n"
        assert await local.blobs.delete_unless_held(first.sha256) is False  # waited, saw it
    assert await local.blobs.read_all(first.key) == b"locked bytes"


# --- crashes and the sweeper --------------------------------------------------------------

CRASH = """
import asyncio, os
from maxgate.blobs import BlobStore

async def main():
    writer = BlobStore({url!r}).writer()
    await writer.write(b"z" * (6 * 1024 * 1024))
    await writer.write(b"z" * (256 * 1024))  # a second batch: the first is on disk by now
    os._exit(3)  # a crash: no commit, no abort, no cleanup

asyncio.run(main())
"""


async def test_crash_leaves_nothing_under_blobs(case: StoreCase) -> None:
    code = textwrap.dedent(CRASH.format(url=case.url))
    crashed = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert crashed.returncode == 3, crashed.stderr
    assert await keys(case, "blobs") == []
    if case.root is not None:
        assert len(await keys(case, "tmp")) == 1  # the in-progress upload's staging file
        assert await case.blobs.sweep_temp(older_than_seconds=3600) == 0
        assert await case.blobs.sweep_temp(older_than_seconds=0) == 1
    else:
        # An incomplete multipart upload is no object: only a bucket lifecycle rule removes it.
        assert case.pending_uploads() == 1
        assert await case.blobs.sweep_temp(older_than_seconds=0) == 0
    assert await keys(case, "tmp") == []


async def test_sweep_temp_removes_only_old_temp_objects(case: StoreCase) -> None:
    blob = await case.blobs.write(chunks_of(b"keep me"))
    await obstore.put_async(case.raw, "tmp/0123456789abcdef0123456789abcdef", b"left over")
    if case.root is not None:
        old = time.time() - 7200
        os.utime(case.root / "tmp/0123456789abcdef0123456789abcdef", (old, old))
        await obstore.put_async(case.raw, "tmp/fresh", b"in progress")
        assert await case.blobs.sweep_temp(older_than_seconds=3600) == 1
        assert await keys(case, "tmp") == ["tmp/fresh"]
    else:
        assert await case.blobs.sweep_temp(older_than_seconds=3600) == 0
    assert await case.blobs.sweep_temp(older_than_seconds=0) >= 1
    assert await keys(case, "tmp") == []
    assert await case.blobs.read_all(blob.key) == b"keep me"


# --- reading -------------------------------------------------------------------------------


async def test_range_reads(case: StoreCase) -> None:
    data = bytes(range(256)) * 40
    blob = await case.blobs.write(chunks_of(data))
    for start, end in [(0, None), (0, 1), (5, 10), (100, None), (0, len(data)), (10, 10**9)]:
        assert await read(case, blob.key, start=start, end=end) == data[start:end]
    assert await read(case, blob.key, start=len(data) - 1) == data[-1:]
    assert await read(case, blob.key, start=len(data)) == b""
    assert await read(case, blob.key, start=len(data) + 5, end=len(data) + 9) == b""
    assert await read(case, blob.key, start=7, end=7) == b""
    chunks = [c async for c in case.blobs.read(blob.key, chunk_size=1000)]
    assert b"".join(chunks) == data
    assert len(chunks) > 1
    with pytest.raises(ValueError, match="range"):
        await read(case, blob.key, start=10, end=5)
    with pytest.raises(ValueError, match="range"):
        await read(case, blob.key, start=-1)


async def test_missing_blob(case: StoreCase) -> None:
    key = blob_key("0" * 64)
    with pytest.raises(BlobNotFound):
        await read(case, key)
    with pytest.raises(BlobNotFound):
        await read(case, key, start=3, end=9)
    with pytest.raises(BlobNotFound):
        await read(case, key, start=3, end=3)
    with pytest.raises(BlobNotFound):
        await case.blobs.read_all(key)
    with pytest.raises(BlobNotFound):
        await case.blobs.size(key)
    assert not await case.blobs.exists(key)
    await case.blobs.delete(key)  # missing is not an error


async def test_delete(case: StoreCase) -> None:
    blob = await case.blobs.write(chunks_of(b"short-lived"))
    await case.blobs.delete(blob.key)
    assert not await case.blobs.exists(blob.key)
    assert await case.blobs.write(chunks_of(b"short-lived")) == blob  # stored again
    assert await case.blobs.read_all(blob.key) == b"short-lived"


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "blobs/../../x", "a//b", "a\\b", ""])
async def test_malformed_keys_are_refused(local: StoreCase, key: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        local.blobs.local_path(key)
    with pytest.raises(ValueError, match="malformed"):
        await local.blobs.exists(key)


# --- local specifics -----------------------------------------------------------------------


async def test_local_path(local: StoreCase) -> None:
    assert local.root is not None and local.root.is_dir()  # created by the constructor
    blob = await local.blobs.write(chunks_of(b"sendfile me"))
    path = local.blobs.local_path(blob.key)
    assert path == local.root / "blobs" / blob.sha256[:2] / blob.sha256[2:4] / blob.sha256
    assert path.read_bytes() == b"sendfile me"


async def test_local_path_never_escapes_the_root(local: StoreCase, tmp_path: object) -> None:
    assert local.root is not None
    outside = local.root.parent / "outside"
    outside.mkdir()
    (local.root / "blobs").mkdir(parents=True)
    (local.root / "blobs" / "evil").symlink_to(outside)
    with pytest.raises(ValueError, match="outside"):
        local.blobs.local_path("blobs/evil/x")


async def test_local_store_without_fsync(tmp_path: object) -> None:
    blobs = BlobStore(f"file://{tmp_path}/nofsync?fsync=false")
    blob = await blobs.write(chunks_of(b"fast"))
    assert await blobs.read_all(blob.key) == b"fast"


async def test_local_presigned_url_is_none(local: StoreCase) -> None:
    blob = await local.blobs.write(chunks_of(b"x"))
    assert await local.blobs.presigned_url(blob.key, expires_in=60) is None


async def test_check(case: StoreCase) -> None:
    await case.blobs.check()


async def test_check_fails_when_the_directory_is_gone(local: StoreCase) -> None:
    assert local.root is not None
    local.root.rmdir()
    with pytest.raises(BlobError, match="not writable"):
        await local.blobs.check()


# --- S3 specifics --------------------------------------------------------------------------


@pytest.mark.s3
async def test_presigned_url(s3: StoreCase) -> None:
    data = os.urandom(70_000)
    blob = await s3.blobs.write(chunks_of(data))
    assert s3.blobs.local_path(blob.key) is None
    url = await s3.blobs.presigned_url(blob.key, expires_in=120)
    assert url is not None and "X-Amz-Signature=" in url
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
        assert response.status_code == 200
        assert response.content == data
        ranged = await client.get(url, headers={"Range": "bytes=10-19"})
        assert ranged.status_code == 206 and ranged.content == data[10:20]
    # obstore cannot sign response-content-disposition/-type: the caller must stream instead.
    assert await s3.blobs.presigned_url(blob.key, expires_in=60, filename="a.txt") is None
    assert await s3.blobs.presigned_url(blob.key, expires_in=60, content_type="text/plain") is None
    with pytest.raises(ValueError, match="expires_in"):
        await s3.blobs.presigned_url(blob.key, expires_in=0)


@pytest.mark.s3
async def test_s3_bucket_root_without_prefix(make_s3_url: Callable[..., str]) -> None:
    blobs = BlobStore(make_s3_url(""))
    blob = await blobs.write(chunks_of(b"at the root"))
    assert await blobs.read_all(blob.key) == b"at the root"
    await blobs.delete(blob.key)


@pytest.mark.s3
async def test_check_fails_for_a_missing_bucket(make_s3_url: Callable[..., str]) -> None:
    blobs = BlobStore(make_s3_url("p", bucket="no-such-bucket"))
    with pytest.raises(BlobError, match="checking"):
        await blobs.check()


@pytest.mark.s3
async def test_credentials_from_the_environment(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    blobs = BlobStore(f"s3://maxgate-test/env?endpoint={s3_endpoint}&allow_http=true")
    blob = await blobs.write(chunks_of(b"env"))
    assert await blobs.read_all(blob.key) == b"env"


# --- configuration -------------------------------------------------------------------------


def test_repr_hides_secrets() -> None:
    blobs = BlobStore(
        "s3://bucket/prefix?endpoint=http://127.0.0.1:9&allow_http=true"
        "&access_key_id=AKIAEXAMPLEKEY&secret_access_key=s3cr3t-value&session_token=tok3n"
    )
    shown = repr(blobs)
    assert "s3://bucket/prefix" in shown and "endpoint=http://127.0.0.1:9" in shown
    for secret in ("AKIAEXAMPLEKEY", "s3cr3t-value", "tok3n"):
        assert secret not in shown
    assert blobs.local_path(blob_key("a" * 64)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/blobs",
        "file://relative/path",
        "file:///abs?unknown=1",
        "file:///abs?fsync=maybe",
        "s3:///prefix-without-bucket",
        "s3://bucket?endpoint=http://x&color=blue",
        "s3://bucket?allow_http=perhaps",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        BlobStore(url)


def test_blob_key_validates_the_hash() -> None:
    assert blob_key("ab" * 32) == f"blobs/ab/ab/{'ab' * 32}"
    with pytest.raises(ValueError, match="sha256"):
        blob_key("../" + "a" * 61)
