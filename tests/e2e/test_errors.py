"""Every common error of spec §1.4, through real HTTP requests to a real server process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from maxgate.api.errors import phrase
from tests.e2e.conftest import Server, start_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a 1 MB file limit and a 64 KB JSON body limit."""
    srv = start_server(
        tmp_path_factory.mktemp("small") / "data", max_file_size="1MB", max_json_body="64kb"
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def creds(small_server: Server) -> dict[str, Any]:
    return small_server.create_instance()


def url(server: Server, creds: dict[str, Any], method: str, token: str | None = None) -> str:
    token = token or creds["apiTokenInstance"]
    return f"{server.base_url}/v3/waInstance{creds['idInstance']}/{method}/{token}"


CASES: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("POST", "sendMessage", {"json": {"chatId": "1", "other": 1}}, 400,
     "Validation failed. Details: 'message' is required"),
    ("POST", "sendMessage", {"json": {"chatId": 5, "message": "x"}}, 400,
     "Validation failed. Details: 'chatId' must be a string"),
    ("POST", "getChatHistory", {"json": {"chatId": "1", "count": "ten"}}, 400,
     "Validation failed. Details: 'count' must be a number"),
    ("POST", "sendMessage", {"json": {"chatId": "1", "message": "x", "linkPreview": "yes"}}, 400,
     "Validation failed. Details: 'linkPreview' must be a boolean"),
    ("POST", "sendMessage", {"json": {}}, 400,
     "Validation failed. Details: 'value' must have at least 2 keys"),
    ("POST", "sendFileByUrl", {"json": {"chatId": "1"}}, 400,
     "Validation failed. Details: 'value' must have at least 3 keys"),
    ("POST", "sendMessage", {"json": [1, 2]}, 400,
     "Validation failed. Details: 'value' must be of type object"),
    ("POST", "sendMessage", {"json": {"chatId": "abc", "message": "x"}}, 400,
     "Validation failed. Details: 'chatId' with value 'abc' fails to match the required pattern"),
    ("POST", "sendMessage", {"content": b'{"chatId": "1",}'}, 400,
     "Unexpected token } in JSON at position 15"),
    ("POST", "sendFileByUpload", {"content": b"not multipart"}, 400, "Bad Request"),
    ("POST", "nosuchmethod", {}, 404, "Not Found"),
    ("GET", "sendMessage", {}, 405, "Method Not Allowed"),
    ("POST", "uploadFile", {"content": b"x" * (1024 * 1024 + 1)}, 413,
     "File exceeded max upload size. Size: 2mb Limit: 1mb"),
]  # fmt: skip


@pytest.mark.parametrize(("verb", "method", "kwargs", "status", "message"), CASES)
def test_common_error(
    small_server: Server,
    creds: dict[str, Any],
    verb: str,
    method: str,
    kwargs: dict[str, Any],
    status: int,
    message: str,
) -> None:
    answer = httpx.request(verb, url(small_server, creds, method), timeout=30, **kwargs)
    assert answer.status_code == status
    assert answer.json() == {
        "statusCode": status,
        "error": phrase(status),
        "message": message,
    }


def test_wrong_token_unknown_instance_and_deleted_instance(
    small_server: Server, creds: dict[str, Any], tmp_path: Path
) -> None:
    wrong = httpx.get(url(small_server, creds, "getStateInstance", "f" * 50), timeout=10)
    assert (wrong.status_code, wrong.json()["message"]) == (401, "Unauthorized")
    unknown = httpx.get(
        f"{small_server.base_url}/v3/waInstance3199999999/getStateInstance/{'f' * 50}", timeout=10
    )
    assert (unknown.status_code, unknown.json()["message"]) == (403, "Forbidden")
    doomed = small_server.create_instance()
    from tests.e2e.conftest import maxgate

    maxgate("instance", "delete", str(doomed["idInstance"]), data_dir=small_server.data_dir)
    gone = httpx.get(url(small_server, doomed, "getStateInstance"), timeout=10)
    assert (gone.status_code, gone.json()["message"]) == (400, "Instance is deleted")


def test_multipart_upload_over_the_limit_is_413_while_streaming(
    small_server: Server, creds: dict[str, Any]
) -> None:
    def body() -> Iterator[bytes]:  # chunked: no Content-Length to pre-check
        yield (
            b'--b\r\nContent-Disposition: form-data; name="chatId"\r\n\r\n1\r\n'
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n'
        )
        for _ in range(40):
            yield b"\0" * 65536
        yield b"\r\n--b--\r\n"

    answer = httpx.post(
        url(small_server, creds, "sendFileByUpload"),
        content=body(),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
        timeout=30,
    )
    assert answer.status_code == 413
    assert answer.json()["message"].startswith("File exceeded max upload size.")
    history = httpx.post(
        url(small_server, creds, "getChatHistory"), json={"chatId": "1"}, timeout=10
    )
    assert history.json() == []
