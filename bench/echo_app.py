"""P1's baseline: a bare Starlette app that echoes a JSON POST body back as JSON.

Served by the same granian as maxgate (``granian --interface asgi bench.echo_app:app``). It takes
any path, so wrk can replay exactly the request stream it sends to maxgate's downloadFile.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def echo(request: Request) -> JSONResponse:
    """Parse the JSON body and send it back."""
    return JSONResponse(await request.json())


app = Starlette(routes=[Route("/{path:path}", echo, methods=["POST"])])
