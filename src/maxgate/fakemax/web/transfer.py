"""The web fake's HTTP side: upload URLs and temporary download URLs.

Uploads follow ``UploadService`` (``pymax/api/uploads/service.py``): files, videos and voice
are one POST of the raw bytes with ``Content-Length`` and ``Content-Range`` (``0-{n-1}/{n}``
for files, ``bytes 0-{n-1}/{n}`` for video); the client then waits up to 60 s for NOTIF_ATTACH
keyed by ``fileId`` / ``videoId``, which the fake pushes once the bytes are in (after
``attach_ready_seconds``). Photos are a multipart form with a ``file`` field, answered with
``{photos: {<photoId>: {token}}}`` (``PhotoUploadResponse``, ``api/uploads/models.py``).

``WebFake.faults.drop_uploads`` makes an upload lose its connection after its first bytes.

Downloads: the URLs of FILE_DOWNLOAD, VIDEO_PLAY and of photo ``baseUrl`` / audio ``url``
work until ``link_lifetime_seconds`` pass or a test expires them (403), and answer 404 once
the file is deleted.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from maxgate.fakemax.web.server import WebFake

RANGE = re.compile(r"^(?:bytes )?(\d+)-(\d+)/(\d+)$")
FAKE: web.AppKey[WebFake] = web.AppKey("fakemax_web")


def _fake(request: web.Request) -> WebFake:
    return request.app[FAKE]


async def download(request: web.Request) -> web.StreamResponse:
    """GET a temporary download URL."""
    found = _fake(request).world.resolve_link(request.match_info["token"])
    if found == "expired":
        return web.Response(status=403, text="link expired")
    if isinstance(found, str):
        return web.Response(status=404, text="file not found")
    return web.Response(
        body=found.data,
        content_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{found.name or found.file_id}"'},
    )


async def upload(request: web.Request) -> web.StreamResponse:
    """POST an upload's bytes to its slot URL."""
    fake = _fake(request)
    slot = fake.world.uploads.get(request.match_info["slot"])
    if slot is None:
        return web.json_response({"error": "upload slot not found"}, status=404)
    if slot.done:
        return web.json_response({"error": "upload slot already used"}, status=409)
    stored = slot.file
    if fake.faults.drop_uploads > 0:
        fake.faults.drop_uploads -= 1
        await request.content.read(1024)
        if request.transport is not None:
            request.transport.abort()  # the connection is lost mid-upload
        return web.Response(status=500)
    if stored.kind == "photo":
        form = await request.post()
        part = form.get("file")
        if not isinstance(part, web.FileField):
            return web.json_response({"error": "multipart field file is missing"}, status=400)
        stored.data = part.file.read()
        stored.name = part.filename
    else:
        data = await request.read()
        declared = request.headers.get("Content-Range", "")
        match = RANGE.match(declared)
        if match is None or int(match[3]) != len(data) or int(match[1]) != 0:
            text = f"Content-Range {declared!r} does not cover the {len(data)} bytes sent"
            return web.json_response({"error": text}, status=400)
        stored.data = data
        stored.name = _filename(request.headers.get("Content-Disposition", ""))
    slot.done = True
    if stored.kind == "photo":
        stored.ready = True
        return web.json_response({"photos": {str(stored.file_id): {"token": stored.token}}})
    fake.attach_ready_later(stored, slot.account_id)
    return web.json_response({})


def _filename(disposition: str) -> str:
    from urllib.parse import unquote

    match = re.search(r"filename=\"?([^\";]+)\"?", disposition)
    return unquote(match[1]) if match else ""


ROUTES = [
    web.get("/files/{token}", download),
    web.post("/uploads/{slot}", upload),
]
