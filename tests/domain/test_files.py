"""Files: materialising bytes from the messenger, once per file, within the size cap; mirroring.

The messenger is a small fake whose ``fetch_file`` streams known bytes (slowly when asked) and
counts its calls; the store and the blob store are real.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from maxgate.blobs import BlobStore, blob_key
from maxgate.domain.files import Files
from maxgate.domain.messenger import InboundFile, InboundSink
from maxgate.domain.records import FileRecord, Instance, Message
from maxgate.errors import SizeLimitExceeded, StoreError, UpstreamError, UpstreamFileGone
from maxgate.store import files as files_rows
from maxgate.store import tables as t
from maxgate.store.database import Database

INSTANCE = 3100000001


class FileUpstream:
    """A messenger that holds some files' bytes, fetches them slowly, and counts fetches."""

    kind = "fake"

    def __init__(self, *, delay: float = 0.0, gap: float = 0.0) -> None:
        self.held: dict[str, bytes] = {}
        self.delay = delay
        self.gap = gap  # seconds between chunks
        self.fetches: list[str | None] = []

    async def start(self, sink: InboundSink) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(
        self, instance: Instance, message: Message, body: AsyncIterator[bytes] | None
    ) -> str:
        raise UpstreamError("not used here")

    async def fetch_file(self, instance_id: int, file: FileRecord) -> AsyncIterator[bytes]:
        self.fetches.append(file.upstream_ref)
        await asyncio.sleep(self.delay)
        data = self.held.get(file.upstream_ref or "")
        if data is None:
            raise UpstreamFileGone("the messenger no longer has this file")
        for start in range(0, len(data), 4096):
            yield data[start : start + 4096]
            await asyncio.sleep(self.gap)

    async def check_account(self, phone: int) -> str | None:
        return None


@pytest.fixture
def upstream() -> FileUpstream:
    return FileUpstream(delay=0.05)


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore((tmp_path / "blobs").as_uri())


@pytest.fixture
def files(db: Database, blobs: BlobStore, upstream: FileUpstream) -> Files:
    return Files(db, blobs, upstream, retention=3600.0, max_size=64 * 1024, fetch_timeout=10.0)


async def _remote(
    files: Files, upstream: FileUpstream, ref: str, data: bytes | None, **changes: Any
) -> FileRecord:
    """A file only the messenger holds (``data`` None: the messenger lost it)."""
    if data is not None:
        upstream.held[ref] = data
    row = files.remote_row(INSTANCE, InboundFile(ref, f"{ref}.bin", "application/pdf", None))
    row.update(changes)
    async with files.db.write() as conn:
        await conn.execute(t.files.insert().values(**row))
    found = await files.get(row["id"])
    assert found is not None
    return found


async def _count(db: Database, table: sa.Table) -> int:
    async with db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def _read(files: Files, file: FileRecord) -> bytes:
    return b"".join([chunk async for chunk in await files.open(file)])


async def test_materialize_stores_a_remote_file(files: Files, upstream: FileUpstream) -> None:
    data = b"%PDF-1.7 " + bytes(range(256)) * 40
    remote = await _remote(files, upstream, "ref-a", data, expires_at=time.time() + 10)
    assert remote.state == "remote" and remote.sha256 is None

    before = time.time()
    stored = await files.materialize(remote)
    assert stored.id == remote.id and stored.state == "stored"
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size == len(data)
    assert stored.stored_at is not None and stored.stored_at >= before
    assert stored.expires_at >= before + 3600 - 1  # extended to a full retention
    assert stored == await files.get(remote.id)
    assert await files.blobs.read_all(blob_key(stored.sha256)) == data
    assert await _count(files.db, t.blobs) == 1
    assert await _read(files, stored) == data
    assert upstream.fetches == ["ref-a"]

    again = await files.materialize(stored)  # present: no second fetch
    assert again == stored
    assert upstream.fetches == ["ref-a"]


async def test_materialize_never_shortens_retention(files: Files, upstream: FileUpstream) -> None:
    far = time.time() + 10 * 86400
    remote = await _remote(files, upstream, "ref-far", b"abc", expires_at=far)
    stored = await files.materialize(remote)
    assert stored.expires_at == pytest.approx(far)


async def test_an_evicted_file_comes_back(files: Files, upstream: FileUpstream) -> None:
    remote = await _remote(files, upstream, "ref-e", b"evicted bytes", state="evicted")
    stored = await files.materialize(remote)
    assert stored.state == "stored" and await _read(files, stored) == b"evicted bytes"


async def test_a_stored_file_whose_bytes_vanished_is_fetched_again(
    files: Files, upstream: FileUpstream
) -> None:
    stored = await files.materialize(await _remote(files, upstream, "ref-v", b"vanishing"))
    assert stored.sha256 is not None
    await files.blobs.delete(blob_key(stored.sha256))
    again = await files.materialize(stored)
    assert again.state == "stored" and await _read(files, again) == b"vanishing"
    assert upstream.fetches == ["ref-v", "ref-v"]


async def test_concurrent_materialize_calls_fetch_once(
    files: Files, upstream: FileUpstream
) -> None:
    data = b"x" * 50_000
    remote = await _remote(files, upstream, "ref-many", data)
    results = await asyncio.gather(*(files.materialize(remote) for _ in range(20)))
    assert upstream.fetches == ["ref-many"]
    assert all(r.state == "stored" and r.sha256 == results[0].sha256 for r in results)
    assert await _count(files.db, t.blobs) == 1
    assert await _read(files, results[0]) == data


async def test_a_lost_file_fails_every_waiter_and_stores_nothing(
    files: Files, upstream: FileUpstream, blobs: BlobStore
) -> None:
    remote = await _remote(files, upstream, "ref-gone", None)
    results = await asyncio.gather(
        *(files.materialize(remote) for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, UpstreamFileGone) for r in results), results
    assert upstream.fetches == ["ref-gone"]
    fresh = await files.get(remote.id)
    assert fresh is not None and fresh.state == "remote" and fresh.sha256 is None
    assert await _count(files.db, t.blobs) == 0
    root = blobs.local_path(blob_key("0" * 64))
    assert root is not None
    assert not any(p.is_file() for p in root.parents[3].rglob("*"))  # no blob, no temp

    # a failure is not remembered: the next request asks the messenger again
    upstream.held["ref-gone"] = b"found it after all"
    stored = await files.materialize(remote)
    assert stored.state == "stored" and upstream.fetches == ["ref-gone", "ref-gone"]


async def test_the_size_cap_applies_to_messenger_fetches(
    files: Files, upstream: FileUpstream
) -> None:
    remote = await _remote(files, upstream, "ref-big", b"b" * (64 * 1024 + 1))
    results = await asyncio.gather(
        *(files.materialize(remote) for _ in range(3)), return_exceptions=True
    )
    for result in results:
        assert isinstance(result, UpstreamError | SizeLimitExceeded), results
        assert isinstance(result, SizeLimitExceeded) or isinstance(
            result.__cause__, SizeLimitExceeded
        )
    assert upstream.fetches == ["ref-big"]
    fresh = await files.get(remote.id)
    assert fresh is not None and fresh.state == "remote"
    assert await _count(files.db, t.blobs) == 0

    exact = await _remote(files, upstream, "ref-exact", b"e" * (64 * 1024))
    assert (await files.materialize(exact)).size == 64 * 1024


async def test_a_file_without_bytes_or_reference_is_an_upstream_error(
    files: Files, upstream: FileUpstream
) -> None:
    orphan = await _remote(files, upstream, "ref-o", None, upstream_ref=None)
    with pytest.raises(UpstreamError):
        await files.materialize(orphan)
    assert upstream.fetches == []


async def test_a_slow_messenger_times_out(db: Database, blobs: BlobStore) -> None:
    slow = FileUpstream(delay=5.0)
    files = Files(db, blobs, slow, retention=3600.0, max_size=1024, fetch_timeout=0.2)
    remote = await _remote(files, slow, "ref-slow", b"late")
    started = time.monotonic()
    with pytest.raises(UpstreamError, match="in time"):
        await files.materialize(remote)
    assert time.monotonic() - started < 2


async def test_local_stat_of_stored_files_only(files: Files, upstream: FileUpstream) -> None:
    upstream.delay = 0.0
    remote = await _remote(files, upstream, "ref-stat", b"stat me")
    assert files.local_stat(remote) is None  # not stored yet
    stored = await files.materialize(remote)
    found = files.local_stat(stored)
    assert found is not None
    path, stat = found
    assert stat.st_size == 7 and Path(path).read_bytes() == b"stat me"
    Path(path).unlink()  # gone from the disk: not present, whatever the row says
    assert files.local_stat(stored) is None


async def test_a_large_file_may_take_longer_than_the_timeout(
    db: Database, blobs: BlobStore
) -> None:
    """fetch_timeout bounds each wait; the whole fetch gets more time per byte of the file."""
    steady = FileUpstream(gap=0.003)  # 150 chunks of 4 KiB: about 0.5 s, 1 MiB/s or more
    files = Files(db, blobs, steady, retention=3600.0, max_size=1 << 20, fetch_timeout=0.2)
    data = bytes(range(256)) * (600 * 4)
    remote = await _remote(files, steady, "ref-large", data, size=len(data))
    stored = await files.materialize(remote)
    assert stored.state == "stored" and stored.sha256 == hashlib.sha256(data).hexdigest()


async def test_mirror_pending_stores_remote_files(files: Files, upstream: FileUpstream) -> None:
    upstream.delay = 0.0
    made = [await _remote(files, upstream, f"ref-{n}", f"file {n}".encode()) for n in range(5)]
    lost = await _remote(files, upstream, "ref-lost", None)

    assert await files.mirror_pending() == 5
    for remote in made:
        fresh = await files.get(remote.id)
        assert fresh is not None and fresh.state == "stored"
        assert await _read(files, fresh) == f"file {made.index(remote)}".encode()
    gone = await files.get(lost.id)
    assert gone is not None and gone.state == "remote"  # still materialisable on demand
    assert await files.mirror_pending() == 0  # ...but eager mirroring backs off from it
    assert sorted(upstream.fetches, key=str) == sorted(
        [*(f"ref-{n}" for n in range(5)), "ref-lost"], key=str
    )
    async with files.db.read() as conn:
        row = (await conn.execute(sa.select(t.files).where(t.files.c.id == lost.id))).one()
    assert row.fetch_attempts == 1 and row.retry_at > time.time() + 30


async def test_mirror_pending_works_in_batches(files: Files, upstream: FileUpstream) -> None:
    upstream.delay = 0.0
    for n in range(5):
        await _remote(files, upstream, f"ref-{n}", b"batch")
    assert await files.mirror_pending(batch=2) == 2
    assert await files.mirror_pending(batch=2) == 2
    assert await files.mirror_pending(batch=2) == 1
    assert await files.mirror_pending(batch=2) == 0


async def test_an_oversized_remote_file_does_not_stop_mirroring(
    files: Files, upstream: FileUpstream
) -> None:
    upstream.delay = 0.0
    await _remote(files, upstream, "ref-huge", b"h" * (64 * 1024 + 1))
    fine = await _remote(files, upstream, "ref-fine", b"fine")
    assert await files.mirror_pending() == 1
    fresh = await files.get(fine.id)
    assert fresh is not None and fresh.state == "stored"


async def test_lost_files_do_not_starve_newer_ones(files: Files, upstream: FileUpstream) -> None:
    upstream.delay = 0.0
    for n in range(2):
        await _remote(files, upstream, f"ref-lost-{n}", None, created_at=time.time() - 60 + n)
    fine = await _remote(files, upstream, "ref-fine", b"fine")
    for _ in range(3):  # as the runtime's mirror loop does, pass after pass
        await files.mirror_pending(batch=2)
    fresh = await files.get(fine.id)
    assert fresh is not None and fresh.state == "stored"


async def test_a_cancelled_first_caller_does_not_fail_the_others(
    files: Files, upstream: FileUpstream
) -> None:
    upstream.delay = 0.5
    remote = await _remote(files, upstream, "ref-c", b"shared")
    first = asyncio.create_task(files.materialize(remote))
    await asyncio.sleep(0.05)  # the first caller now leads the fetch
    second = asyncio.create_task(files.materialize(remote))
    await asyncio.sleep(0.05)
    first.cancel()
    [result] = await asyncio.gather(second, return_exceptions=True)
    assert isinstance(result, FileRecord) and result.state == "stored"


async def test_a_stale_record_does_not_fetch_twice(files: Files, upstream: FileUpstream) -> None:
    upstream.delay = 0.0
    remote = await _remote(files, upstream, "ref-stale", b"once")
    await files.materialize(remote)
    await files.materialize(remote)  # e.g. a download that read the row before the mirror ran
    assert upstream.fetches == ["ref-stale"]


class CountingUpstream(FileUpstream):
    """A FileUpstream that records how many fetches run at once, and can fail some slowly."""

    def __init__(self, *, delay: float) -> None:
        super().__init__(delay=delay)
        self.running = 0
        self.most = 0
        self.slow: dict[str, float] = {}  # ref → seconds before it is found lost

    async def fetch_file(self, instance_id: int, file: FileRecord) -> AsyncIterator[bytes]:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.slow.get(file.upstream_ref or "", 0.0))
            async for chunk in super().fetch_file(instance_id, file):
                yield chunk
        finally:
            self.running -= 1


async def _states(db: Database) -> dict[str, str]:
    async with db.read() as conn:
        found = (await conn.execute(sa.select(t.files.c.upstream_ref, t.files.c.state))).all()
    return {str(ref): str(state) for ref, state in found}


async def test_mirroring_runs_mirror_concurrency_fetches_at_once(
    db: Database, blobs: BlobStore
) -> None:
    upstream = CountingUpstream(delay=0.1)
    files = Files(db, blobs, upstream, retention=3600.0, max_size=1024, mirror_concurrency=3)
    for n in range(10):
        await _remote(files, upstream, f"ref-{n}", f"bytes {n}".encode())
    started = time.perf_counter()
    assert await files.mirror_pending(batch=50) == 10
    took = time.perf_counter() - started
    assert upstream.most == 3  # used, and never more
    assert took < 10 * 0.1 * 0.7  # one at a time would take a second
    assert set((await _states(db)).values()) == {"stored"}
    ids = await _by_ref(db)
    for n in range(10):
        record = await files.get(ids[f"ref-{n}"])
        assert record is not None and await _read(files, record) == f"bytes {n}".encode()


async def _by_ref(db: Database) -> dict[str, str]:
    async with db.read() as conn:
        found = (await conn.execute(sa.select(t.files.c.upstream_ref, t.files.c.id))).all()
    return {str(ref): str(file_id) for ref, file_id in found}


async def test_mirror_concurrency_must_be_at_least_one(db: Database, blobs: BlobStore) -> None:
    with pytest.raises(ValueError, match="mirror_concurrency"):
        Files(db, blobs, FileUpstream(), retention=1.0, max_size=1, mirror_concurrency=0)


async def test_a_slow_failing_file_does_not_hold_up_the_others(
    db: Database, blobs: BlobStore
) -> None:
    upstream = CountingUpstream(delay=0.0)
    files = Files(db, blobs, upstream, retention=3600.0, max_size=1024, mirror_concurrency=2)
    upstream.slow["ref-lost"] = 0.6  # the messenger takes its time, then has lost it
    await _remote(files, upstream, "ref-lost", None, created_at=time.time() - 60)  # first
    for n in range(6):
        await _remote(files, upstream, f"ref-{n}", b"fine")
    pass_ = asyncio.create_task(files.mirror_pending(batch=50))
    await asyncio.sleep(0.4)  # the lost file is still in flight...
    states = await _states(db)
    assert states.pop("ref-lost") == "remote"
    assert set(states.values()) == {"stored"}  # ...and every other one went past it
    assert await pass_ == 6
    async with db.read() as conn:
        row = await conn.execute(sa.select(t.files).where(t.files.c.upstream_ref == "ref-lost"))
        lost = row.one()
    assert lost.state == "remote" and lost.fetch_attempts == 1 and lost.retry_at > time.time()


async def test_files_journaled_during_a_pass_join_it(db: Database, blobs: BlobStore) -> None:
    upstream = CountingUpstream(delay=0.2)
    files = Files(db, blobs, upstream, retention=3600.0, max_size=1024, mirror_concurrency=4)
    await _remote(files, upstream, "ref-first", b"first")
    pass_ = asyncio.create_task(files.mirror_pending(batch=50))
    await asyncio.sleep(0.05)
    await _remote(files, upstream, "ref-later", b"later")
    files.remote_arrived()  # as the journal does
    await asyncio.sleep(0.05)
    assert upstream.running == 2  # taken at once, not after the first finished
    assert await pass_ == 2


async def test_rows_of_files_fetched_together_commit_together(
    db: Database, blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = CountingUpstream(delay=0.05)
    files = Files(db, blobs, upstream, retention=3600.0, max_size=1024, mirror_concurrency=8)
    for n in range(16):
        await _remote(files, upstream, f"ref-{n}", f"same time {n}".encode())
    commits: list[int] = []
    real = files_rows.record_mirrored_sync

    def counted(conn: Any, fetched: list[dict[str, Any]]) -> None:
        commits.append(len(fetched))
        real(conn, fetched)

    monkeypatch.setattr(files_rows, "record_mirrored_sync", counted)
    assert await files.mirror_pending(batch=50) == 16
    assert sum(commits) == 16 and len(commits) < 16
    assert await _count(db, t.blobs) == 16


async def test_a_store_failure_loses_no_file(
    db: Database, blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes whose row could not be recorded leave the file remote; the next pass stores it."""
    upstream = CountingUpstream(delay=0.0)
    files = Files(db, blobs, upstream, retention=3600.0, max_size=1024, mirror_concurrency=4)
    for n in range(6):
        await _remote(files, upstream, f"ref-{n}", f"kept {n}".encode())
    real = files_rows.record_mirrored_sync
    failures = iter([True, False])

    def flaky(conn: Any, fetched: list[dict[str, Any]]) -> None:
        if next(failures, False):
            raise sa.exc.OperationalError("UPDATE", {}, Exception("disk I/O error"))
        real(conn, fetched)

    monkeypatch.setattr(files_rows, "record_mirrored_sync", flaky)
    with pytest.raises(StoreError):
        await files.mirror_pending(batch=50)
    states = await _states(db)
    assert "remote" in states.values()
    async with db.read() as conn:
        retried = (await conn.execute(sa.select(sa.func.max(t.files.c.fetch_attempts)))).scalar()
    assert retried == 0  # a store failure is no reason to back off from a file
    await files.mirror_pending(batch=50)
    assert set((await _states(db)).values()) == {"stored"}
    assert await _count(db, t.blobs) == 6


async def test_a_pass_cancelled_midway_leaves_every_file_stored_or_remote(
    db: Database, blobs: BlobStore
) -> None:
    upstream = CountingUpstream(delay=0.0)
    upstream.gap = 0.02  # 4 KiB pieces of 16 KiB files: about 0.1 s each
    files = Files(db, blobs, upstream, retention=3600.0, max_size=1 << 20, mirror_concurrency=3)
    for n in range(9):
        await _remote(files, upstream, f"ref-{n}", bytes([n]) * 16384)
    pass_ = asyncio.create_task(files.mirror_pending(batch=50))
    await asyncio.sleep(0.25)
    pass_.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pass_
    await files.close()  # as the runtime stops: fetches in flight are cancelled
    assert upstream.running == 0
    states = await _states(db)
    assert set(states.values()) <= {"stored", "remote"} and "remote" in states.values()
    for ref, file_id in (await _by_ref(db)).items():
        record = await files.get(file_id)
        assert record is not None
        if record.state == "stored":  # a stored row always has its bytes
            assert await _read(files, record) == bytes([int(ref[4:])]) * 16384
    assert await files.mirror_pending(batch=50) == list(states.values()).count("remote")
    assert set((await _states(db)).values()) == {"stored"}
