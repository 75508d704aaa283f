"""P5's webhook receiver: a bare Starlette app that counts deliveries and their latency.

Served by granian on the client CPU. A delivery whose text is ``t=<unix seconds>`` (the moment
the load generator sent the inbound message) adds ``now - t`` to the latencies; ``GET /stats``
returns the count, the first and last arrival times and the latencies; ``POST /reset`` clears.
"""

from __future__ import annotations

import json
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

STATE: dict[str, list[float]] = {"arrivals": [], "latencies": []}


async def hook(request: Request) -> Response:
    """Take one delivery."""
    now = time.time()
    body = json.loads(await request.body())
    STATE["arrivals"].append(now)
    text = body.get("messageData", {}).get("textMessageData", {}).get("textMessage", "")
    if text.startswith("t="):
        STATE["latencies"].append(now - float(text[2:]))
    return Response(status_code=200)


async def stats(_request: Request) -> JSONResponse:
    """What arrived so far."""
    arrivals = STATE["arrivals"]
    return JSONResponse(
        {
            "count": len(arrivals),
            "first": arrivals[0] if arrivals else None,
            "last": arrivals[-1] if arrivals else None,
            "latencies": STATE["latencies"],
        }
    )


async def reset(_request: Request) -> JSONResponse:
    """Forget everything."""
    STATE["arrivals"], STATE["latencies"] = [], []
    return JSONResponse({"reset": True})


app = Starlette(
    routes=[
        Route("/hook", hook, methods=["POST"]),
        Route("/stats", stats, methods=["GET"]),
        Route("/reset", reset, methods=["POST"]),
    ]
)
