"""Where sendFileByUrl's time goes: the pieces of its fetch-and-store path, timed alone.

``python -m bench.ioprobe URL DIR`` (the bench runs it pinned to the server CPU, nginx serving
URL from the other CPU) streams the file at URL several ways and prints MiB/s and CPU seconds
for each: the HTTP client alone, with hashing, maxgate's ``fetch()``, the full path with
maxgate's BlobStore (what sendFileByUrl does), the same work done inline on the event loop (the
floor for one core), and BlobStore writing from memory. DIR receives the temporary files;
everything written is deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx

from bench.common import REPO, SERVER_CPU, VENV_BIN
from maxgate.blobs import BlobStore
from maxgate.net.client import OutboundClient, outbound_client
from maxgate.net.http import fetch
from maxgate.net.urlguard import UrlGuard

LIMIT = 4 * 1024**3
MIB = 1024 * 1024


def cpu_set(spec: str) -> set[int]:
    """The CPUs of a ``taskset -c`` list such as ``0``, ``0,2`` or ``0-3``."""
    cpus: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def sha256_seconds(path: Path, cpu: str = SERVER_CPU) -> float:
    """Seconds hashlib's sha256 takes over the bytes of ``path`` in this process, pinned to
    ``cpu`` meanwhile; only the ``update`` calls are timed (the file is read in 1 MiB pieces
    between them), so reading the file does not count."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpu_set(cpu))
    try:
        digest = hashlib.sha256()
        piece = bytearray(MIB)
        view = memoryview(piece)
        spent = 0.0
        with path.open("rb", buffering=0) as file:
            while count := file.readinto(piece):
                started = time.perf_counter()
                digest.update(view[:count])
                spent += time.perf_counter() - started
        return spent
    finally:
        os.sched_setaffinity(0, before)


def has_sha_extensions() -> bool | None:
    """Whether this CPU has SHA extensions (``sha_ni`` in /proc/cpuinfo); None if unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return "sha_ni" in line.split(":", 1)[1].split()
    return None


async def _probe(url: str, folder: Path, size: int) -> None:
    guard = UrlGuard((ipaddress.ip_network("127.0.0.0/8"),))
    store = BlobStore((folder / "probe-blobs").as_uri())

    async def sha256_alone(client: OutboundClient) -> None:
        digest = hashlib.sha256()
        data = os.urandom(MIB)
        for _ in range(size // MIB):
            digest.update(data)

    async def client_only(_client: OutboundClient) -> None:
        async with httpx.AsyncClient() as plain, plain.stream("GET", url) as response:
            async for _chunk in response.aiter_raw():
                pass

    async def client_hash(_client: OutboundClient) -> None:
        digest = hashlib.sha256()
        async with httpx.AsyncClient() as plain, plain.stream("GET", url) as response:
            async for chunk in response.aiter_raw():
                digest.update(chunk)

    async def maxgate_fetch(client: OutboundClient) -> None:
        async with fetch(client, url, limit=LIMIT, guard=guard, deadline=600) as (_, chunks):
            async for _chunk in chunks:
                pass

    async def sendfilebyurl_path(client: OutboundClient) -> None:
        async with fetch(client, url, limit=LIMIT, guard=guard, deadline=600) as (_, chunks):
            blob = await store.write(chunks, limit=LIMIT)
        await store.delete(blob.key)

    async def inline_file(client: OutboundClient) -> None:
        digest = hashlib.sha256()
        target = folder / "probe-inline.bin"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            async with fetch(client, url, limit=LIMIT, guard=guard, deadline=600) as (_, chunks):
                async for chunk in chunks:
                    digest.update(chunk)
                    os.write(fd, chunk)
        finally:
            os.close(fd)
            target.unlink()

    def from_memory(chunk_size: int) -> Callable[[OutboundClient], Awaitable[None]]:
        async def run(_client: OutboundClient) -> None:
            data = os.urandom(chunk_size)

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(size // chunk_size):
                    yield data

            blob = await store.write(chunks(), limit=LIMIT)
            await store.delete(blob.key)

        return run

    # Each step gets a new client, so no step reuses a connection an earlier one kept.
    steps: list[tuple[str, Callable[[OutboundClient], Awaitable[None]]]] = [
        ("sha256 alone (hashlib, 1 MiB pieces in memory)", sha256_alone),
        ("httpx stream (for comparison), discard", client_only),
        ("httpx stream (for comparison) + sha256", client_hash),
        ("maxgate fetch() (guard, deadlines), discard", maxgate_fetch),
        ("fetch() + BlobStore.write = sendFileByUrl", sendfilebyurl_path),
        ("fetch() + sha256 + os.write on the loop", inline_file),
        ("BlobStore.write from memory, 256 KiB chunks", from_memory(256 * 1024)),
        ("BlobStore.write from memory, 1 MiB chunks", from_memory(MIB)),
    ]
    sha = {True: "with SHA extensions", False: "without SHA extensions", None: "?"}
    print(
        f"pieces of sendFileByUrl for {size / MIB:.0f} MiB, one core (CPU = process time), "
        f"CPU {sha[has_sha_extensions()]}:"
    )
    for name, step in steps:
        os.sync()
        async with outbound_client(guard, timeout=600) as client:
            cpu, wall = time.process_time(), time.perf_counter()
            await step(client)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"  {name:<46} {size / MIB / wall:6.0f} MiB/s  {cpu:5.2f} s CPU", flush=True)


def breakdown(url: str, folder: Path) -> list[str]:
    """Run the probe in a fresh process pinned to the server CPU; its output lines."""
    python = str(VENV_BIN / "python")
    done = subprocess.run(
        ["taskset", "-c", SERVER_CPU, python, "-m", "bench.ioprobe", url, str(folder)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        cwd=REPO,
    )
    if done.returncode != 0:
        return [f"ioprobe failed: {done.stderr.strip()[-500:]}"]
    return done.stdout.splitlines()


if __name__ == "__main__":
    length = int(httpx.head(sys.argv[1]).headers["content-length"])
    asyncio.run(_probe(sys.argv[1], Path(sys.argv[2]), length))
