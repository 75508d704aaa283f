"""Streamed request bodies for sendFileByUpload (multipart) and uploadFile (raw bytes).

The file is read in chunks as the request is sent, never whole into memory; progress is
reported per chunk. A body can be produced again (for a retry) as long as its source is a path
or a seekable file.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

CHUNK = 256 * 1024

Progress = Callable[[int, int | None], None]
"""A progress callback: ``(bytes done, total bytes or None when unknown)``."""

FileSource = str | os.PathLike[str] | BinaryIO


class Source:
    """A file to send: a path (opened per attempt) or an open binary file (rewound per attempt)."""

    def __init__(self, file: FileSource, *, file_name: str | None = None) -> None:
        self._path: Path | None = None
        self._handle: BinaryIO | None = None
        self._start = 0
        if isinstance(file, str | os.PathLike):
            self._path = Path(file)
            self.size: int | None = self._path.stat().st_size
            default_name = self._path.name
        else:
            self._handle = file
            self.size = _remaining(file)
            self._start = file.tell() if file.seekable() else -1
            default_name = Path(str(getattr(file, "name", "") or "")).name
        self.file_name = file_name or default_name

    @property
    def content_type(self) -> str:
        """The MIME type implied by the file name (``application/octet-stream`` otherwise)."""
        return mimetypes.guess_type(self.file_name, strict=False)[0] or "application/octet-stream"

    def open(self) -> BinaryIO:
        """The file, at its start, for one attempt."""
        if self._path is not None:
            return self._path.open("rb")
        assert self._handle is not None
        if self._start < 0:
            return self._handle  # not seekable: one attempt only (see :meth:`replayable`)
        self._handle.seek(self._start)
        return self._handle

    def close(self, handle: BinaryIO) -> None:
        """Close what :meth:`open` opened (a caller's own file stays open)."""
        if self._path is not None:
            handle.close()

    @property
    def replayable(self) -> bool:
        """Whether the body can be sent again."""
        return self._path is not None or self._start >= 0


def _remaining(handle: BinaryIO) -> int | None:
    try:
        size = os.fstat(handle.fileno()).st_size
        return max(0, size - handle.tell())
    except (AttributeError, OSError, ValueError):
        pass
    try:
        here = handle.tell()
        end = handle.seek(0, os.SEEK_END)
        handle.seek(here)
        return max(0, end - here)
    except (AttributeError, OSError, ValueError):
        return None


def _quote(value: str) -> str:
    # What browsers do in a Content-Disposition parameter (WHATWG HTML, multipart/form-data).
    return value.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")


class Body:
    """One streamed request body with its headers; iterate it (sync or async) once per attempt."""

    def __init__(
        self,
        source: Source,
        *,
        fields: Mapping[str, str] | None = None,
        file_field: str = "file",
        progress: Progress | None = None,
        name_header: bool = False,
    ) -> None:
        self.source = source
        self.progress = progress
        self._name_header = name_header and bool(source.file_name)
        if fields is None:  # uploadFile: the raw bytes
            self.head = self.tail = b""
            self.content_type = source.content_type
        else:
            boundary = secrets.token_hex(16)
            head = bytearray()
            for name, value in fields.items():
                head += (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"'
                    f"\r\n\r\n{value}\r\n"
                ).encode()
            head += (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(file_field)}"; '
                f'filename="{_quote(source.file_name)}"\r\n'
                f"Content-Type: {source.content_type}\r\n\r\n"
            ).encode()
            self.head = bytes(head)
            self.tail = f"\r\n--{boundary}--\r\n".encode()
            self.content_type = f"multipart/form-data; boundary={boundary}"

    @property
    def headers(self) -> dict[str, str | bytes]:
        """Content-Type, Content-Length when the file's size is known, and uploadFile's
        ``GA-Filename`` (UTF-8: HTTP header values are bytes, and names are not all ASCII)."""
        headers: dict[str, str | bytes] = {"content-type": self.content_type}
        if self.source.size is not None:
            headers["content-length"] = str(len(self.head) + self.source.size + len(self.tail))
        if self._name_header:
            headers["ga-filename"] = self.source.file_name.encode()
        return headers

    def _report(self, done: int) -> None:
        if self.progress is not None:
            self.progress(done, self.source.size)

    def __iter__(self) -> Iterator[bytes]:
        handle = self.source.open()
        try:
            if self.head:
                yield self.head
            done = 0
            self._report(0)
            while chunk := handle.read(CHUNK):
                yield chunk
                done += len(chunk)
                self._report(done)
            if self.tail:
                yield self.tail
        finally:
            self.source.close(handle)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(self.source.open)
        try:
            if self.head:
                yield self.head
            done = 0
            self._report(0)
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
                done += len(chunk)
                self._report(done)
            if self.tail:
                yield self.tail
        finally:
            await asyncio.to_thread(self.source.close, handle)
