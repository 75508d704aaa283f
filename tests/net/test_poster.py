"""The webhook POST client against real HTTP(S) servers on 127.0.0.1: what it sends, keep-alive,
reconnecting, deadlines, TLS verification and the URL guard."""

from __future__ import annotations

import asyncio
import datetime
import http.server
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from maxgate.errors import OutboundBlocked
from maxgate.net.poster import AnswerTooLarge, WebhookPoster
from maxgate.net.urlguard import UrlGuard

LOOPBACK = UrlGuard((ipaddress.ip_network("127.0.0.0/8"),))


class Seen:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes, tuple[str, int]]] = []
        self.answer_size = 0
        self.hang = 0.0
        self.close_after_answer = False


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
            self.send_response(202)
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


async def test_posts_the_body_and_headers_and_keeps_the_connection() -> None:
    poster = WebhookPoster(LOOPBACK)
    with server() as (seen, base):
        for n in range(3):
            status = await poster.post(
                base + "/hook?x=1", b'{"n":%d}' % n, {"X-Extra": "yes"}, deadline=5
            )
            assert status == 202
        await poster.close()
    paths = [r[0] for r in seen.requests]
    assert paths == ["/hook?x=1"] * 3
    assert [r[2] for r in seen.requests] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    headers = seen.requests[0][1]
    assert headers["Host"] == base.removeprefix("http://")
    assert headers["Content-Length"] == "7" and headers["X-Extra"] == "yes"
    assert headers["User-Agent"] == "maxgate"
    assert len({r[3] for r in seen.requests}) == 1  # one connection, kept


async def test_reconnects_when_the_receiver_closes_the_connection() -> None:
    poster = WebhookPoster(LOOPBACK)
    with server() as (seen, base):
        seen.close_after_answer = True
        for _ in range(3):
            assert await poster.post(base + "/", b"{}", {}, deadline=5) == 202
        await poster.close()
    assert len({r[3] for r in seen.requests}) == 3


async def test_the_deadline_covers_a_receiver_that_does_not_answer() -> None:
    poster = WebhookPoster(LOOPBACK)
    with server() as (seen, base):
        seen.hang = 2.0
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await poster.post(base + "/", b"{}", {}, deadline=0.3)
        assert time.monotonic() - started < 1.5
        seen.hang = 0
        assert await poster.post(base + "/", b"{}", {}, deadline=5) == 202  # a fresh connection
        await poster.close()


async def test_a_huge_answer_is_not_read_to_the_end() -> None:
    poster = WebhookPoster(LOOPBACK)
    with server() as (seen, base):
        seen.answer_size = 10 * 1024 * 1024
        with pytest.raises(AnswerTooLarge):
            await poster.post(base + "/", b"{}", {}, deadline=5)
        await poster.close()


async def test_user_info_becomes_basic_auth_unless_a_token_is_sent() -> None:
    poster = WebhookPoster(LOOPBACK)
    with server() as (seen, base):
        with_user = base.replace("http://", "http://hook:pa55@")
        await poster.post(with_user + "/", b"{}", {}, deadline=5)
        await poster.post(with_user + "/", b"{}", {"Authorization": "Bearer t"}, deadline=5)
        await poster.close()
    assert seen.requests[0][1]["Authorization"] == "Basic aG9vazpwYTU1"
    assert seen.requests[1][1]["Authorization"] == "Bearer t"


async def test_an_invalid_header_value_is_not_quoted_in_the_error() -> None:
    """h11 quotes a header value it refuses; for a webhook token with a control character that
    message would carry the token into the log and the database."""
    poster = WebhookPoster(LOOPBACK)
    try:
        with server() as (seen, url):
            with pytest.raises(h11.LocalProtocolError) as info:
                headers = {"Authorization": "Bearer S3CRET-token\nX-Injected: 1"}
                await poster.post(url, b"{}", headers, deadline=5)
            assert "S3CRET" not in str(info.value)
            assert info.value.__cause__ is None and info.value.__suppress_context__
            assert seen.requests == []
    finally:
        await poster.close()


async def test_the_guard_refuses_loopback_and_names_that_resolve_inside() -> None:
    async def inside(host: str, port: int) -> list[Any]:
        return [ipaddress.ip_address("10.1.2.3")]

    poster = WebhookPoster(UrlGuard(), resolver=inside)
    with pytest.raises(OutboundBlocked):
        await poster.post("http://127.0.0.1:9/", b"{}", {}, deadline=5)
    with pytest.raises(OutboundBlocked):
        await poster.post("http://hooks.example.com/", b"{}", {}, deadline=5)
    with pytest.raises(OutboundBlocked):
        await poster.post("ftp://hooks.example.com/", b"{}", {}, deadline=5)


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
        untrusting = WebhookPoster(LOOPBACK)  # the system CAs do not know our certificate
        with pytest.raises(ssl.SSLCertVerificationError):
            await untrusting.post(base + "/", b"{}", {}, deadline=5)
        trusting = WebhookPoster(LOOPBACK, ssl_context=ssl.create_default_context(cafile=cert))
        assert await trusting.post(base + "/secure", b"{}", {}, deadline=5) == 202
        await trusting.close()
        await untrusting.close()
    assert [r[0] for r in seen.requests] == ["/secure"]
    await asyncio.sleep(0)
