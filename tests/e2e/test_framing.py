"""Requests whose HTTP framing is broken, sent as raw bytes to a real server (granian).

granian hands a request body it cannot read (a malformed chunk size line, a chunk without its
CRLF) to the app as ``http.disconnect``, the same message as a client that left; an app that
then sends nothing gets granian's own plain-text ``500 Internal server error``. maxgate
answers ``400 Bad Request`` in its error shape instead (``maxgate.api.errors.fault_error``).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, start_server

pytestmark = pytest.mark.e2e

PARTNER = "e2e-framing-partner"
BAD_BODIES = [
    pytest.param(b"zz\r\n{}\r\n0\r\n\r\n", id="chunk-size-not-hex"),
    pytest.param(b"2\r\n{}XX0\r\n\r\n", id="chunk-without-crlf"),
    pytest.param(b"1\r\n{\r\nzz\r\n}\r\n0\r\n\r\n", id="bad-size-after-a-good-chunk"),
]


@pytest.fixture(scope="module")
def framing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("framing") / "data", partner_token=PARTNER)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def creds(framing_server: Server) -> dict[str, Any]:
    return framing_server.create_instance()


def exchange(server: Server, raw: bytes) -> bytes:
    """Send ``raw`` on a new connection; everything the server answers until it closes."""
    port = int(server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def chunked_post(path: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def chunked(*pieces: bytes) -> bytes:
    """A well-formed chunked body of ``pieces``."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def assert_bad_request(answer: bytes) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body) == {"statusCode": 400, "error": "Bad Request", "message": "Bad Request"}


@pytest.mark.parametrize("body", BAD_BODIES)
@pytest.mark.parametrize("method", ["sendMessage", "uploadFile", "sendFileByUpload"])
def test_a_malformed_chunked_body_is_a_400(
    framing_server: Server, creds: dict[str, Any], method: str, body: bytes
) -> None:
    path = f"/waInstance{creds['idInstance']}/{method}/{creds['apiTokenInstance']}"
    content_type = (
        "multipart/form-data; boundary=x" if method == "sendFileByUpload" else "text/plain"
    )
    if method == "sendMessage":
        content_type = "application/json"
    assert_bad_request(exchange(framing_server, chunked_post(path, body, content_type)))


@pytest.mark.parametrize("body", BAD_BODIES)
def test_a_malformed_chunked_body_is_a_400_on_partner_routes(
    framing_server: Server, body: bytes
) -> None:
    path = f"/partner/createInstance/{PARTNER}"
    assert_bad_request(exchange(framing_server, chunked_post(path, body)))


def test_the_server_keeps_serving(framing_server: Server, creds: dict[str, Any]) -> None:
    path = f"/waInstance{creds['idInstance']}/sendMessage/{creds['apiTokenInstance']}"
    for _ in range(3):
        assert_bad_request(exchange(framing_server, chunked_post(path, b"zz\r\n\r\n")))
    good = chunked_post(path, chunked(b'{"chatId": "10000777", ', b'"message": "hi"}'))
    answer = exchange(framing_server, good)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert httpx.get(f"{framing_server.base_url}/health", timeout=10).status_code == 200
