"""Streamed uploads: the file is read in chunks as it is sent, with its length and progress."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pytest

from maxgate.client import BadRequestError, Client
from maxgate.client._upload import CHUNK
from tests.client.conftest import Api

CREDENTIALS = {"api_url": "http://gateway.test", "id_instance": 3100000001, "api_token": "a" * 50}
CONTACT = "10000777"


class CountingFile(io.BytesIO):
    """A file that records how much each read asked for."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[int] = []

    def read(self, size: int | None = -1, /) -> bytes:
        self.reads.append(-1 if size is None else size)
        return super().read(size)


def capture(**options: Any) -> tuple[list[httpx.Request], list[bytes], Client]:
    """A sync client whose requests are kept (with their bodies) and answered 200."""
    requests: list[httpx.Request] = []
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        bodies.append(request.read())
        return httpx.Response(200, json={"idMessage": "1", "urlFile": "http://x/f"})

    options = {**CREDENTIALS, **options}
    return requests, bodies, Client(transport=httpx.MockTransport(handler), **options)


def test_the_file_is_read_in_chunks_and_sent_with_its_length() -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    source = CountingFile(data)
    seen: list[tuple[int, int | None]] = []
    requests, bodies, client = capture()
    with client:
        client.send_file_by_upload(
            "10000000", source, file_name="a.bin", caption="c", progress=lambda *p: seen.append(p)
        )
    assert source.reads and all(0 < size <= CHUNK for size in source.reads)
    assert len(source.reads) > len(data) // CHUNK  # never the whole file at once
    body = bodies[0]
    assert int(requests[0].headers["content-length"]) == len(body)
    assert data in body
    form = requests[0].headers["content-type"]
    assert form.startswith("multipart/form-data; boundary=")
    for name, value in (("chatId", "10000000"), ("fileName", "a.bin"), ("caption", "c")):
        assert f'name="{name}"\r\n\r\n{value}\r\n'.encode() in body
    assert b'name="file"; filename="a.bin"\r\nContent-Type: application/octet-stream' in body
    assert seen[0] == (0, len(data)) and seen[-1] == (len(data), len(data))
    assert len(seen) == len(data) // CHUNK + 1


def test_upload_file_sends_the_raw_bytes_with_type_and_name(tmp_path: Path) -> None:
    path = tmp_path / "отчёт.pdf"
    path.write_bytes(b"%PDF-1.4 ...")
    requests, bodies, client = capture()
    with client:
        client.upload_file(path)
    assert bodies == [b"%PDF-1.4 ..."]
    headers = requests[0].headers
    assert headers["content-type"] == "application/pdf"
    assert headers.raw[[k.lower() for k, _ in headers.raw].index(b"ga-filename")][1] == (
        "отчёт.pdf".encode()
    )
    assert "/uploadFile/" in str(requests[0].url)


def test_media_methods_go_to_the_media_url() -> None:
    requests, _, client = capture(media_url="http://media.test")
    with client:
        client.upload_file(io.BytesIO(b"x"), file_name="x.txt")
        client.send_file_by_upload("1", io.BytesIO(b"x"), file_name="x.txt")
        client.send_file_by_url("1", "http://x/f", "f.txt")
    assert [r.url.host for r in requests] == ["media.test", "media.test", "gateway.test"]


def test_an_unseekable_stream_is_sent_chunked() -> None:
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            chunk = self._data.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    requests, bodies, client = capture()
    with client:
        client.send_file_by_upload("1", io.BufferedReader(Pipe(b"piped" * 1000)), file_name="p.txt")  # type: ignore[arg-type]
    assert "content-length" not in requests[0].headers
    assert requests[0].headers["transfer-encoding"] == "chunked"
    assert b"piped" * 1000 in bodies[0]


async def test_names_reach_the_server_intact(api: Api) -> None:
    sent = await api.send_file_by_upload(
        CONTACT, io.BytesIO(b"data"), file_name='q"uote\r\nd; name="x".txt'
    )
    item = await api.get_message(CONTACT, sent.id_message)
    # The server drops control characters from names; quotes and the rest arrive as sent.
    assert item.file_name == 'q"uoted; name="x".txt'


async def test_upload_file_keeps_a_non_ascii_name(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "отчёт.pdf"
    path.write_bytes(b"%PDF")
    uploaded = await api.upload_file(path)
    out = await api.download_link(uploaded.url_file, tmp_path)
    assert out.path == str(tmp_path / "отчёт.pdf")


async def test_an_empty_file_is_refused_by_send_file_by_upload(api: Api) -> None:
    with pytest.raises(BadRequestError) as caught:
        await api.send_file_by_upload(CONTACT, io.BytesIO(b""), file_name="empty.txt")
    assert caught.value.message == "Validation failed. Details: 'file' is required"


async def test_an_empty_file_is_refused_by_upload_file(api: Api) -> None:
    with pytest.raises(BadRequestError) as caught:
        await api.upload_file(io.BytesIO(b""), file_name="empty.txt")
    assert caught.value.message == "Validation failed. Details: 'file' is required"
