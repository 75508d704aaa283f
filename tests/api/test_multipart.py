"""Tests of the streaming multipart/form-data reader behind sendFileByUpload."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest
import requests

from maxgate.api.multipart import ChunkSink, FilePartInfo, MultipartForm, read_multipart
from maxgate.errors import ApiError, SizeLimitExceeded

BOUNDARY = b"b0undary"
CONTENT_TYPE = "multipart/form-data; boundary=b0undary"
URL = "http://127.0.0.1/waInstance3100000001/sendFileByUpload/token"
SPLITS = [1, 7, 64 * 1024]


class RecordingSink:
    """Keeps every piece it is given, so tests can check the order and the sizes."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.chunks.append(data)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


class Opener:
    """An ``open_sink`` that records each FilePartInfo it is called with."""

    def __init__(self, sink: ChunkSink | None = None) -> None:
        self.infos: list[FilePartInfo] = []
        self.sink = sink if sink is not None else RecordingSink()

    async def __call__(self, info: FilePartInfo) -> ChunkSink:
        self.infos.append(info)
        return self.sink


async def chunked(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def random_splits(body: bytes, seed: int) -> AsyncIterator[bytes]:
    rng = random.Random(seed)
    start = 0
    while start < len(body):
        end = start + rng.randint(1, 300)
        yield body[start:end]
        start = end


def part(headers: str, data: bytes = b"") -> tuple[str, bytes]:
    return headers, data


def raw_body(parts: Iterable[tuple[str, bytes]], *, close: bool = True) -> bytes:
    """A hand-written multipart body; each part is (header lines joined by CRLF, data)."""
    out = b""
    for headers, data in parts:
        out += b"--" + BOUNDARY + b"\r\n" + headers.encode() + b"\r\n\r\n" + data + b"\r\n"
    return out + (b"--" + BOUNDARY + b"--\r\n" if close else b"")


def disposition(name: str, extra: str = "") -> str:
    return f'Content-Disposition: form-data; name="{name}"{extra}'


async def parse(
    body: bytes, *, size: int = 64 * 1024, content_type: str = CONTENT_TYPE, **options: Any
) -> tuple[MultipartForm, Opener]:
    opener = Opener()
    form = await read_multipart(content_type, chunked(body, size), opener, **options)
    return form, opener


async def assert_bad_request(body: bytes, **kwargs: Any) -> None:
    for size in (1, 7, len(body) or 1):
        with pytest.raises(ApiError) as caught:
            await parse(body, size=size, **kwargs)
        assert (caught.value.status, caught.value.message) == (400, "Bad Request")


@pytest.mark.parametrize("size", SPLITS)
async def test_official_sdk_body(size: int) -> None:
    """Exactly what GREEN-API's SDK sends with `requests`: fields first, then the file."""
    prepared = requests.Request(
        "POST",
        URL,
        data={"chatId": "1", "caption": "c"},
        files={"file": ("a.txt", b"abc", "text/plain")},
    ).prepare()
    assert isinstance(prepared.body, bytes)
    form, opener = await parse(
        prepared.body, size=size, content_type=str(prepared.headers["Content-Type"])
    )
    assert form.fields == {"chatId": "1", "caption": "c"}
    assert form.file == FilePartInfo("file", "a.txt", "text/plain")
    assert opener.infos == [form.file]
    assert isinstance(opener.sink, RecordingSink)
    assert opener.sink.data == b"abc"
    assert form.file_size == 3


@pytest.mark.parametrize("size", SPLITS)
@pytest.mark.parametrize("file_first", [True, False])
async def test_httpx_file_first_or_last(size: int, file_first: bool) -> None:
    payload = bytes(range(256)) * 40
    file = ("file", ("отчёт.pdf", payload, "application/pdf"))
    texts: list[tuple[str, tuple[str | None, str]]] = [
        ("chatId", (None, "10000000")),
        ("caption", (None, "привет")),
        ("fileName", (None, "x.pdf")),
    ]
    files: list[Any] = [file, *texts] if file_first else [*texts, file]
    request = httpx.Request("POST", URL, files=files)
    form, opener = await parse(
        request.read(), size=size, content_type=request.headers["content-type"]
    )
    assert form.fields == {"chatId": "10000000", "caption": "привет", "fileName": "x.pdf"}
    assert form.file == FilePartInfo("file", "отчёт.pdf", "application/pdf")
    assert isinstance(opener.sink, RecordingSink)
    assert opener.sink.data == payload
    assert form.file_size == len(payload)
    assert all(chunk for chunk in opener.sink.chunks)


async def test_httpx_streamed_body() -> None:
    request = httpx.Request(
        "POST", URL, data={"chatId": "1"}, files={"file": ("a.bin", b"\0" * 10)}
    )
    opener = Opener()
    assert isinstance(request.stream, httpx.AsyncByteStream)
    form = await read_multipart(request.headers["content-type"], request.stream, opener)
    assert form.fields == {"chatId": "1"}
    assert form.file_size == 10


async def test_no_file_part() -> None:
    body = raw_body([part(disposition("chatId"), b"1"), part(disposition("extra"), b"kept")])
    form, opener = await parse(body, size=1)
    assert form == MultipartForm(fields={"chatId": "1", "extra": "kept"}, file=None, file_size=0)
    assert opener.infos == []


async def test_empty_body_with_only_closing_boundary() -> None:
    form, _ = await parse(b"--" + BOUNDARY + b"--\r\n")
    assert form == MultipartForm(fields={}, file=None, file_size=0)


@pytest.mark.parametrize("size", SPLITS)
async def test_empty_file(size: int) -> None:
    body = raw_body(
        [part(disposition("file", '; filename="e.txt"')), part(disposition("chatId"), b"1")]
    )
    form, opener = await parse(body, size=size)
    assert form.file == FilePartInfo("file", "e.txt", None)
    assert form.file_size == 0
    assert isinstance(opener.sink, RecordingSink)
    assert opener.sink.chunks == []
    assert len(opener.infos) == 1


@pytest.mark.parametrize("seed", range(20))
async def test_binary_data_with_boundary_like_sequences(seed: int) -> None:
    rng = random.Random(seed)
    tricky = [
        b"\r\n--",
        b"\r\n-",
        b"\r\r\n--",
        b"--" + BOUNDARY,
        b"\r\n--" + BOUNDARY[:-1],
        b"\r\n",
    ]
    payload = b"".join(rng.choice(tricky) + rng.randbytes(rng.randint(0, 20)) for _ in range(300))
    # The one sequence a part cannot hold is the delimiter itself; clients pick a boundary for that.
    payload = payload.replace(b"\r\n--" + BOUNDARY, b"\r\n--" + BOUNDARY[:-1] + b"Y")
    body = raw_body(
        [part(disposition("file", '; filename="b"'), payload), part(disposition("x"), b"y")]
    )
    opener = Opener()
    form = await read_multipart(CONTENT_TYPE, random_splits(body, seed), opener)
    assert isinstance(opener.sink, RecordingSink)
    assert opener.sink.data == payload
    assert form.file_size == len(payload)
    assert form.fields == {"x": "y"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("; filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf", "отчёт.pdf"),
        (
            "; filename=\"fallback.pdf\"; filename*=utf-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf",
            "отчёт.pdf",
        ),
        ("; filename*=''plain%20name.txt", "plain name.txt"),
        ("; filename*=nosuchcharset''a.txt", "a.txt"),
        ('; filename="a/b\\\\c.txt"', "c.txt"),
        ('; filename="C:\\\\Users\\\\me\\\\report.pdf"', "report.pdf"),
        ('; filename="../../etc/passwd"', "passwd"),
        ("; filename*=UTF-8''..%2F..%2Fevil.sh", "evil.sh"),
        ('; filename="dir/"', None),
        ('; filename=".."', None),
        ('; filename=""', None),
        ("", None),
        ('; filename="q\\"uote;d.txt"', 'q"uote;d.txt'),
        ("; filename=token.txt", "token.txt"),
        ('; FILENAME="upper.txt"', "upper.txt"),
    ],
)
async def test_filenames(params: str, expected: str | None) -> None:
    body = raw_body(
        [part(disposition("file", params) + "\r\nContent-Type: text/plain; charset=utf-8")]
    )
    form, _ = await parse(body)
    assert form.file == FilePartInfo("file", expected, "text/plain; charset=utf-8")


async def test_raw_utf8_filename_from_a_browser() -> None:
    headers = 'Content-Disposition: form-data; name="file"; filename="отчёт.pdf"'
    body = b"--" + BOUNDARY + b"\r\n" + headers.encode() + b"\r\n\r\n%PDF\r\n--" + BOUNDARY + b"--"
    form, _ = await parse(body, size=3)
    assert form.file is not None
    assert form.file.filename == "отчёт.pdf"


async def test_custom_file_field_and_stray_file_parts_are_dropped() -> None:
    body = raw_body(
        [
            part(disposition("file", '; filename="not-this.txt"'), b"dropped"),
            part(disposition("document", '; filename="this.txt"'), b"kept"),
        ]
    )
    form, opener = await parse(body, size=1, file_field="document")
    assert form.fields == {}
    assert form.file == FilePartInfo("document", "this.txt", None)
    assert isinstance(opener.sink, RecordingSink)
    assert opener.sink.data == b"kept"


async def test_file_part_without_filename_is_still_the_file() -> None:
    form, _ = await parse(raw_body([part(disposition("file"), b"abc")]))
    assert form.file == FilePartInfo("file", None, None)
    assert form.fields == {}
    assert form.file_size == 3


async def test_last_field_wins_and_charsets() -> None:
    body = raw_body(
        [
            part(disposition("caption"), b"first"),
            part(disposition("caption"), "второй".encode()),
            part(
                disposition("cp") + "\r\nContent-Type: text/plain; charset=windows-1251",
                "да".encode("cp1251"),
            ),
            part(disposition("odd") + "\r\nContent-Type: text/plain; charset=nosuch", b"\xffok"),
            part("content-disposition: form-data; name=lower", b"v"),
            part(disposition("имя"), b"v2"),
        ]
    )
    form, _ = await parse(body, size=5)
    assert form.fields == {
        "caption": "второй",
        "cp": "да",
        "odd": "\ufffdok",
        "lower": "v",
        "имя": "v2",
    }


async def test_invalid_utf8_field_is_bad_request() -> None:
    await assert_bad_request(raw_body([part(disposition("caption"), b"\xff\xfe")]))


async def test_field_and_part_limits() -> None:
    fields = [part(disposition(f"f{i}"), b"v") for i in range(4)]
    form, _ = await parse(raw_body(fields), max_fields=4)
    assert len(form.fields) == 4
    await assert_bad_request(raw_body(fields), max_fields=3)
    with_file = [*fields[:3], part(disposition("file", '; filename="a"'), b"x")]
    await assert_bad_request(raw_body(with_file), max_fields=3)


async def test_oversized_field() -> None:
    form, _ = await parse(raw_body([part(disposition("caption"), b"x" * 100)]), max_field_size=100)
    assert form.fields["caption"] == "x" * 100
    await assert_bad_request(
        raw_body([part(disposition("caption"), b"x" * 101)]), max_field_size=100
    )
    stray = part(disposition("other", '; filename="o.bin"'), b"x" * 101)
    await assert_bad_request(raw_body([stray]), max_field_size=100)


async def test_the_file_is_not_held_to_the_field_limit() -> None:
    body = raw_body([part(disposition("file", '; filename="a"'), b"x" * 1000)])
    form, _ = await parse(body, max_field_size=10)
    assert form.file_size == 1000


async def test_second_file_part_is_bad_request() -> None:
    file = part(disposition("file", '; filename="a"'), b"x")
    await assert_bad_request(raw_body([file, file]))


async def test_every_truncation_is_bad_request() -> None:
    body = raw_body(
        [part(disposition("chatId"), b"1"), part(disposition("file", '; filename="a"'), b"\r\n--x")]
    )
    end = body.index(b"--" + BOUNDARY + b"--") + len(BOUNDARY) + 4
    for cut in range(end):
        with pytest.raises(ApiError) as caught:
            await parse(body[:cut], size=3)
        assert caught.value.status == 400, cut
    form, _ = await parse(body[:end] + b"\r\nepilogue is ignored")
    assert form.file_size == 5


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; charset=utf-8",
        "application/json",
        "",
        "application/x-www-form-urlencoded; boundary=b0undary",
        "multipart/form-data; boundary=" + "a" * 300,
        "multipart/form-data; boundary=ю",
    ],
)
async def test_missing_boundary_or_not_multipart(content_type: str) -> None:
    with pytest.raises(ApiError) as caught:
        await parse(raw_body([part(disposition("chatId"), b"1")]), content_type=content_type)
    assert (caught.value.status, caught.value.message) == (400, "Bad Request")


async def test_quoted_boundary_and_case() -> None:
    body = raw_body([part(disposition("chatId"), b"1")])
    form, _ = await parse(body, content_type='Multipart/Form-Data; boundary="b0undary"')
    assert form.fields == {"chatId": "1"}


@pytest.mark.parametrize(
    "body",
    [
        b"garbage",
        b"--other\r\n\r\n",
        raw_body([part("Content-Type: text/plain", b"no disposition")]),
        raw_body([part("Content-Disposition: form-data", b"no name")]),
        raw_body([part('Content-Disposition: form-data; name=""', b"empty name")]),
        raw_body([part(disposition("file") + "\r\nContent-Transfer-Encoding: base64", b"YWJj")]),
        raw_body([part("Bad Header: x", b"")]),
        b"--" + BOUNDARY + b"\r\n" + b"X-Long: " + b"a" * 10_000 + b"\r\n\r\n",
    ],
)
async def test_malformed_bodies(body: bytes) -> None:
    await assert_bad_request(body)


async def test_sink_size_limit_propagates_unchanged() -> None:
    class LimitedSink:
        def __init__(self) -> None:
            self.size = 0

        async def write(self, data: bytes) -> None:
            self.size += len(data)
            if self.size > 10:
                raise SizeLimitExceeded(self.size, 10)

    body = raw_body([part(disposition("file", '; filename="a"'), b"x" * 100)])
    with pytest.raises(SizeLimitExceeded) as caught:
        await parse_with(body, Opener(LimitedSink()))
    assert caught.value.limit == 10


async def test_body_errors_propagate_unchanged() -> None:
    class ClientGone(Exception):
        pass

    async def body() -> AsyncIterator[bytes]:
        yield b"--" + BOUNDARY + b"\r\n"
        raise ClientGone

    with pytest.raises(ClientGone):
        await read_multipart(CONTENT_TYPE, body(), Opener())


async def parse_with(body: bytes, opener: Opener, size: int = 7) -> MultipartForm:
    return await read_multipart(CONTENT_TYPE, chunked(body, size), opener)


async def test_64_mb_file_is_streamed_not_accumulated() -> None:
    """64 MB in 64 KiB chunks: every piece reaches the sink at once, none larger than a chunk."""
    chunk_size = 64 * 1024
    block = random.Random(0).randbytes(1024 * 1024)
    total = 64 * len(block)
    head = raw_body([part(disposition("chatId"), b"1")], close=False)
    head += (
        b"--"
        + BOUNDARY
        + b"\r\n"
        + disposition("file", '; filename="big.bin"').encode()
        + b"\r\n\r\n"
    )
    tail = b"\r\n--" + BOUNDARY + b"--\r\n"

    async def body() -> AsyncIterator[bytes]:
        # The head is glued to the first block so that the chunks do not line up with the parts.
        pending = head
        for _ in range(64):
            pending += block
            while len(pending) >= chunk_size:
                yield pending[:chunk_size]
                pending = pending[chunk_size:]
        yield pending + tail

    class HashingSink:
        def __init__(self) -> None:
            self.digest = hashlib.sha256()
            self.size = 0
            self.largest = 0

        async def write(self, data: bytes) -> None:
            self.digest.update(data)
            self.size += len(data)
            self.largest = max(self.largest, len(data))

    sink = HashingSink()
    form = await read_multipart(CONTENT_TYPE, body(), Opener(sink))
    expected = hashlib.sha256()
    for _ in range(64):
        expected.update(block)
    assert form.fields == {"chatId": "1"}
    assert form.file_size == sink.size == total
    assert sink.digest.hexdigest() == expected.hexdigest()
    assert 0 < sink.largest <= chunk_size
