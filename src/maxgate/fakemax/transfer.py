"""The fake's "CDN": the upload URLs ``POST /uploads`` hands out and the signed download links
of files (``/getfile?sig=…&expires=…&id=…``, like ``fd.oneme.ru``).

An upload URL takes one file, either as ``multipart/form-data`` with the field ``data`` or
"resumable": any other content type, in chunks named by ``Content-Range: bytes a-b/total``
(what the official TS client sends for video and audio). What the upload answers depends on
the type, as on the real platform: ``{"token"}`` for a file, ``{"photos": {…}}`` for an image,
``<retval>1</retval>`` for video and audio (whose token came with the URL). ``GET`` on the URL
tells how far an upload got.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from maxgate.fakemax.calls import json_response
from maxgate.fakemax.errors import error_body
from maxgate.fakemax.files import StoredFile, Upload

CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
FILENAME = re.compile(r'filename="?([^";]+)"?')
RETVAL = b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<retval>1</retval>'
# A 1x1 transparent PNG: stickers and avatars.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
CHUNK = 1 << 20


def _fail(status: int, code: str, message: str) -> Response:
    return json_response(error_body(code, message), status)


def _finished(upload: Upload) -> Response:
    stored = upload.file
    if stored.kind == "file":
        return json_response({"token": stored.token})
    if stored.kind == "image":
        return json_response({"photos": {f"p{stored.photo_id}": {"token": stored.token}}})
    return Response(RETVAL, media_type="text/xml")


async def _multipart(request: Request, stored: StoredFile) -> Response | None:
    async with request.form(max_files=1) as form:
        part = form.get("data")
        if not isinstance(part, UploadFile):
            return _fail(400, "proto.payload", "The multipart upload needs a file field 'data'")
        stored.filename = part.filename or stored.filename or f"file-{stored.file_id}"
        with stored.path.open("wb") as fh:
            while chunk := await part.read(CHUNK):
                fh.write(chunk)
    return None


async def _ranged(request: Request, upload: Upload) -> Response | None:
    stored = upload.file
    header = request.headers.get("content-range")
    disposition = FILENAME.search(request.headers.get("content-disposition", ""))
    name = request.headers.get("x-file-name") or (disposition.group(1) if disposition else "")
    stored.filename = name or stored.filename or f"file-{stored.file_id}"
    if header is None:  # one plain body: the whole file
        with stored.path.open("wb") as fh:
            async for chunk in request.stream():
                fh.write(chunk)
        return None
    match = CONTENT_RANGE.match(header.strip())
    if match is None:
        return _fail(400, "proto.payload", f"Bad Content-Range {header!r}: want bytes a-b/total")
    start, end, total = (int(g) for g in match.groups())
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
    if end < start or end >= total or len(data) != end - start + 1:
        return _fail(416, "range.not.satisfiable", f"Content-Range {header} does not fit the body")
    request.app.state.fakemax.files.write_range(stored, start, total, bytes(data))
    if stored.received < total:
        return Response(f"{start}-{end}/{total}", media_type="text/plain")
    return None


async def upload_endpoint(request: Request) -> Response:
    """``POST`` bytes to an upload URL; ``GET`` its status."""
    files = request.app.state.fakemax.files
    upload = files.uploads.get(request.path_params["upload_id"])
    if upload is None or upload.file.kind != request.path_params["kind"]:
        return _fail(404, "not.found", "Unknown upload URL")
    stored = upload.file
    if request.method == "GET":
        status = "complete" if stored.complete else "uploading"
        return json_response({"status": status, "size": stored.size, "received": stored.received})
    if stored.complete:
        return _fail(400, "upload.done", "This upload URL has already taken its file")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        answer = await _multipart(request, stored)
    else:
        answer = await _ranged(request, upload)
    if answer is not None:
        return answer
    files.finish(stored)
    return _finished(upload)


async def getfile(request: Request) -> Response:
    """A signed file link: the bytes (Range supported), 403 once expired, 404 once deleted."""
    query = request.query_params
    files = request.app.state.fakemax.files
    found: Any = files.check_link(
        query.get("id", ""), query.get("expires", ""), query.get("sig", "")
    )
    if found == "forbidden":
        return _fail(403, "access.denied", "The link is expired or its signature is wrong")
    if found == "gone":
        return _fail(404, "not.found", "The file was deleted")
    stored: StoredFile = found
    return FileResponse(stored.path, filename=stored.filename or f"file-{stored.file_id}")


async def pixel(request: Request) -> Response:
    """Sticker images and avatars: one pixel."""
    return Response(PIXEL, media_type="image/png")


ROUTES: list[Route] = [
    Route("/upload/{kind}/{upload_id}", upload_endpoint, methods=["GET", "POST"]),
    Route("/getfile", getfile, methods=["GET"]),
    Route("/getSmile", pixel, methods=["GET"]),
    Route("/i", pixel, methods=["GET"]),
]
