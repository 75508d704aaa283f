"""The outbound client and ``fetch`` against real sockets on loopback addresses only.

Small asyncio HTTP servers are started per test on 127.0.0.x / ::1 with port 0. Names other
than ``localhost`` are resolved by a fake resolver (the client's ``resolver`` seam) to
loopback addresses, so nothing here ever leaves the machine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import gzip
import hashlib
import ipaddress
import logging
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from maxgate.blobs import BlobStore
from maxgate.errors import OutboundBlocked, OutboundError, SizeLimitExceeded
from maxgate.net.client import OutboundClient, outbound_client
from maxgate.net.connection import Resolver, Stream, open_connection
from maxgate.net.http import FetchedHead, fetch
from maxgate.net.urlguard import IPAddress, UrlGuard, parse_allow_list

LOOPBACK = UrlGuard(parse_allow_list("127.0.0.0/8, ::1/128"))
ONLY_127_0_0_1 = UrlGuard(parse_allow_list("127.0.0.1/32"))
LIMIT = 1 << 20


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")


# --- a tiny HTTP/1.1 server ----------------------------------------------------------------


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


def response(
    status: int = 200,
    body: bytes = b"",
    *,
    headers: Sequence[tuple[str, str]] = (),
    length: bool = True,
) -> bytes:
    head = [f"HTTP/1.1 {status} Whatever", "Connection: close"]
    head += [f"{name}: {value}" for name, value in headers]
    if length:
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def answer(
    status: int = 200, body: bytes = b"", *, headers: Sequence[tuple[str, str]] = ()
) -> Handler:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(response(status, body, headers=headers))

    return handler


def redirect(location: str) -> Handler:
    return answer(302, headers=[("Location", location)])


async def hang(request: Request, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)


@dataclass
class Server:
    """Serves ``handler`` on ``host``; records the requests and the connections it got."""

    handler: Handler
    host: str = "127.0.0.1"
    port: int = 0
    ssl_context: ssl.SSLContext | None = None
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def start(self) -> Server:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, path: str = "/", *, scheme: str = "http", host: str | None = None) -> str:
        host = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"{scheme}://{host}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            request = Request(method, target, headers)
            self.requests.append(request)
            await self.handler(request, writer)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._tasks.discard(task)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


ServerFactory = Callable[..., Awaitable[Server]]


@pytest.fixture
async def serve() -> AsyncIterator[ServerFactory]:
    servers: list[Server] = []

    async def start(handler: Handler, host: str = "127.0.0.1", **kwargs: Any) -> Server:
        server = await Server(handler, host, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def fake_resolver(*answers: dict[str, list[str]]) -> tuple[Resolver, list[str]]:
    """A resolver that gives the n-th lookup the n-th answer (the last one repeats)."""
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[IPAddress]:
        answer = answers[min(len(calls), len(answers) - 1)]
        calls.append(host)
        if host not in answer:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(a) for a in answer[host]]

    return resolve, calls


async def get(
    client: OutboundClient, url: str, guard: UrlGuard, **kwargs: Any
) -> tuple[FetchedHead, bytes]:
    async with fetch(client, url, guard=guard, limit=kwargs.pop("limit", LIMIT), **kwargs) as (
        head,
        body,
    ):
        return head, b"".join([chunk async for chunk in body])


# --- the guard at connect time -------------------------------------------------------------


async def test_loopback_is_blocked_by_default(serve: ServerFactory) -> None:
    server = await serve(answer(body=b"secret"))
    guard = UrlGuard()
    async with outbound_client(guard) as client:
        with pytest.raises(OutboundBlocked, match=r"^address 127\.0\.0\.1 is not allowed"):
            await get(client, server.url(), guard)
    assert server.connections == 0


async def test_names_are_checked_at_connect_time(serve: ServerFactory) -> None:
    """A name passes check_url; the connection to what it resolves to is what gets refused."""
    server = await serve(answer(body=b"secret"))
    guard = UrlGuard()
    guard.check_url(server.url(host="localhost"))  # no complaint before connecting
    async with outbound_client(guard) as client:
        with pytest.raises(OutboundBlocked) as info:
            await get(client, server.url(host="localhost"), guard)
    assert str(info.value) == "host localhost resolves to a blocked address (loopback)"
    assert server.connections == 0


async def test_allow_listed_loopback_is_fetched(serve: ServerFactory) -> None:
    server = await serve(answer(body=b"hello", headers=[("Content-Type", "Text/Plain; x=1")]))
    async with outbound_client(LOOPBACK, user_agent="maxgate-test") as client:
        head, body = await get(client, server.url("/files/report.txt"), LOOPBACK)
    assert body == b"hello"
    assert head == FetchedHead(
        url=server.url("/files/report.txt"),
        content_type="text/plain",
        content_length=5,
        filename="report.txt",
    )
    (request,) = server.requests
    assert request.headers["user-agent"] == "maxgate-test"
    assert request.headers["accept-encoding"] == "identity"


async def test_localhost_is_resolved(serve: ServerFactory) -> None:
    infos = socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)
    server = await serve(answer(body=b"via name"), host=infos[0][4][0])
    async with outbound_client(LOOPBACK) as client:
        head, body = await get(client, server.url("/x", host="localhost"), LOOPBACK)
    assert body == b"via name"
    assert head.url == server.url("/x", host="localhost")


@needs_ipv6
async def test_ipv6_loopback(serve: ServerFactory) -> None:
    server = await serve(answer(body=b"six"), host="::1")
    async with outbound_client(UrlGuard()) as client:
        with pytest.raises(OutboundBlocked, match=r"address ::1 is not allowed \(loopback\)"):
            await get(client, server.url(), UrlGuard())
    async with outbound_client(LOOPBACK) as client:
        _, body = await get(client, server.url(), LOOPBACK)
    assert body == b"six"


async def test_redirect_into_a_blocked_address_is_refused(serve: ServerFactory) -> None:
    inner = await serve(answer(body=b"internal"), host="127.0.0.2")
    outer = await serve(redirect(inner.url("/admin")))
    async with outbound_client(ONLY_127_0_0_1) as client:
        with pytest.raises(OutboundBlocked, match=r"address 127\.0\.0\.2 is not allowed"):
            await get(client, outer.url(), ONLY_127_0_0_1)
    assert outer.connections == 1
    assert inner.connections == 0


@needs_ipv6
async def test_redirect_to_a_name_resolving_to_a_blocked_address(serve: ServerFactory) -> None:
    inner = await serve(answer(body=b"internal"), host="::1")
    outer = await serve(redirect(inner.url("/", host="sneaky.test")))
    resolver, calls = fake_resolver({"sneaky.test": ["::1"]})
    async with outbound_client(ONLY_127_0_0_1, resolver=resolver) as client:
        with pytest.raises(OutboundBlocked, match=r"host sneaky\.test resolves to a blocked"):
            await get(client, outer.url(), ONLY_127_0_0_1)
    assert calls == ["sneaky.test"]  # refused by the connect-time check
    assert inner.connections == 0


async def test_redirects_between_allowed_names_are_followed(serve: ServerFactory) -> None:
    final = await serve(answer(body=b"done"))
    middle = await serve(redirect(final.url("/end", host="b.test")))
    first = await serve(redirect(middle.url("/next", host="a.test")))
    resolver, calls = fake_resolver({"a.test": ["127.0.0.1"], "b.test": ["127.0.0.1"]})
    async with outbound_client(ONLY_127_0_0_1, resolver=resolver) as client:
        head, body = await get(client, first.url(), ONLY_127_0_0_1)
    assert body == b"done"
    assert head.url == final.url("/end", host="b.test")
    assert calls == ["a.test", "b.test"]


async def test_redirect_to_another_scheme_is_refused(serve: ServerFactory) -> None:
    server = await serve(redirect("ftp://127.0.0.1/file"))
    async with outbound_client(LOOPBACK) as client:
        with pytest.raises(OutboundBlocked, match="scheme ftp is not allowed, only http and https"):
            await get(client, server.url(), LOOPBACK)


async def test_too_many_redirects(serve: ServerFactory) -> None:
    server = await serve(redirect("/again"))
    async with outbound_client(LOOPBACK, max_redirects=2) as client:
        with pytest.raises(OutboundError, match=r"^too many redirects \(more than 2\)$"):
            await get(client, server.url(), LOOPBACK)
    assert server.connections == 3


async def test_mixed_answers_are_refused(serve: ServerFactory) -> None:
    server = await serve(answer(body=b"x"))
    resolver, _ = fake_resolver({"mixed.test": ["127.0.0.1", "127.0.0.2"]})
    async with outbound_client(ONLY_127_0_0_1, resolver=resolver) as client:
        with pytest.raises(OutboundBlocked, match=r"mixed\.test resolves to a blocked"):
            await get(client, server.url(host="mixed.test"), ONLY_127_0_0_1)
    assert server.connections == 0


async def test_dns_rebinding_cannot_slip_past(serve: ServerFactory) -> None:
    """First lookup answers an allowed address, the second a blocked one (same port)."""
    good = await serve(answer(body=b"public"))
    evil = await serve(answer(body=b"internal"), host="127.0.0.2", port=good.port)
    resolver, calls = fake_resolver({"rebind.test": ["127.0.0.1"]}, {"rebind.test": ["127.0.0.2"]})
    url = good.url("/", host="rebind.test")
    async with outbound_client(ONLY_127_0_0_1, resolver=resolver) as client:
        _, body = await get(client, url, ONLY_127_0_0_1)
        assert body == b"public"
        with pytest.raises(OutboundBlocked):  # "Connection: close", so a new connection
            await get(client, url, ONLY_127_0_0_1)
    assert calls == ["rebind.test", "rebind.test"]  # one lookup per connection
    assert good.connections == 1
    assert evil.connections == 0


async def test_the_checked_address_is_the_connected_address(serve: ServerFactory) -> None:
    server = await serve(hang)
    resolver, calls = fake_resolver({"flip.test": ["127.0.0.1"]}, {"flip.test": ["127.0.0.2"]})
    key = ("http", "flip.test", server.port)
    connection = await open_connection(key, ONLY_127_0_0_1, timeout=1, resolver=resolver)
    assert connection.stream.transport is not None
    assert connection.stream.transport.get_extra_info("peername")[0] == "127.0.0.1"
    connection.close()
    with pytest.raises(OutboundBlocked):
        await open_connection(key, ONLY_127_0_0_1, timeout=1, resolver=resolver)
    assert calls == ["flip.test", "flip.test"]  # one lookup per connection, connected by IP


async def test_literal_addresses_are_checked_at_connect_time() -> None:
    async def no_dns(host: str, port: int) -> list[IPAddress]:
        raise AssertionError("an IP literal is never looked up")

    for host, shown in (
        ("127.0.0.2", r"127\.0\.0\.2"),
        ("::ffff:127.0.0.2", r"::ffff:127\.0\.0\.2"),
    ):
        with pytest.raises(OutboundBlocked, match=rf"address {shown} is not allowed"):
            await open_connection(("http", host, 80), ONLY_127_0_0_1, timeout=1, resolver=no_dns)


async def test_unusual_spellings_of_loopback_are_resolved_then_refused(
    serve: ServerFactory,
) -> None:
    server = await serve(answer(body=b"secret"))
    async with outbound_client(UrlGuard()) as client:
        for host in ("127.1", "0x7f.0.0.1", "2130706433", "017700000001"):
            with pytest.raises(OutboundBlocked, match="resolves to a blocked address"):
                await client.connect(("http", host, server.port))  # past check_url's own test
    assert server.connections == 0


async def test_proxy_environment_is_ignored(
    serve: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = await serve(answer(body=b"from proxy"))
    origin = await serve(answer(body=b"direct"))
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy.url())
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with outbound_client(LOOPBACK) as client:
        _, body = await get(client, origin.url(), LOOPBACK)
    assert body == b"direct"
    assert proxy.connections == 0


# --- errors --------------------------------------------------------------------------------


async def test_status_404(serve: ServerFactory) -> None:
    server = await serve(answer(404, b"nope"))
    async with outbound_client(LOOPBACK) as client:
        with pytest.raises(OutboundError) as info:
            await get(client, server.url("/missing"), LOOPBACK)
    assert str(info.value) == "server answered 404"
    assert not isinstance(info.value, OutboundBlocked)


async def test_connection_refused() -> None:
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with outbound_client(LOOPBACK) as client:
        with pytest.raises(OutboundError) as info:
            await get(client, f"http://127.0.0.1:{port}/", LOOPBACK)
    assert str(info.value) == "connection refused"
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


async def test_unknown_host() -> None:
    resolver, _ = fake_resolver({})
    async with outbound_client(LOOPBACK, resolver=resolver) as client:
        with pytest.raises(OutboundError) as info:
            await get(client, "http://nowhere.test/", LOOPBACK)
    assert str(info.value) == "host nowhere.test could not be resolved"


async def test_slow_resolver_times_out() -> None:
    async def slow(host: str, port: int) -> list[IPAddress]:
        await asyncio.sleep(10)
        return []

    async with outbound_client(LOOPBACK, resolver=slow, timeout=0.2) as client:
        with pytest.raises(OutboundError, match=r"^timed out after 0\.2 s$"):
            await get(client, "http://slow.test/", LOOPBACK)


async def test_server_that_never_answers_times_out(serve: ServerFactory) -> None:
    server = await serve(hang)
    async with outbound_client(LOOPBACK, timeout=0.2) as client:
        with pytest.raises(OutboundError) as info:
            await get(client, server.url(), LOOPBACK)
    assert str(info.value) == "timed out after 0.2 s"


async def trickle(request: Request, writer: asyncio.StreamWriter) -> None:
    writer.write(response(body=b"", headers=[("Transfer-Encoding", "chunked")], length=False))
    while True:
        writer.write(b"1\r\nx\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)


async def test_overall_deadline(serve: ServerFactory) -> None:
    server = await serve(trickle)
    async with outbound_client(LOOPBACK, timeout=5) as client:
        with pytest.raises(OutboundError, match=r"^timed out after 0\.3 s$"):
            await get(client, server.url(), LOOPBACK, deadline=0.3)


async def test_deadline_covers_waiting_for_the_head(serve: ServerFactory) -> None:
    server = await serve(hang)
    async with outbound_client(LOOPBACK, timeout=5) as client:
        with pytest.raises(OutboundError, match=r"^timed out after 0\.2 s$"):
            await get(client, server.url(), LOOPBACK, deadline=0.2)


async def test_invalid_response(serve: ServerFactory) -> None:
    async def garbage(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"this is not http\r\n\r\n")

    server = await serve(garbage)
    async with outbound_client(LOOPBACK) as client:
        with pytest.raises(OutboundError, match="invalid HTTP response"):
            await get(client, server.url(), LOOPBACK)


async def test_fetch_refuses_other_schemes_before_any_traffic() -> None:
    async with outbound_client(LOOPBACK) as client:
        for url in ("ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://127.0.0.1:70/_x"):
            with pytest.raises(OutboundBlocked, match="only http and https"):
                await get(client, url, LOOPBACK)


# --- size limits ---------------------------------------------------------------------------


async def test_content_length_over_limit_fails_early(serve: ServerFactory) -> None:
    async def big(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(response(body=b"", headers=[("Content-Length", "5000")], length=False))
        await writer.drain()
        await asyncio.sleep(3600)  # the body never comes: it must not be awaited

    server = await serve(big)
    async with outbound_client(LOOPBACK, timeout=5) as client:
        with pytest.raises(SizeLimitExceeded) as info:
            async with fetch(client, server.url(), guard=LOOPBACK, limit=1000):
                pytest.fail("the body should not be offered")
    assert (info.value.size, info.value.limit) == (5000, 1000)


def chunked(total: int, piece: int = 100) -> Handler:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(response(headers=[("Transfer-Encoding", "chunked")], length=False))
        sent = 0
        while sent < total:
            size = min(piece, total - sent)
            writer.write(f"{size:x}\r\n".encode() + b"y" * size + b"\r\n")
            await writer.drain()
            sent += size
        writer.write(b"0\r\n\r\n")

    return handler


async def test_streamed_body_over_limit(serve: ServerFactory) -> None:
    server = await serve(chunked(5000))
    received = 0
    async with outbound_client(LOOPBACK) as client:
        with pytest.raises(SizeLimitExceeded) as info:
            async with fetch(client, server.url(), guard=LOOPBACK, limit=1000) as (head, body):
                assert head.content_length is None
                async for chunk in body:
                    received += len(chunk)
    assert received <= 1000  # the chunk that crosses the limit is never handed out
    assert info.value.limit == 1000
    assert info.value.size > 1000


async def test_body_of_exactly_the_limit(serve: ServerFactory) -> None:
    server = await serve(chunked(1000))
    async with outbound_client(LOOPBACK) as client:
        _, body = await get(client, server.url(), LOOPBACK, limit=1000)
    assert body == b"y" * 1000


async def test_encoded_body_is_limited_after_decoding(serve: ServerFactory) -> None:
    packed = gzip.compress(b"z" * 5000)
    server = await serve(answer(body=packed, headers=[("Content-Encoding", "gzip")]))
    async with outbound_client(LOOPBACK) as client:
        head, body = await get(client, server.url(), LOOPBACK)
        assert body == b"z" * 5000
        assert head.content_length is None  # the header counts encoded bytes
        with pytest.raises(SizeLimitExceeded):
            await get(client, server.url(), LOOPBACK, limit=1000)


@pytest.mark.parametrize("wrap", [True, False], ids=["zlib", "raw-deflate"])
async def test_a_deflate_body_is_decoded(serve: ServerFactory, wrap: bool) -> None:
    packer = zlib.compressobj(wbits=zlib.MAX_WBITS if wrap else -zlib.MAX_WBITS)
    packed = packer.compress(b"d" * 4000) + packer.flush()
    server = await serve(answer(body=packed, headers=[("Content-Encoding", "deflate")]))
    async with outbound_client(LOOPBACK) as client:
        _, body = await get(client, server.url(), LOOPBACK)
    assert body == b"d" * 4000


async def test_a_body_that_does_not_decode(serve: ServerFactory) -> None:
    server = await serve(answer(body=b"not gzip at all", headers=[("Content-Encoding", "gzip")]))
    async with outbound_client(LOOPBACK) as client:
        with pytest.raises(OutboundError, match=r"^the server sent a body that could not be"):
            await get(client, server.url(), LOOPBACK)


# --- head: file name, URL ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("disposition", "path", "filename"),
    [
        ('attachment; filename="plain.txt"', "/x", "plain.txt"),
        ("attachment; filename=bare.pdf", "/x", "bare.pdf"),
        (
            "attachment; filename=\"fallback.txt\"; filename*=UTF-8''%E2%82%AC%20rates.txt",
            "/x",
            "€ rates.txt",
        ),
        ("attachment; filename*=utf-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf", "/x", "отчёт.pdf"),
        ('inline; filename="a;b.txt"', "/x", "a;b.txt"),
        ('attachment; filename="../../etc/passwd"', "/x", "passwd"),
        ('attachment; filename="C:\\\\Users\\\\evil.exe"', "/x", "evil.exe"),
        ("attachment", "/dir/from%20path.png", "from path.png"),
        (None, "/dir/photo.jpg", "photo.jpg"),
        (None, "/dir/", None),
        (None, "/", None),
        ('attachment; filename=".."', "/", None),
    ],
)
async def test_filename(
    serve: ServerFactory, disposition: str | None, path: str, filename: str | None
) -> None:
    headers = [("Content-Disposition", disposition)] if disposition else []
    server = await serve(answer(body=b"f", headers=headers))
    async with outbound_client(LOOPBACK) as client:
        head, _ = await get(client, server.url(path), LOOPBACK)
    assert head.filename == filename


async def test_raw_utf8_filename(serve: ServerFactory) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n"
            + 'Content-Disposition: attachment; filename="фото.jpg"\r\n\r\nf'.encode()
        )

    server = await serve(handler)
    async with outbound_client(LOOPBACK) as client:
        head, _ = await get(client, server.url(), LOOPBACK)
    assert head.filename == "фото.jpg"


async def test_filename_from_the_final_url(serve: ServerFactory) -> None:
    final = await serve(answer(body=b"img", headers=[("Content-Type", "image/png")]))
    start = await serve(redirect(final.url("/images/cat.png")))
    async with outbound_client(LOOPBACK) as client:
        head, _ = await get(client, start.url("/short"), LOOPBACK)
    assert (head.url, head.filename, head.content_type) == (
        final.url("/images/cat.png"),
        "cat.png",
        "image/png",
    )


async def test_credentials_are_sent_but_never_shown(
    serve: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = await serve(answer(404))
    url = server.url("/private.bin").replace("://", "://alice:s3cret@")
    async with outbound_client(LOOPBACK) as client:
        with pytest.raises(OutboundError) as info:
            await get(client, url, LOOPBACK)
        with pytest.raises(OutboundBlocked) as blocked:
            await get(client, url.replace("127.0.0.1", "10.0.0.1"), LOOPBACK)
    (request,) = server.requests
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"alice:s3cret").decode(
        "ascii"
    )
    for text in (str(info.value), str(blocked.value), caplog.text):
        assert "s3cret" not in text
        assert "alice" not in text


async def test_client_keeps_credentials_out_of_logs(
    serve: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = await serve(answer(body=b"ok"))
    async with outbound_client(LOOPBACK) as client:
        _, body = await get(
            client, server.url("/hook").replace("://", "://alice:s3cret@"), LOOPBACK
        )
    assert body == b"ok"
    assert server.requests[0].headers["authorization"].startswith("Basic ")
    assert f"GET {server.url('/hook')}: 200" in caplog.text
    assert "s3cret" not in caplog.text
    assert "alice" not in caplog.text


async def test_final_url_has_no_credentials(serve: ServerFactory) -> None:
    server = await serve(answer(body=b"ok"))
    async with outbound_client(LOOPBACK) as client:
        head, _ = await get(client, server.url("/a").replace("://", "://u:p@"), LOOPBACK)
    assert head.url == server.url("/a")


# --- TLS: certificates are checked against the host name, not the connected address ------


@dataclass
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A throwaway CA and a certificate for the name ``localhost`` only (no IP SAN)."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("maxgate test CA"))
        .issuer_name(name("maxgate test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder: Path = tmp_path_factory.mktemp("tls")
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(folder / "leaf.pem", folder / "key.pem")
    client = ssl.create_default_context(cafile=str(folder / "ca.pem"))
    return Tls(server=server, client=client)


async def test_https_verifies_the_host_name(serve: ServerFactory, tls: Tls) -> None:
    server = await serve(answer(body=b"tls ok"), ssl_context=tls.server)
    resolver, calls = fake_resolver({"localhost": ["127.0.0.1"]})
    async with outbound_client(LOOPBACK, ssl_context=tls.client, resolver=resolver) as client:
        _, body = await get(client, server.url(scheme="https", host="localhost"), LOOPBACK)
    assert body == b"tls ok"
    assert calls == ["localhost"]  # connected to 127.0.0.1, verified as "localhost"


@pytest.mark.parametrize("host", ["127.0.0.1", "other.test"])
async def test_https_refuses_a_certificate_for_another_name(
    serve: ServerFactory, tls: Tls, host: str
) -> None:
    server = await serve(answer(body=b"tls ok"), ssl_context=tls.server)
    resolver, _ = fake_resolver({"other.test": ["127.0.0.1"]})
    async with outbound_client(LOOPBACK, ssl_context=tls.client, resolver=resolver) as client:
        with pytest.raises(OutboundError) as info:
            await get(client, server.url(scheme="https", host=host), LOOPBACK)
    assert str(info.value) == "the server's TLS certificate could not be verified"
    assert server.requests == []


async def test_https_uses_public_roots_by_default(serve: ServerFactory, tls: Tls) -> None:
    server = await serve(answer(body=b"tls ok"), ssl_context=tls.server)
    async with outbound_client(LOOPBACK) as client:
        with pytest.raises(OutboundError, match="certificate could not be verified"):
            await get(client, server.url(scheme="https", host="localhost"), LOOPBACK)


def steady(total: int, piece: int, gap: float) -> Handler:
    """A Content-Length body sent in pieces, ``gap`` seconds apart."""

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(response(headers=[("Content-Length", str(total))], length=False))
        for _ in range(total // piece):
            await writer.drain()
            await asyncio.sleep(gap)
            writer.write(b"s" * piece)

    return handler


async def test_the_deadline_grows_with_the_announced_size(serve: ServerFactory) -> None:
    """A body that keeps up min_rate may take longer than ``deadline``; a trickle may not."""
    server = await serve(steady(total=2000, piece=200, gap=0.05))  # 0.5 s at 4 kB/s
    async with outbound_client(LOOPBACK, timeout=5) as client:
        _, body = await get(client, server.url(), LOOPBACK, deadline=0.2, min_rate=2000)
        assert body == b"s" * 2000  # allowed: 0.2 s + 2000 B / 2000 B/s
        with pytest.raises(OutboundError, match=r"^timed out after 0\.4 s$"):
            await get(client, server.url(), LOOPBACK, deadline=0.2, min_rate=10_000)


async def test_a_large_body_is_stored_whole_through_large_reads(
    serve: ServerFactory, tmp_path: Path
) -> None:
    """Socket reads of up to 1 MiB (not httpcore's 64 KiB) still yield every byte, in order,
    and the blob store names the content by its sha256."""
    data = bytes(range(256)) * (12 * 1024 + 7)  # ~3 MiB, not a multiple of any read size
    server = await serve(answer(body=data))
    blobs = BlobStore(tmp_path.as_uri())
    async with outbound_client(LOOPBACK) as client:
        async with fetch(client, server.url(), guard=LOOPBACK, limit=len(data)) as (head, body):
            assert head.content_length == len(data)
            blob = await blobs.write(body, limit=len(data))
        with pytest.raises(SizeLimitExceeded):  # one byte over: refused before any read
            await get(client, server.url(), LOOPBACK, limit=len(data) - 1)
    assert (blob.sha256, blob.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert await blobs.read_all(blob.key) == data


async def test_bodies_are_handed_on_as_the_socket_delivers_them(
    serve: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a socket read returned reaches the caller as it is: no copy into a buffer."""
    received: list[bytes] = []
    data_received = Stream.data_received

    def spy(self: Stream, data: bytes) -> None:
        received.append(data)
        data_received(self, data)

    monkeypatch.setattr(Stream, "data_received", spy)
    data = bytes(range(256)) * 4096  # 1 MiB
    server = await serve(answer(body=data))
    async with (
        outbound_client(LOOPBACK) as client,
        fetch(client, server.url(), guard=LOOPBACK, limit=len(data)) as (_, body),
    ):
        chunks = [chunk async for chunk in body]
    assert b"".join(chunks) == data
    assert any(chunk is piece for chunk in chunks for piece in received)
