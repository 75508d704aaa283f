"""Retention: eviction never strands an upload that deduplicated onto the blob being evicted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from maxgate.blobs import BlobStore, StoredBlob
from maxgate.domain.files import Files
from maxgate.domain.retention import Retention
from maxgate.errors import UpstreamError
from maxgate.store import tables as t
from maxgate.store.database import Database

INSTANCE = 3100000001


class NoMessenger:
    """An upstream that is never asked: every file here is uploaded, its bytes stored."""

    def fetch_file(self, instance_id: int, file: object) -> AsyncIterator[bytes]:
        raise UpstreamError("not used here")


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore((tmp_path / "blobs").as_uri())


@pytest.fixture
def files(db: Database, blobs: BlobStore) -> Files:
    return Files(db, blobs, NoMessenger(), retention=3600.0, max_size=1 << 20)  # type: ignore[arg-type]


async def _stored(files: Files, blob: StoredBlob, *, expired: bool = False) -> str:
    """Record a file holding ``blob``, as an upload does after its commit."""
    row = files.stored_row(INSTANCE, blob, "a.bin", "application/octet-stream")
    if expired:
        row["expires_at"] = time.time() - 1
    async with files.db.write() as conn:
        await files.record_blob(conn, blob)
        await conn.execute(t.files.insert().values(**row))
    return str(row["id"])


async def test_an_unheld_expired_blob_is_deleted(files: Files, blobs: BlobStore) -> None:
    blob = await blobs.write(chunks_of(b"old bytes"))
    await _stored(files, blob, expired=True)
    result = await Retention(files.db, blobs).sweep()
    assert (result.evicted_files, result.deleted_blobs, result.freed_bytes) == (1, 1, 9)
    assert not await blobs.exists(blob.key)


async def test_an_upload_deduplicating_during_eviction_keeps_its_bytes(
    files: Files, blobs: BlobStore
) -> None:
    blob = await blobs.write(chunks_of(b"shared bytes"))
    await _stored(files, blob, expired=True)
    # A new upload of the same bytes commits (its copy is dropped: the content is stored)...
    again = await blobs.write(chunks_of(b"shared bytes"))
    assert again == blob
    # ...and the sweeper runs before the upload has recorded its file.
    retention = Retention(files.db, blobs, hold_seconds=0.3)
    result = await retention.sweep()
    assert (result.evicted_files, result.deleted_blobs) == (1, 0)
    new_id = await _stored(files, again)
    new_file = await files.get(new_id)
    assert new_file is not None
    assert b"".join([c async for c in await files.open(new_file)]) == b"shared bytes"
    await asyncio.sleep(0.35)  # the hold has passed; the new file holds the blob now
    result = await retention.sweep()
    assert result.deleted_blobs == 0 and await blobs.exists(blob.key)


async def test_a_held_blob_nobody_records_is_deleted_once_the_hold_passes(
    files: Files, blobs: BlobStore
) -> None:
    blob = await blobs.write(chunks_of(b"abandoned"))
    await _stored(files, blob, expired=True)
    await blobs.write(chunks_of(b"abandoned"))  # an upload that then fails before its row
    retention = Retention(files.db, blobs, hold_seconds=0.3)
    assert (await retention.sweep()).deleted_blobs == 0
    assert (await retention.sweep()).deleted_blobs == 0  # still held
    await asyncio.sleep(0.35)
    result = await retention.sweep()
    assert (result.evicted_files, result.deleted_blobs, result.freed_bytes) == (0, 1, 9)
    assert not await blobs.exists(blob.key)
