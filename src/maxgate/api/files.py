"""The link server: ``GET``/``HEAD /files/{instance}/{fileId}/{fileName}?exp=…&sig=…``.

Verifies the signature and expiry, brings the bytes back from the messenger if they are absent,
and serves them with Range, ETag/If-None-Match, Last-Modified, Content-Disposition (RFC 5987
for non-ASCII names), the stored Content-Type and ``nosniff``. Local files up to
``SMALL_FILE`` bytes are read on the event loop and sent as one body (cheaper per request than
any file transfer); larger ones go out through Starlette's FileResponse, which uses the
server's zero-copy ``pathsend`` when it offers it. Blobs on S3 are streamed.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Awaitable
from urllib.parse import quote, unquote_plus

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from maxgate.api.downloadguard import DownloadGuard
from maxgate.api.errors import error_response, fault_response
from maxgate.blobs import blob_key
from maxgate.domain.records import FileRecord
from maxgate.errors import UpstreamError, UpstreamFileGone
from maxgate.runtime import Runtime

# Media a browser may show inline; everything else downloads, so an uploaded HTML or SVG file
# can never run as a page of this origin.
INLINE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "video/", "audio/")
SMALL_FILE = 256 * 1024  # local files up to this size are sent from memory in one body
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@functools.lru_cache(maxsize=4096)
def http_date(timestamp: float) -> str:
    """An HTTP date (RFC 9110 IMF-fixdate), as ``email.utils.formatdate(…, usegmt=True)``
    writes it, in a fraction of its time and independent of the locale."""
    t = time.gmtime(timestamp)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def _disposition(file: FileRecord) -> str:
    kind = "inline" if file.mime_type.startswith(INLINE_TYPES) else "attachment"
    name = file.file_name or "file"
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    if ascii_name == name:
        return f'{kind}; filename="{name}"'
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def _headers(file: FileRecord) -> dict[str, str]:
    return {
        "etag": f'"{file.sha256}"',
        "content-disposition": _disposition(file),
        "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'none'; sandbox",
        "cache-control": "private, max-age=3600",
        "last-modified": http_date(file.stored_at or file.created_at),
    }


def _link_query(raw: bytes) -> dict[str, str]:
    """``exp`` and ``sig`` from a query string, as ``parse_qsl`` reads them (the last one of a
    repeated name wins), without building Starlette's general QueryParams on every download."""
    found: dict[str, str] = {}
    for part in raw.decode("latin-1").split("&"):
        name, _, value = part.partition("=")
        if name in ("exp", "sig"):
            found[name] = unquote_plus(value) if "%" in value or "+" in value else value
    return found


def _not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    return header.strip() == "*" or etag in [
        t.strip().removeprefix("W/") for t in header.split(",")
    ]


log = logging.getLogger(__name__)


class LinkEndpoint:
    """The link route's endpoint, a raw ASGI app inside Starlette's router.

    The link route is the other hot path (a 100 KB file is answered in a few hundred µs): no
    function-endpoint wrapper around ``serve_file``. A bug becomes a 500 in the error shape,
    logged, while the answer has not started; after that the server cuts the connection.
    """

    __name__ = "serve_link"  # the route's name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        def noting(message: Message) -> Awaitable[None]:
            nonlocal started
            started = True
            return send(message)

        try:
            response = await serve_file(Request(scope, receive))
            await response(scope, receive, noting)
        except Exception as exc:
            if started:
                raise
            log.exception("%s of a file link failed", scope["method"])
            await fault_response(exc)(scope, receive, send)  # 500, or 507 for a full store


serve_link = LinkEndpoint()


async def serve_file(request: Request) -> Response:
    """Serve one signed file link."""
    runtime: Runtime = request.app.state.runtime
    params = request.path_params
    query = _link_query(request.scope["query_string"])
    try:
        instance_id = int(params["instance"])
        expires = int(query.get("exp", ""))
    except ValueError:
        return error_response(403, "Forbidden")
    file_id = str(params["file_id"])
    signature = query.get("sig", "")
    if expires < time.time() or not runtime.signer.verify(instance_id, file_id, expires, signature):
        return error_response(403, "Forbidden")
    found = await runtime.files.get(file_id)
    if found is None or found.instance_id != instance_id:
        return error_response(404, "Not Found")
    present = await _present(runtime, found)
    if isinstance(present, Response):
        return present
    file, path, stat = present
    assert file.sha256 is not None
    headers = _headers(file)
    if _not_modified(request, headers["etag"]):
        return Response(status_code=304, headers={"etag": headers["etag"]})
    key = blob_key(file.sha256)
    if stat is not None:
        size = stat.st_size
    else:
        size = file.size if file.size is not None else await runtime.blobs.size(key)
    ranges = parse_ranges(request.headers.get("range"), size)
    if ranges is not None and not _if_range_holds(request, headers):
        ranges = None  # the client's copy is another version: send the whole file (RFC 9110)
    if ranges == []:
        return error_response(416, "Range Not Satisfiable", {"content-range": f"bytes */{size}"})
    response: Response
    if path is None or stat is None:
        response = _stream(runtime, file, key, size, ranges, headers, request)
    elif size <= SMALL_FILE and (ranges is None or len(ranges) == 1):
        response = _from_memory(path, size, ranges, headers, file.mime_type, request)
    else:
        whole = FileResponse(path, media_type=file.mime_type, headers=headers, stat_result=stat)
        response = _DecidedRange(whole, ranges)
    client = request.client.host if request.client else "unknown"
    guard: DownloadGuard = request.app.state.download_guard
    return guard.guard(client, instance_id, response)


async def _present(
    runtime: Runtime, file: FileRecord
) -> tuple[FileRecord, str | None, os.stat_result | None] | Response:
    """The file with its bytes present: (record, local path, its stat), both None on S3; or
    the error response when they cannot be had."""
    local = runtime.files.local_stat(file)
    if local is not None:  # the common case: stored here, one stat
        return file, *local
    for _attempt in range(2):
        try:
            file = await runtime.files.materialize(file)
        except UpstreamFileGone:
            return error_response(410, "Gone")
        except UpstreamError:
            return error_response(502, "Bad Gateway")
        assert file.sha256 is not None
        if runtime.blobs.local_file(blob_key(file.sha256)) is None:
            return file, None, None
        local = runtime.files.local_stat(file)
        if local is not None:
            return file, *local
        # evicted between materialize's check and now: bring it back again
    return error_response(502, "Bad Gateway")


def _if_range_holds(request: Request, headers: dict[str, str]) -> bool:
    """Whether a Range may be honoured: no If-Range, or one naming the current version."""
    if_range = request.headers.get("if-range")
    if if_range is None:
        return True
    return if_range in (headers["etag"], headers["last-modified"])


def _from_memory(
    path: str,
    size: int,
    ranges: list[tuple[int, int]] | None,
    headers: dict[str, str],
    media_type: str,
    request: Request,
) -> Response:
    """A small local file (or one range of it) read on the loop and sent as one body."""
    start, end, status = 0, size, 200
    if ranges is not None:
        (start, end), status = ranges[0], 206
    headers = {**headers, "accept-ranges": "bytes", "content-length": str(end - start)}
    if status == 206:
        headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
    body = b""
    if request.method != "HEAD":
        body = _read(path, start, end - start)
    return Response(body, status_code=status, headers=headers, media_type=media_type)


def _read(path: str, offset: int, count: int) -> bytes:
    """``count`` bytes at ``offset``: one pread of the page cache (microseconds for ≤ 256 KB),
    without a Python file object."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.pread(fd, count, offset)
        while len(data) < count:  # a short read: rare, but pread may return less
            more = os.pread(fd, count - len(data), offset + len(data))
            if not more:
                raise OSError(f"{path} is shorter than its recorded size")
            data += more
        return data
    finally:
        os.close(fd)


def parse_ranges(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """The byte ranges a ``Range`` header asks for, as (start, end-exclusive).

    None: no header, or one to ignore (another unit, or malformed — RFC 9110 §14.2); an empty
    list: none of the ranges can be satisfied (416).
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    ranges = []
    for part in spec.split(","):
        first, dash, last = part.strip().partition("-")
        if not dash or not (first.isdigit() or last.isdigit()):
            return None
        if (first and not first.isdigit()) or (last and not last.isdigit()):
            return None
        if first:
            start = int(first)
            end = min(int(last) + 1, size) if last else size
            if last and int(last) < start:
                return None
        else:
            start, end = max(size - int(last), 0), size
            if int(last) == 0:
                continue
        if start < size and start < end:
            ranges.append((start, end))
    return ranges


class _DecidedRange(Response):
    """A ``FileResponse`` told which ranges to send: the ones ``parse_ranges`` and If-Range
    decided (``None``: the whole file), never the client's own header.

    Range and If-Range are decided once, in ``serve_file``, for every kind of answer. The
    FileResponse only executes the decision: it gets a request without If-Range whose Range,
    if any, is the decided ranges in canonical form (or none at all), so its own reading of
    Range cannot disagree with ours.
    """

    def __init__(self, inner: Response, ranges: list[tuple[int, int]] | None) -> None:
        self._inner = inner
        self._ranges = ranges
        self.status_code = inner.status_code
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"range", b"if-range")]
        if self._ranges is not None:
            spec = ",".join(f"{start}-{end - 1}" for start, end in self._ranges)
            headers.append((b"range", f"bytes={spec}".encode()))
        await self._inner({**scope, "headers": headers}, receive, send)


def _stream(
    runtime: Runtime,
    file: FileRecord,
    key: str,
    size: int,
    ranges: list[tuple[int, int]] | None,
    headers: dict[str, str],
    request: Request,
) -> Response:
    """Serve from a remote blob store, forwarding a single byte range (several: the whole)."""
    start, end, status = 0, size, 200
    if ranges is not None and len(ranges) == 1:
        (start, end), status = ranges[0], 206
    headers = {**headers, "accept-ranges": "bytes", "content-length": str(end - start)}
    if status == 206:
        headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=file.mime_type)
    body = runtime.blobs.read(key, start=start, end=end)
    return StreamingResponse(body, status_code=status, headers=headers, media_type=file.mime_type)
