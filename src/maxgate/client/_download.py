"""Downloads of file links, without I/O of their own: where the bytes go, resume, hash check.

A download asks for ``Range: bytes=<offset>-`` whenever it already has bytes (a partial file
from an earlier run, or a connection that dropped mid-transfer), with ``If-Range`` naming the
version it holds, so a changed file comes back whole (200) instead of being spliced. The SHA-256
of everything written is computed on the way; when the server's ETag is a content hash (maxgate's
is the file's SHA-256), the result is checked against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from maxgate.client._exceptions import DownloadError, HashMismatchError
from maxgate.client._models import Downloaded
from maxgate.client._upload import Progress

Target = str | os.PathLike[str] | BinaryIO
"""Where a download goes: a path (resumable across runs) or an open, writable binary file."""

_SHA256_ETAG = re.compile(r'^"?([0-9a-fA-F]{64})"?$')
_CONTENT_RANGE = re.compile(r"^bytes\s+(\d+)-(\d+)/(\d+|\*)$")
_HASH_CHUNK = 1024 * 1024


def content_hash(etag: str | None) -> str | None:
    """The SHA-256 an ETag announces, if it is a strong ETag of 64 hex digits."""
    if etag is None or etag.startswith("W/"):
        return None
    match = _SHA256_ETAG.match(etag.strip())
    return match.group(1).lower() if match else None


def stall_pause(stalls: int) -> float:
    """Seconds to wait before the next attempt after ``stalls`` attempts in a row that got no
    byte (a server restarting, a network coming back): 0.25, 0.5, 1, … up to 8."""
    return float(min(0.25 * 2 ** (stalls - 1), 8.0))


class Sink:
    """The file a download writes, opened for resuming when it is a path that already exists.

    A file the sink created is removed again if the download fails before its first byte.
    """

    def __init__(self, to: Target, *, resume: bool) -> None:
        self._to = to
        self._resume = resume
        self._handle: BinaryIO | None = None
        self._owned = False
        self._created = False
        self._start = 0
        self.path: Path | None = None

    def open(self) -> tuple[int, hashlib._Hash]:
        """Open the file; returns the bytes already there (to resume from) and their hash."""
        digest = hashlib.sha256()
        if isinstance(self._to, str | os.PathLike):
            self.path = Path(self._to)
            exists = self.path.is_file()
            self._created = not exists
            self._handle = self.path.open("r+b" if exists and self._resume else "w+b")
            self._owned = True
            if exists and self._resume:
                while chunk := self._handle.read(_HASH_CHUNK):
                    digest.update(chunk)
            return self._handle.tell(), digest
        self._handle = self._to
        try:
            self._start = self._handle.tell()
        except (AttributeError, OSError):
            self._start = -1
        return 0, digest

    @property
    def handle(self) -> BinaryIO:
        assert self._handle is not None, "the sink is not open"
        return self._handle

    def write(self, data: bytes) -> None:
        """Append bytes."""
        self.handle.write(data)

    def restart(self) -> None:
        """Drop everything written so far (the server sent the file from its start)."""
        if self._start < 0:
            raise DownloadError("the server restarted the transfer and the file is not seekable")
        self.handle.seek(self._start)
        self.handle.truncate()

    def close(self) -> None:
        """Flush, and close the file when the sink opened it."""
        if self._handle is None:
            return
        self._handle.flush()
        if self._owned:
            self._handle.close()
        self._handle = None

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        if exc is not None and self._created and self.path is not None:
            with contextlib.suppress(OSError):
                if self.path.stat().st_size == 0:
                    self.path.unlink()


class Step(enum.Enum):
    """What to do with a response, or after its body ended."""

    BODY = "read the body into the file"
    DONE = "the body ended: check the file"
    AGAIN = "ask again (resume, or from the start)"
    FAIL = "the answer is an error: raise it"


class Transfer:
    """The state of one download across its requests."""

    def __init__(self, sink: Sink, *, progress: Progress | None = None) -> None:
        self.sink = sink
        self.progress = progress
        self.offset, self._digest = sink.open()
        self.kept = self.offset  # bytes of an earlier run that this download keeps
        self.foreign_prefix = self.offset > 0  # …which are not checked yet
        # Those are asked for again from their last byte, which is dropped: a file that is
        # already complete then comes back as a 206 with its ETag (to check the hash against)
        # instead of a 416 that need not carry one.
        self._overlap = 1 if self.foreign_prefix else 0
        self.resumes = 0
        self.restarted = False
        self.etag: str | None = None
        self._validator: str | None = None
        self.total: int | None = None

    @classmethod
    def open(cls, sink: Sink, *, progress: Progress | None = None) -> Transfer:
        """Open ``sink`` and start a transfer into it (hashing what an earlier run left)."""
        return cls(sink, progress=progress)

    @classmethod
    async def aopen(cls, sink: Sink, *, progress: Progress | None = None) -> Transfer:
        """:meth:`open`, off the event loop: hashing a partial file is blocking file I/O."""
        return await asyncio.to_thread(cls, sink, progress=progress)

    def request_headers(self) -> dict[str, str]:
        """Headers of the next request: identity encoding (offsets count stored bytes), and
        a range with the validator of the version we hold once there are bytes to keep."""
        headers = {"accept-encoding": "identity"}
        if self.offset > 0:
            headers["range"] = f"bytes={self.offset - self._overlap}-"
            if self._validator is not None:
                headers["if-range"] = self._validator
        return headers

    def begin(self, status: int, headers: Mapping[str, str]) -> Step:
        """Take a response's status and headers; says whether to read its body."""
        if status == 416 and self.offset > 0:
            # What we hold is longer than the file: it is another file.
            self._restart()
            return Step.AGAIN
        if status == 206 and self.offset > 0:
            match = _CONTENT_RANGE.match(headers.get("content-range", ""))
            if match is None or int(match.group(1)) != self.offset - self._overlap:
                raise DownloadError(
                    f"asked for the bytes from {self.offset}, the server sent "
                    f"{headers.get('content-range', 'no Content-Range')!r}"
                )
            etag = headers.get("etag")
            if self.foreign_prefix and content_hash(etag) is None:
                # Nothing could vouch for the bytes of the earlier run: fetch the whole file.
                self._restart()
                return Step.AGAIN
            if self.etag is not None and etag is not None and etag != self.etag:
                # A server that ignored If-Range and sent a piece of another version.
                self._restart()
                return Step.AGAIN
            if match.group(3) != "*":
                self.total = int(match.group(3))
            self._remember(headers)
            self._report()
            return Step.BODY
        if status == 200:
            if self.offset > 0:
                self._restart()  # the file changed (If-Range), or no Range support
            length = headers.get("content-length")
            identity = headers.get("content-encoding", "identity") == "identity"
            self.total = int(length) if length and length.isdigit() and identity else None
            self._remember(headers)
            self._report()
            return Step.BODY
        return Step.FAIL

    def _remember(self, headers: Mapping[str, str]) -> None:
        self.etag = headers.get("etag", self.etag)
        if self.etag is not None and not self.etag.startswith("W/"):
            self._validator = self.etag
        elif "last-modified" in headers:
            self._validator = headers["last-modified"]

    def _restart(self) -> None:
        self.sink.restart()
        self.offset = 0
        self._digest = hashlib.sha256()
        self.foreign_prefix = False
        self._overlap = 0
        self.kept = 0
        self.etag = self._validator = None
        self.total = None

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.offset, self.total)

    def feed(self, chunk: bytes) -> None:
        """Write the next piece of the body."""
        data = self.take(chunk)
        self.write(data)
        self.advance(len(data))

    async def afeed(self, chunk: bytes) -> None:
        """:meth:`feed`, writing in a thread (progress is still reported on the event loop)."""
        data = self.take(chunk)
        await asyncio.to_thread(self.write, data)
        self.advance(len(data))

    def take(self, chunk: bytes) -> bytes:
        """What of a piece of a 206 body is new (the first byte repeats one we hold)."""
        if self._overlap and chunk:
            chunk, self._overlap = chunk[self._overlap :], 0
        return chunk

    def write(self, chunk: bytes) -> None:
        """Write and hash a piece (blocking file I/O: async callers run it in a thread)."""
        self.sink.write(chunk)
        self._digest.update(chunk)

    def advance(self, size: int) -> None:
        """Count a written piece and report progress."""
        if size:
            self.offset += size
            self._report()

    def end(self) -> Step:
        """After a body ended without error: complete, or to be resumed (it ended early)."""
        if self.total is not None and self.offset < self.total:
            return Step.AGAIN
        if self.total is not None and self.offset > self.total:
            raise DownloadError(f"the server sent {self.offset} bytes of a {self.total} byte file")
        return Step.DONE

    def finish(self) -> Downloaded | None:
        """Check the hash; None when a prefix from an earlier run turned out to be another
        file's and the download must start over (once)."""
        actual = self._digest.hexdigest()
        expected = content_hash(self.etag)
        if expected is not None and actual != expected:
            if self.foreign_prefix and not self.restarted:
                self.restarted = True
                self._restart()
                return None
            raise HashMismatchError(expected, actual)
        return Downloaded(
            path=str(self.sink.path) if self.sink.path is not None else None,
            size=self.offset,
            sha256=actual,
            verified=expected is not None,
            kept=self.kept,
            # A partial file of an earlier run that was continued is a resume as well.
            resumes=self.resumes + (1 if self.kept else 0),
        )

    def interrupted(self) -> None:
        """The body ended early or the connection broke: the next request resumes."""
        self.resumes += 1


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def safe_file_name(name: str, fallback: str = "download") -> str:
    """``name`` made safe as a local file name: no directories, no control characters."""
    name = _UNSAFE_NAME.sub("_", name).strip()
    if name in ("", ".", ".."):
        return fallback
    while len(name.encode()) > 255:
        name = name[:-1]
    return name


def link_file_name(url: str, fallback: str = "download") -> str:
    """A safe local name for the file behind a link: its last path segment, decoded."""
    return safe_file_name(unquote(urlsplit(url).path.rsplit("/", 1)[-1]), fallback)


def resolve_target(to: Target, url: str) -> Target:
    """``to``, or the link's file name inside ``to`` when it is a directory."""
    if isinstance(to, str | os.PathLike) and Path(to).is_dir():
        return Path(to) / link_file_name(url)
    return to
