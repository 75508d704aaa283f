"""The link server: ``GET``/``HEAD /files/{instance}/{fileId}/{fileName}?exp=…&sig=…``.

Verifies the signature and expiry, brings the bytes back from the messenger if they are absent,
and serves them with Range, ETag/If-None-Match, Last-Modified, Content-Disposition (RFC 5987
for non-ASCII names), the stored Content-Type and ``nosniff``. Local files go out through
Starlette's FileResponse, which uses the server's zero-copy ``pathsend`` when it offers it.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from maxgate.api.errors import error_response
from maxgate.blobs import blob_key
from maxgate.domain.records import FileRecord
from maxgate.errors import UpstreamError, UpstreamFileGone
from maxgate.runtime import Runtime

# Media a browser may show inline; everything else downloads, so an uploaded HTML or SVG file
# can never run as a page of this origin.
INLINE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "video/", "audio/")


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
        "last-modified": formatdate(file.stored_at or file.created_at, usegmt=True),
    }


def _not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    return header.strip() == "*" or etag in [
        t.strip().removeprefix("W/") for t in header.split(",")
    ]


async def serve_file(request: Request) -> Response:
    """Serve one signed file link."""
    runtime: Runtime = request.app.state.runtime
    params = request.path_params
    query = request.query_params
    try:
        instance_id = int(params["instance"])
        expires = int(query.get("exp", ""))
    except ValueError:
        return error_response(403, "Forbidden")
    file_id = str(params["file_id"])
    signature = query.get("sig", "")
    if expires < time.time() or not runtime.signer.verify(instance_id, file_id, expires, signature):
        return error_response(403, "Forbidden")
    file = await runtime.files.get(file_id)
    if file is None or file.instance_id != instance_id:
        return error_response(404, "Not Found")
    try:
        file = await runtime.files.materialize(file)
    except UpstreamFileGone:
        return error_response(410, "Gone")
    except UpstreamError:
        return error_response(502, "Bad Gateway")
    assert file.sha256 is not None
    headers = _headers(file)
    if _not_modified(request, headers["etag"]):
        return Response(status_code=304, headers={"etag": headers["etag"]})
    key = blob_key(file.sha256)
    size = file.size if file.size is not None else await runtime.blobs.size(key)
    ranges = parse_ranges(request.headers.get("range"), size)
    if ranges == []:
        return error_response(416, "Range Not Satisfiable", {"content-range": f"bytes */{size}"})
    path = runtime.blobs.local_path(key)
    if path is not None:
        response: Response = FileResponse(path, media_type=file.mime_type, headers=headers)
        if ranges is None and "range" in request.headers:
            response = _IgnoringRange(response)
    else:
        response = _stream(runtime, file, key, size, ranges, headers, request)
    client = request.client.host if request.client else "unknown"
    return runtime.download_guard.guard(client, instance_id, response)


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


class _IgnoringRange(Response):
    """Serves a response as if the request had no Range header (an ignorable one)."""

    def __init__(self, inner: Response) -> None:
        self._inner = inner
        self.status_code = inner.status_code
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"range", b"if-range")]
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
