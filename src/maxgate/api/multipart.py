"""A streaming multipart/form-data reader for ``sendFileByUpload``.

The body is parsed as it arrives by python-multipart's callback parser. Text fields are small and
kept; the file part's bytes go, piece by piece, to an async sink, so a 4 GB upload never sits in
memory. The callbacks are synchronous: they queue what one chunk produced, and
:func:`read_multipart` awaits the sink before reading the next chunk.

Decisions: every part counts towards ``max_fields``; every part other than the file (text fields
and stray file parts under other names, whose bytes are dropped) is held to ``max_field_size``; a
second part named ``file_field`` is a ``400`` (ambiguous, and it stops reading at once).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol
from urllib.parse import unquote

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from maxgate.errors import ApiError

__all__ = ["ChunkSink", "FilePartInfo", "MultipartForm", "read_multipart"]

# One `; key=value` parameter, the value a quoted string (with backslash escapes) or a token.
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_ESCAPED = re.compile(r"\\(.)")
_EXT_VALUE = re.compile(r"([^']*)'[^']*'(.*)")  # RFC 5987 ext-value: charset'lang'pct-encoded
_IDENTITY_CTE = {b"7bit", b"8bit", b"binary"}


class ChunkSink(Protocol):
    """Receives the file part's bytes, in order, as they arrive (e.g. a blob-store writer)."""

    async def write(self, data: bytes) -> None:
        """Take the next non-empty piece; raise ``SizeLimitExceeded`` to stop the upload."""
        ...


@dataclass(frozen=True, slots=True)
class FilePartInfo:
    """What the headers of the file part say, known before its first byte."""

    field_name: str
    filename: str | None  # `filename*` wins over `filename`; only the last path segment is kept
    content_type: str | None  # the part's Content-Type header as sent, parameters included


@dataclass(slots=True)
class MultipartForm:
    """A parsed form: the text fields, and what was streamed of the file part."""

    fields: dict[str, str]
    file: FilePartInfo | None
    file_size: int


class _Kind(Enum):
    FIELD, FILE, SKIP = range(3)


def _bad_request() -> ApiError:
    return ApiError(400, "Bad Request")


def _params(header: str) -> dict[str, str]:
    """The parameters of a header such as Content-Disposition, names lower-cased, unquoted."""
    params: dict[str, str] = {}
    for match in _PARAM.finditer(header):
        value = match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = _ESCAPED.sub(r"\1", value[1:-1])
        params[match.group(1).lower()] = value
    return params


def _filename(params: dict[str, str]) -> str | None:
    """The decoded filename (RFC 6266: ``filename*`` first), stripped of any directories."""
    name = params.get("filename")
    extended = _EXT_VALUE.fullmatch(params.get("filename*", ""))
    if extended is not None:
        try:
            name = unquote(extended.group(2), encoding=extended.group(1) or "utf-8")
        except LookupError:  # an unknown charset: fall back to UTF-8
            name = unquote(extended.group(2), errors="replace")
    if name is None:
        return None
    name = re.split(r"[\\/]", name)[-1]
    return None if name in ("", ".", "..") else name


def _decode_field(value: bytes, content_type: str | None) -> str:
    """UTF-8 strictly (bad bytes are a 400); a declared other charset leniently."""
    charset = "utf-8"
    if content_type:
        options = parse_options_header(content_type)[1]
        charset = options.get(b"charset", b"utf-8").decode("latin-1").lower()
    try:
        if charset in ("utf-8", "utf8"):
            return value.decode("utf-8")
        return value.decode(charset, errors="replace")
    except LookupError:
        return value.decode("utf-8", errors="replace")
    except UnicodeDecodeError as exc:
        raise _bad_request() from exc


class _Reader:
    """The parser's callbacks: keeps text fields, queues file events for the async side."""

    def __init__(self, file_field: str, max_fields: int, max_field_size: int) -> None:
        self.form = MultipartForm(fields={}, file=None, file_size=0)
        self.pending: list[FilePartInfo | bytes] = []  # what the last feed produced for the sink
        self.ended = False
        self._file_field = file_field
        self._max_fields = max_fields
        self._max_field_size = max_field_size
        self._parts = 0
        self._headers: dict[str, bytes] = {}
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._kind = _Kind.SKIP
        self._name = ""
        self._content_type: str | None = None
        self._value = bytearray()
        self._size = 0

    def on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > self._max_fields:
            raise _bad_request()
        self._headers = {}
        self._value = bytearray()
        self._size = 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field = bytearray()
        self._header_value = bytearray()

    def on_headers_finished(self) -> None:
        headers = self._headers
        params = _params(headers.get("content-disposition", b"").decode("utf-8", "replace"))
        self._name = params.get("name", "")
        cte = headers.get("content-transfer-encoding", b"binary").strip().lower()
        if not self._name or cte not in _IDENTITY_CTE:
            raise _bad_request()
        raw_type = headers.get("content-type")
        self._content_type = raw_type.decode("latin-1").strip() if raw_type else None
        if self._name == self._file_field:
            if self.form.file is not None:
                raise _bad_request()
            self.form.file = FilePartInfo(self._name, _filename(params), self._content_type)
            self.pending.append(self.form.file)
            self._kind = _Kind.FILE
        elif "filename" in params or "filename*" in params:
            self._kind = _Kind.SKIP
        else:
            self._kind = _Kind.FIELD

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if end <= start:
            return
        if self._kind is _Kind.FILE:
            self.pending.append(data[start:end])
            return
        self._size += end - start
        if self._size > self._max_field_size:
            raise _bad_request()
        if self._kind is _Kind.FIELD:
            self._value += data[start:end]

    def on_part_end(self) -> None:
        if self._kind is _Kind.FIELD:
            self.form.fields[self._name] = _decode_field(bytes(self._value), self._content_type)

    def on_end(self) -> None:
        self.ended = True


async def read_multipart(
    content_type: str,
    body: AsyncIterable[bytes],
    open_sink: Callable[[FilePartInfo], Awaitable[ChunkSink]],
    *,
    file_field: str = "file",
    max_fields: int = 32,
    max_field_size: int = 64 * 1024,
) -> MultipartForm:
    """Read a multipart/form-data body, streaming the part named ``file_field`` to a sink.

    ``content_type`` is the request's Content-Type header (with its boundary); ``body`` yields the
    raw request body (e.g. Starlette's ``Request.stream()``); ``open_sink`` is awaited once, when
    the file part's headers have been read, and its sink then receives every byte of the part.

    Malformed or truncated input, a missing boundary, more than ``max_fields`` parts, a part other
    than the file over ``max_field_size`` bytes, or a second file part raise
    ``ApiError(400, "Bad Request")``. Errors of the sink (``SizeLimitExceeded``) and of ``body``
    (a client disconnect) propagate unchanged; on any error the sink's bytes are to be discarded.
    """
    try:
        mime, options = parse_options_header(content_type)
        boundary = options.get(b"boundary", b"")
        if mime != b"multipart/form-data" or not boundary:
            raise _bad_request()
        reader = _Reader(file_field, max_fields, max_field_size)
        parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": reader.on_part_begin,
                "on_part_data": reader.on_part_data,
                "on_part_end": reader.on_part_end,
                "on_header_field": reader.on_header_field,
                "on_header_value": reader.on_header_value,
                "on_header_end": reader.on_header_end,
                "on_headers_finished": reader.on_headers_finished,
                "on_end": reader.on_end,
            },
        )
    except (FormParserError, UnicodeError) as exc:  # a boundary over 256 bytes, non-latin-1 text
        raise _bad_request() from exc

    form = reader.form
    sink: ChunkSink | None = None
    async for chunk in body:
        try:
            parser.write(chunk)
        except FormParserError as exc:
            raise _bad_request() from exc
        pending, reader.pending = reader.pending, []
        for item in pending:
            if isinstance(item, FilePartInfo):
                sink = await open_sink(item)
            else:
                assert sink is not None  # the part's FilePartInfo is always queued before its data
                await sink.write(item)
                form.file_size += len(item)
    if not reader.ended:  # the closing boundary never came: a truncated upload
        raise _bad_request()
    return form
