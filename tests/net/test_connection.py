"""One outbound connection (``maxgate.net.connection``) and the two ways ``fetch`` reads a body
through it: a ``Content-Length`` body straight from the stream, past h11, and every other body
(chunked, read to the close, gzip) through h11. Both must give the same bytes and the same
errors, against real servers on loopback.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import socket
import struct
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from maxgate.blobs import BlobStore
from maxgate.errors import OutboundError
from maxgate.net.client import outbound_client
from maxgate.net.connection import BROKEN_READ, Connection
from maxgate.net.http import fetch
from tests.net.test_http import (
    LOOPBACK,
    Handler,
    Request,
    ServerFactory,
    answer,
    chunked,
    get,
    redirect,
    response,
    steady,
)
from tests.net.test_http import serve as serve  # the fixture (re-exported, so pytest finds it)


@pytest.fixture
def claims(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The lengths ``fetch`` read past h11 during the test (``Connection.sized_body``)."""
    lengths: list[int] = []
    sized_body = Connection.sized_body

    def spy(self: Connection, length: int) -> AsyncGenerator[bytes, None]:
        lengths.append(length)
        return sized_body(self, length)

    monkeypatch.setattr(Connection, "sized_body", spy)
    return lengths


# --- the head ends where h11 ends it; the bytes after it are the body's -------------------


def pieces(*parts: bytes) -> Handler:
    """Writes ``parts`` one by one, a moment apart (so each arrives as its own read)."""

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        for part in parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.02)

    return handler


@pytest.mark.parametrize(
    "parts",
    [
        [b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody"],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r", b"\nbody"],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n", b"\r\nbo", b"dy"],
        [b"HTTP/1.1 200 OK\nContent-Length: 4\n\nbody"],  # h11 allows bare \n
        [b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", b"b", b"o", b"d", b"y"],
    ],
    ids=["one-piece", "split-blank-line", "split-body", "bare-newlines", "trickle"],
)
async def test_the_body_is_what_follows_the_head(
    serve: ServerFactory, claims: list[int], parts: list[bytes]
) -> None:
    server = await serve(pieces(*parts))
    async with outbound_client(LOOPBACK) as client:
        _, body = await get(client, server.url(), LOOPBACK)
    assert body == b"body"
    assert claims == [4]


# --- fetch: which bodies are read past h11 -------------------------------------------------


async def test_a_sized_body_is_read_past_h11(
    serve: ServerFactory, tmp_path: Path, claims: list[int]
) -> None:
    data = bytes(range(256)) * (12 * 1024 + 7)  # ~3 MiB, not a multiple of any read size
    server = await serve(answer(body=data, headers=[("Content-Type", "application/pdf")]))
    blobs = BlobStore(tmp_path.as_uri())
    url = server.url("/a.pdf")
    async with (
        outbound_client(LOOPBACK) as client,
        fetch(client, url, guard=LOOPBACK, limit=len(data)) as (head, body),
    ):
        assert (head.content_length, head.content_type) == (len(data), "application/pdf")
        blob = await blobs.write(body, limit=len(data))
    assert claims == [len(data)]
    assert (blob.sha256, blob.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert await blobs.read_all(blob.key) == data
    assert server.requests[0].headers["connection"] == "close"


async def test_a_slow_sized_body_arrives_whole(serve: ServerFactory, claims: list[int]) -> None:
    server = await serve(steady(total=3000, piece=300, gap=0.02))
    async with outbound_client(LOOPBACK, timeout=5) as client:
        _, body = await get(client, server.url(), LOOPBACK, deadline=5)
    assert body == b"s" * 3000
    assert claims == [3000]


async def test_bytes_past_the_length_are_not_the_body(
    serve: ServerFactory, claims: list[int]
) -> None:
    async def overlong(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(response(body=b"", headers=[("Content-Length", "5")], length=False))
        writer.write(b"12345 and more")

    server = await serve(overlong)
    async with outbound_client(LOOPBACK) as client:
        _, body = await get(client, server.url(), LOOPBACK, limit=5)
    assert body == b"12345"
    assert claims == [5]


async def test_redirect_hops_are_fresh_connections(serve: ServerFactory, claims: list[int]) -> None:
    """Every request asks for "Connection: close", redirect hops too: each answer is the first
    on its connection, and its body can be read past h11."""

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        if request.target == "/file.bin":
            writer.write(response(body=b"the file"))
        else:
            writer.write(response(302, headers=[("Location", "/file.bin")]))

    server = await serve(handler)
    async with outbound_client(LOOPBACK) as client:
        head, body = await get(client, server.url("/download"), LOOPBACK)
    assert (body, head.url) == (b"the file", server.url("/file.bin"))
    assert claims == [8]
    assert [r.headers["connection"] for r in server.requests] == ["close", "close"]
    assert server.connections == 2


async def test_credentials_stay_on_their_origin(serve: ServerFactory, claims: list[int]) -> None:
    other = await serve(answer(body=b"elsewhere"), host="127.0.0.2")
    start = await serve(redirect(other.url("/x")))
    async with outbound_client(LOOPBACK) as client:
        _, body = await get(client, start.url().replace("://", "://alice:s3cret@"), LOOPBACK)
    assert body == b"elsewhere"
    assert "authorization" in start.requests[0].headers
    assert "authorization" not in other.requests[0].headers
    assert claims == [9]


async def close_delimited(request: Request, writer: asyncio.StreamWriter) -> None:
    writer.write(response(body=b"no length, read to the close", length=False))


def interim_then(body: bytes) -> Handler:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + response(body=body))

    return handler


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (chunked(3000), b"y" * 3000),
        (
            answer(body=gzip.compress(b"z" * 3000), headers=[("Content-Encoding", "gzip")]),
            b"z" * 3000,
        ),
        (close_delimited, b"no length, read to the close"),
    ],
    ids=["chunked", "gzip", "close-delimited"],
)
async def test_other_bodies_are_read_through_h11(
    serve: ServerFactory, claims: list[int], handler: Handler, expected: bytes
) -> None:
    server = await serve(handler)
    async with outbound_client(LOOPBACK) as client:
        _, body = await get(client, server.url(), LOOPBACK, limit=10_000)
    assert body == expected
    assert claims == []


async def test_an_interim_answer_is_skipped(serve: ServerFactory, claims: list[int]) -> None:
    server = await serve(interim_then(b"after 100"))
    async with outbound_client(LOOPBACK) as client:
        _, body = await get(client, server.url(), LOOPBACK)
    assert body == b"after 100"
    assert claims == [9]  # the final answer's body, past h11 too


# --- fetch: the same errors whichever path reads the body ----------------------------------


async def half_a_body(writer: asyncio.StreamWriter, framing: str, chunk: bytes) -> None:
    """The head of a 1000-byte answer and 500 bytes of it (in ``chunk``'s framing if chunked)."""
    if framing == "length":
        writer.write(response(body=b"", headers=[("Content-Length", "1000")], length=False))
        writer.write(b"x" * 500)
    else:
        writer.write(response(headers=[("Transfer-Encoding", "chunked")], length=False))
        writer.write(chunk)
    await writer.drain()


def cut(*, framing: str, reset: bool) -> Handler:
    """Half of a 1000-byte body, then the connection is closed (or reset)."""

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        await half_a_body(writer, framing, b"3e8\r\n" + b"x" * 500)
        await asyncio.sleep(0.05)
        if reset:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()

    return handler


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_a_body_cut_short_breaks_the_connection(
    serve: ServerFactory, claims: list[int], framing: str, reset: bool
) -> None:
    server = await serve(cut(framing=framing, reset=reset))
    async with outbound_client(LOOPBACK) as client:
        with pytest.raises(OutboundError) as info:
            await get(client, server.url(), LOOPBACK)
    assert str(info.value) == BROKEN_READ == "the connection broke while reading the answer"
    assert claims == ([1000] if framing == "length" else [])


def stall(*, framing: str) -> Handler:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        await half_a_body(writer, framing, b"1f4\r\n" + b"x" * 500 + b"\r\n")
        await asyncio.sleep(3600)

    return handler


@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_a_stalled_body_times_out_after_the_read_timeout(
    serve: ServerFactory, framing: str
) -> None:
    server = await serve(stall(framing=framing))
    async with outbound_client(LOOPBACK, timeout=0.2) as client:
        with pytest.raises(OutboundError) as info:
            await get(client, server.url(), LOOPBACK, deadline=30)
    assert str(info.value) == "timed out after 0.2 s"


@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_a_stalled_body_is_cut_at_the_deadline(serve: ServerFactory, framing: str) -> None:
    server = await serve(stall(framing=framing))
    async with outbound_client(LOOPBACK, timeout=5) as client:
        with pytest.raises(OutboundError) as info:
            await get(client, server.url(), LOOPBACK, deadline=0.3, min_rate=1e9)
    assert str(info.value) == "timed out after 0.3 s"
