"""Webhook POSTs through the shared outbound client against real HTTP(S) servers on 127.0.0.1:
what they send, keep-alive, reconnecting, deadlines, redirects, TLS verification and the guard."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import http.server
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from maxgate.errors import OutboundBlocked, OutboundError
from maxgate.net.client import OutboundClient, outbound_client
from maxgate.net.poster import WebhookPoster
from maxgate.net.urlguard import UrlGuard

LOOPBACK = UrlGuard((ipaddress.ip_network("127.0.0.0/8"),))


class Seen:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes, tuple[str, int]]] = []
        self.answer_size = 0
        self.hang = 0.0
        self.close_after_answer = False
        self.status = 202


@contextmanager
def server(tls: ssl.SSLContext | None = None) -> Iterator[tuple[Seen, str]]:
    seen = Seen()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.requests.append((self.path, dict(self.headers.items()), body, self.client_address))
            if seen.hang:
                time.sleep(seen.hang)
            answer = b"x" * seen.answer_size
            self.send_response(seen.status)
            if seen.status == 307:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", str(len(answer)))
            if seen.close_after_answer:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client refusing our certificate aborts the handshake: expected

    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    try:
        yield seen, f"{scheme}://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.asynccontextmanager
async def poster_for(guard: UrlGuard = LOOPBACK, **options: Any) -> AsyncIterator[WebhookPoster]:
    async with outbound_client(guard, **options) as client:
        yield WebhookPoster(client)


async def test_posts_the_body_and_headers_and_keeps_the_connection() -> None:
    async with poster_for() as poster:
        with server() as (seen, base):
            for n in range(3):
                status = await poster.post(
                    base + "/hook?x=1", b'{"n":%d}' % n, {"X-Extra": "yes"}, deadline=5
                )
                assert status == 202
    paths = [r[0] for r in seen.requests]
    assert paths == ["/hook?x=1"] * 3
    assert [r[2] for r in seen.requests] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    headers = seen.requests[0][1]
    assert headers["Host"] == base.removeprefix("http://")
    assert headers["Content-Length"] == "7" and headers["X-Extra"] == "yes"
    assert headers["User-Agent"] == "maxgate"
    assert len({r[3] for r in seen.requests}) == 1  # one connection, kept


async def test_the_client_is_made_on_first_use() -> None:
    made: list[OutboundClient] = []

    def make() -> OutboundClient:
        made.append(outbound_client(LOOPBACK))
        return made[-1]

    poster = WebhookPoster(make)
    assert made == []
    with server() as (_seen, base):
        assert await poster.post(base + "/", b"{}", {}, deadline=5) == 202
        assert await poster.post(base + "/", b"{}", {}, deadline=5) == 202
    await poster.close()  # the client is not the poster's to close
    assert len(made) == 1 and not made[0].is_closed
    await made[0].aclose()


async def test_reconnects_when_the_receiver_closes_the_connection() -> None:
    async with poster_for() as poster:
        with server() as (seen, base):
            seen.close_after_answer = True
            for _ in range(3):
                assert await poster.post(base + "/", b"{}", {}, deadline=5) == 202
    assert len({r[3] for r in seen.requests}) == 3


async def test_the_deadline_covers_a_receiver_that_does_not_answer() -> None:
    async with poster_for() as poster:
        with server() as (seen, base):
            seen.hang = 2.0
            started = time.monotonic()
            with pytest.raises(OutboundError, match=r"^no answer within 0\.3 s$"):
                await poster.post(base + "/", b"{}", {}, deadline=0.3)
            assert time.monotonic() - started < 1.5
            seen.hang = 0
            assert await poster.post(base + "/", b"{}", {}, deadline=5) == 202  # a fresh one


async def test_a_huge_answer_is_not_read_to_the_end() -> None:
    async with poster_for() as poster:
        with server() as (seen, base):
            seen.answer_size = 10 * 1024 * 1024
            with pytest.raises(OutboundError, match="the answer is larger than 65536 bytes"):
                await poster.post(base + "/", b"{}", {}, deadline=5)


async def test_redirects_are_not_followed() -> None:
    async with poster_for() as poster:
        with server() as (seen, base):
            seen.status = 307
            assert await poster.post(base + "/", b"{}", {}, deadline=5) == 307
    assert len(seen.requests) == 1


async def test_a_refused_connection_is_an_outbound_error() -> None:
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with poster_for() as poster:
        with pytest.raises(OutboundError, match=r"^connection refused$"):
            await poster.post(f"http://127.0.0.1:{port}/", b"{}", {}, deadline=5)


async def test_user_info_becomes_basic_auth_unless_a_token_is_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with poster_for() as poster:
        with server() as (seen, base):
            with_user = base.replace("http://", "http://hook:pa55@")
            await poster.post(with_user + "/", b"{}", {}, deadline=5)
            await poster.post(with_user + "/", b"{}", {"Authorization": "Bearer t"}, deadline=5)
    assert seen.requests[0][1]["Authorization"] == "Basic aG9vazpwYTU1"
    assert seen.requests[1][1]["Authorization"] == "Bearer t"
    assert "pa55" not in caplog.text and "hook:" not in caplog.text


async def test_an_invalid_header_value_is_not_quoted_in_the_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """h11 quotes a header value it refuses; for a webhook token with a control character that
    message would carry the token into the log and the database."""
    caplog.set_level(logging.DEBUG)
    async with poster_for() as poster:
        with server() as (seen, url):
            with pytest.raises(OutboundError) as info:
                headers = {"Authorization": "Bearer S3CRET-token\nX-Injected: 1"}
                await poster.post(url, b"{}", headers, deadline=5)
            assert "S3CRET" not in str(info.value)
            assert info.value.__cause__ is None and info.value.__suppress_context__
            assert seen.requests == []
    assert "S3CRET" not in caplog.text


async def test_the_guard_refuses_loopback_and_names_that_resolve_inside() -> None:
    async def inside(host: str, port: int) -> list[Any]:
        return [ipaddress.ip_address("10.1.2.3")]

    async with poster_for(UrlGuard(), resolver=inside) as poster:
        with pytest.raises(OutboundBlocked):
            await poster.post("http://127.0.0.1:9/", b"{}", {}, deadline=5)
        with pytest.raises(OutboundBlocked):
            await poster.post("http://hooks.example.com/", b"{}", {}, deadline=5)
        with pytest.raises(OutboundBlocked):
            await poster.post("ftp://hooks.example.com/", b"{}", {}, deadline=5)
        with pytest.raises(OutboundError, match="absolute"):
            await poster.post("hooks.example.com/x", b"{}", {}, deadline=5)


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls_is_verified(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)
    with server(served) as (seen, base):
        async with poster_for() as untrusting:  # the system CAs do not know our certificate
            with pytest.raises(OutboundError, match="certificate could not be verified"):
                await untrusting.post(base + "/", b"{}", {}, deadline=5)
        trusted = ssl.create_default_context(cafile=cert)
        async with poster_for(ssl_context=trusted) as trusting:
            assert await trusting.post(base + "/secure", b"{}", {}, deadline=5) == 202
    assert [r[0] for r in seen.requests] == ["/secure"]
    await asyncio.sleep(0)


async def test_a_kept_connection_the_receiver_dropped_is_replaced() -> None:
    """The receiver answers the first request keep-alive, then closes that connection on the
    next request without answering: the POST goes out again on a fresh connection."""
    served: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = len(served)
        served.append(0)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(2)  # the body, b"{}"
                served[connection] += 1
                if connection == 0 and served[connection] == 2:
                    break  # dropped: no answer
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    receiver = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{receiver.sockets[0].getsockname()[1]}/hook"
    try:
        async with poster_for() as poster:
            assert await poster.post(url, b"{}", {}, deadline=5) == 200
            assert await poster.post(url, b"{}", {}, deadline=5) == 200
    finally:
        receiver.close()
        await receiver.wait_closed()
    assert served == [2, 1]  # the second POST reached the first connection, then a new one
