"""Helpers shared by the HTTP API tests: the error shape, polling the journal, multipart bodies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import sqlalchemy as sa

from maxgate.runtime import Runtime
from maxgate.store import tables as t
from tests.conftest import Account

MB = 1024 * 1024
ERROR_KEYS = {"statusCode", "error", "message"}
# The reason phrases as the vendor's (Node) server words them; Python's differ for 413 (and
# change between versions), so they are written out here.
PHRASES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    410: "Gone",
    413: "Payload Too Large",
    416: "Range Not Satisfiable",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    507: "Insufficient Storage",
}
BOUNDARY = "maxgate-test-boundary"
CONTACT = "10000777"  # a chatId that is no instance: a simulated contact of the sandbox


def assert_error(response: httpx.Response, status: int, message: str | None = None) -> str:
    """Assert the one error shape of spec §1.3 (exact keys and types); returns the message."""
    where = f"{response.request.method} {response.request.url.path}"
    assert response.status_code == status, f"{where}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/json"), where
    body = response.json()
    assert isinstance(body, dict) and set(body) == ERROR_KEYS, f"{where}: {body}"
    assert type(body["statusCode"]) is int and body["statusCode"] == status, where
    assert type(body["error"]) is str and body["error"] == PHRASES[status], where
    assert type(body["message"]) is str and body["message"], where
    if message is not None:
        assert body["message"] == message, f"{where}: {body['message']!r}"
    return str(body["message"])


def invalid(details: str) -> str:
    """The message of a failed field check."""
    return f"Validation failed. Details: {details}"


def ok(response: httpx.Response) -> Any:
    """The JSON of a 200 answer."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


async def send_text(client: httpx.AsyncClient, account: Account, chat_id: str, text: str) -> str:
    """sendMessage; returns the idMessage."""
    body = ok(
        await client.post(account.url("sendMessage"), json={"chatId": chat_id, "message": text})
    )
    return str(body["idMessage"])


async def get_message(
    client: httpx.AsyncClient, account: Account, chat_id: str, id_message: str
) -> httpx.Response:
    """getMessage, the raw answer."""
    return await client.post(
        account.url("getMessage"), json={"chatId": chat_id, "idMessage": id_message}
    )


async def wait_for_message(
    client: httpx.AsyncClient,
    account: Account,
    chat_id: str,
    id_message: str,
    *,
    status: str | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Poll getMessage until the message exists (and has ``statusMessage == status``)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        response = await get_message(client, account, chat_id, id_message)
        if response.status_code == 200:
            last = response.json()
            if status is None or last.get("statusMessage") == status:
                return dict(last)
        await asyncio.sleep(0.02)
    raise AssertionError(f"message {id_message} in {chat_id} never got there; last seen: {last}")


def multipart(
    parts: Sequence[tuple[str, bytes | str, str | None, str | None]],
    boundary: str = BOUNDARY,
) -> bytes:
    """A multipart/form-data body from (name, value, filename, content type) in this order."""
    out = bytearray()
    for name, value, filename, content_type in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if content_type is not None:
            out += f"Content-Type: {content_type}\r\n".encode()
        out += b"\r\n"
        out += value.encode() if isinstance(value, str) else value
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """Stream ``data`` in pieces (the request then has no Content-Length)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def upload(
    client: httpx.AsyncClient,
    account: Account,
    chat_id: str,
    data: bytes,
    *,
    filename: str | None = "file.bin",
    content_type: str | None = "application/octet-stream",
    fields: dict[str, str] | None = None,
) -> dict[str, Any]:
    """sendFileByUpload with the file part last; returns the answer."""
    parts: list[tuple[str, bytes | str, str | None, str | None]] = [("chatId", chat_id, None, None)]
    parts += [(k, v, None, None) for k, v in (fields or {}).items()]
    parts.append(("file", data, filename, content_type))
    response = await client.post(
        account.url("sendFileByUpload"),
        content=multipart(parts),
        headers={"content-type": MULTIPART_TYPE},
    )
    return dict(ok(response))


async def count_rows(runtime: Runtime, table: sa.Table) -> int:
    """How many rows a table of the metadata store holds."""
    async with runtime.db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def file_rows(runtime: Runtime) -> int:
    """Rows of the files table."""
    return await count_rows(runtime, t.files)


def committed_blobs(runtime: Runtime) -> list[str]:
    """Names of the blobs committed to the local blob store (not temporary objects)."""
    root = runtime.settings.data_path / "blobs" / "blobs"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def temp_objects(runtime: Runtime) -> list[str]:
    """Temporary objects left in the local blob store (uploads in progress or aborted)."""
    root = runtime.settings.data_path / "blobs" / "tmp"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []
