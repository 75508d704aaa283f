"""Bare Starlette file serving (P2's informational ceilings for granian file serving).

Serves the files under ``$BENCH_FILE_ROOT`` with no database, signature or guard: ``/{path}``
with ``FileResponse`` (granian's ``pathsend``), ``/read/{path}`` by reading the bytes on the event
loop into a plain ``Response`` (small files only) — what granian and Starlette give at best,
next to maxgate's link route and nginx.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

ROOT = Path(os.environ.get("BENCH_FILE_ROOT", ".")).resolve()


async def serve(request: Request) -> Response:
    """The file at the request path, under ROOT."""
    path = (ROOT / request.path_params["path"]).resolve()
    if not path.is_relative_to(ROOT) or not path.is_file():
        return Response(status_code=404)
    return FileResponse(path)


async def read(request: Request) -> Response:
    """The bytes of a small file under ROOT, read on the loop (no thread, no pathsend)."""
    path = (ROOT / request.path_params["path"]).resolve()
    if not path.is_relative_to(ROOT) or not path.is_file() or path.stat().st_size > 1024**2:
        return Response(status_code=404)
    return Response(path.read_bytes(), media_type="application/octet-stream")


app = Starlette(
    routes=[
        Route("/read/{path:path}", read, methods=["GET"]),
        Route("/{path:path}", serve, methods=["GET", "HEAD"]),
    ]
)
