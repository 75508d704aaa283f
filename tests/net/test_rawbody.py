"""Bodies read past h11 (``maxgate.net.rawbody``): the stream that splits the first head from its
body, and ``fetch`` against real servers on loopback, for bodies it reads itself and bodies it
leaves to httpx; both must give the same bytes and the same errors.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import socket
import ssl
import struct
from pathlib import Path

import httpcore
import pytest

from maxgate.blobs import BlobStore
from maxgate.errors import OutboundError
from maxgate.net.http import fetch, outbound_client
from maxgate.net.rawbody import BROKEN_READ, READ_SIZE, SplitHeadStream
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

HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"


@pytest.fixture
def claims(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What ``claim_body`` answered during the test (True: fetch read the body itself)."""
    answers: list[bool] = []
    claim = SplitHeadStream.claim_body

    def spy(self: SplitHeadStream) -> bool:
        answers.append(claim(self))
        return answers[-1]

    monkeypatch.setattr(SplitHeadStream, "claim_body", spy)
    return answers


# --- the stream ----------------------------------------------------------------------------


async def test_the_first_head_is_handed_out_alone() -> None:
    stream = SplitHeadStream(httpcore.AsyncMockStream([HEAD + b"body", b"more"]))
    assert await stream.read(65536) == HEAD
    assert stream.claim_body()
    assert not stream.claim_body()  # once
    assert await stream.read(65536) == b"body"  # held back, then the socket's
    assert await stream.read(65536) == b"more"


@pytest.mark.parametrize(
    ("chunks", "head"),
    [
        ([b"HTTP/1.1 200 OK\r\nA: b\r\n\r", b"\nbody"], b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n"),
        ([b"HTTP/1.1 200 OK\r\nA: b\r\n", b"\r\nbody"], b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n"),
        ([b"HTTP/1.1 200 OK\nA: b\n\nbody"], b"HTTP/1.1 200 OK\nA: b\n\n"),  # h11 allows bare \n
    ],
)
async def test_a_head_end_is_found_where_h11_finds_it(chunks: list[bytes], head: bytes) -> None:
    stream = SplitHeadStream(httpcore.AsyncMockStream(list(chunks)))
    handed = b""
    while not stream.claim_body():
        handed += await stream.read(65536)
    assert handed == head
    assert await stream.read(65536) == b"body"


async def test_a_body_httpcore_has_read_is_not_claimed() -> None:
    stream = SplitHeadStream(httpcore.AsyncMockStream([HEAD + b"body"]))
    assert await stream.read(65536) == HEAD
    assert await stream.read(65536) == b"body"  # h11 has it now
    assert not stream.claim_body()


async def test_only_the_first_answer_on_a_connection_is_split() -> None:
    second = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    stream = SplitHeadStream(httpcore.AsyncMockStream([HEAD + b"body", second]))
    assert await stream.read(65536) == HEAD
    assert await stream.read(65536) == b"body"
    await stream.write(b"GET /next HTTP/1.1\r\n\r\n")
    assert await stream.read(65536) == second  # whole: h11 may still hold bytes of the first
    assert not stream.claim_body()


async def test_tls_streams_are_never_split() -> None:
    plain = SplitHeadStream(httpcore.AsyncMockStream([HEAD + b"body"]))
    secure = await plain.start_tls(ssl.create_default_context(), "example.test")
    assert isinstance(secure, SplitHeadStream)
    assert await secure.read(65536) == HEAD + b"body"
    assert not secure.claim_body()


async def test_reads_are_large() -> None:
    class Recording(httpcore.AsyncMockStream):
        asked: list[int] = []

        async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            self.asked.append(max_bytes)
            return await super().read(max_bytes, timeout)

    await SplitHeadStream(Recording([HEAD])).read(65536)
    assert Recording.asked == [READ_SIZE]


# --- fetch: which bodies are read past h11 -------------------------------------------------


async def test_a_sized_body_is_read_past_h11(
    serve: ServerFactory, tmp_path: Path, claims: list[bool]
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
    assert claims == [True]
    assert (blob.sha256, blob.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert await blobs.read_all(blob.key) == data
    assert server.requests[0].headers["connection"] == "close"


async def test_a_slow_sized_body_arrives_whole(serve: ServerFactory, claims: list[bool]) -> None:
    server = await serve(steady(total=3000, piece=300, gap=0.02))
    async with outbound_client(LOOPBACK, timeout=5) as client:
        _, body = await get(client, server.url(), LOOPBACK, deadline=5)
    assert body == b"s" * 3000
    assert claims == [True]


async def test_bytes_past_the_length_are_not_the_body(
    serve: ServerFactory, claims: list[bool]
) -> None:
    async def overlong(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(response(body=b"", headers=[("Content-Length", "5")], length=False))
        writer.write(b"12345 and more")

    server = await serve(overlong)
    async with outbound_client(LOOPBACK) as client:
        _, body = await get(client, server.url(), LOOPBACK, limit=5)
    assert body == b"12345"
    assert claims == [True]


async def test_redirect_hops_are_fresh_connections(
    serve: ServerFactory, claims: list[bool]
) -> None:
    """Every request asks for "Connection: close", redirect hops too, so that the final body
    is the first answer on its connection and can be read past h11."""

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        if request.target == "/file.bin":
            writer.write(response(body=b"the file"))
        else:
            writer.write(response(302, headers=[("Location", "/file.bin")]))

    server = await serve(handler)
    async with outbound_client(LOOPBACK) as client:
        head, body = await get(client, server.url("/download"), LOOPBACK)
    assert (body, head.url) == (b"the file", server.url("/file.bin"))
    assert claims == [True]
    assert [r.headers["connection"] for r in server.requests] == ["close", "close"]
    assert server.connections == 2


async def test_credentials_stay_on_their_origin(serve: ServerFactory, claims: list[bool]) -> None:
    other = await serve(answer(body=b"elsewhere"), host="127.0.0.2")
    start = await serve(redirect(other.url("/x")))
    async with outbound_client(LOOPBACK) as client:
        _, body = await get(client, start.url().replace("://", "://alice:s3cret@"), LOOPBACK)
    assert body == b"elsewhere"
    assert "authorization" in start.requests[0].headers
    assert "authorization" not in other.requests[0].headers
    assert claims[-1] is True


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
        (interim_then(b"after 100"), b"after 100"),
    ],
    ids=["chunked", "gzip", "close-delimited", "interim-answer"],
)
async def test_other_bodies_are_left_to_httpx(
    serve: ServerFactory, claims: list[bool], handler: Handler, expected: bytes
) -> None:
    server = await serve(handler)
    async with outbound_client(LOOPBACK) as client:
        _, body = await get(client, server.url(), LOOPBACK, limit=10_000)
    assert body == expected
    assert True not in claims


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
    serve: ServerFactory, claims: list[bool], framing: str, reset: bool
) -> None:
    server = await serve(cut(framing=framing, reset=reset))
    async with outbound_client(LOOPBACK) as client:
        with pytest.raises(OutboundError) as info:
            await get(client, server.url(), LOOPBACK)
    assert str(info.value) == BROKEN_READ == "the connection broke while reading the answer"
    assert claims == ([True] if framing == "length" else [])


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
