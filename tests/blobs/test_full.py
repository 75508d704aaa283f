"""A full disk under a local blob store: a real small tmpfs filled to the last byte."""

from __future__ import annotations

import errno
import hashlib
import os
import pathlib
from collections.abc import AsyncIterator, Iterator

import pytest

from maxgate import space
from maxgate.blobs import BlobStore, blob_key
from maxgate.blobs import sinks as sinks_module
from maxgate.errors import BlobError, BlobStoreFull, StorageFull
from tests._tmpfs import fill, free, small_tmpfs

MiB = 1024 * 1024


@pytest.fixture
def disk(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A 4 MiB tmpfs."""
    with small_tmpfs(tmp_path / "disk", "4m") as mounted:
        yield mounted


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _files(root: pathlib.Path, under: str) -> list[str]:
    return sorted(p.name for p in (root / under).rglob("*") if p.is_file())


async def test_a_full_disk_is_storage_full_and_keeps_what_was_stored(
    disk: pathlib.Path,
) -> None:
    store = BlobStore(f"file://{disk}/blobs")
    before = os.urandom(100_000)
    kept = await store.write(_chunks(before))
    await store.check()

    fill(disk)
    with pytest.raises(BlobStoreFull, match="No space left on device") as raised:
        await store.write(_chunks(os.urandom(MiB)))
    assert isinstance(raised.value, BlobError)  # code that handles a failing store still does
    assert isinstance(raised.value, StorageFull) and raised.value.store == "file store"
    assert _files(disk / "blobs", "tmp") == []  # the temporary file is gone
    assert _files(disk / "blobs", "blobs") == [kept.sha256]
    with pytest.raises(BlobStoreFull, match="0 bytes free"):
        await store.check()  # measured: the filesystem has no room
    assert await store.read_all(kept.key) == before  # reading still works

    free(disk)
    await store.check()  # at once: free space is measured, not remembered
    again = os.urandom(MiB)
    blob = await store.write(_chunks(again))
    assert blob.sha256 == hashlib.sha256(again).hexdigest()
    assert await store.read_all(blob_key(blob.sha256)) == again
    assert await store.read_all(kept.key) == before


async def test_a_commit_that_finds_the_disk_full(disk: pathlib.Path) -> None:
    """Bytes that fit while streaming but not when flushed at commit (a small last batch)."""
    store = BlobStore(f"file://{disk}/blobs")
    writer = store.writer()
    await writer.write(b"x" * 1000)  # batched in memory: nothing on disk yet
    fill(disk)
    with pytest.raises(BlobStoreFull, match="committing tmp/"):
        await writer.commit()
    free(disk)
    assert _files(disk / "blobs", "tmp") == []
    assert _files(disk / "blobs", "blobs") == []


async def test_a_quota_is_remembered_until_a_write_succeeds(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EDQUOT: free space does not show a quota, so check() remembers the failure."""
    store = BlobStore(f"file://{tmp_path}/blobs")
    real = sinks_module._write_all

    def over_quota(fd: int, batch: list[bytes]) -> None:
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr(sinks_module, "_write_all", over_quota)
    with pytest.raises(BlobStoreFull, match="quota"):
        await store.write(_chunks(b"y" * 300_000))
    with pytest.raises(BlobStoreFull, match="recent write"):
        await store.check()

    monkeypatch.setattr(sinks_module, "_write_all", real)
    await store.write(_chunks(b"z" * 300_000))  # the quota was raised: a write succeeds
    await store.check()


async def test_the_mark_of_a_quota_expires(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not ready means no traffic, so no write to clear the mark: it expires by itself."""
    store = BlobStore(f"file://{tmp_path}/blobs")

    def over_quota(fd: int, batch: list[bytes]) -> None:
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr(sinks_module, "_write_all", over_quota)
    with pytest.raises(BlobStoreFull):
        await store.write(_chunks(b"y" * 300_000))
    monkeypatch.setattr(space, "FULL_MARK_SECONDS", 0.0)
    await store.check()


async def test_other_disk_errors_stay_blob_errors(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BlobStore(f"file://{tmp_path}/blobs")

    def broken(fd: int, batch: list[bytes]) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(sinks_module, "_write_all", broken)
    with pytest.raises(BlobError, match="Input/output error") as raised:
        await store.write(_chunks(b"y" * 300_000))
    assert not isinstance(raised.value, StorageFull)
    await store.check()
