"""``POST /maxbot/webhook/{instance}``: where MAX delivers a ``maxbot`` instance's updates in
webhook mode (``maxbot_updates``; docs/max-bot.md).

The body is one Bot API ``Update``; ``X-Max-Bot-Api-Secret`` must be the secret maxgate gave
MAX when it subscribed. The update is journaled before the answer (200), so an update MAX was
told we took is kept; anything else makes MAX deliver it again.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from maxgate.api.errors import error_response
from maxgate.api.routing import json_response
from maxgate.runtime import Runtime

MAX_UPDATE = 1024 * 1024  # bytes of one update at most (a message is ≤ 4000 characters)
_REASONS = {
    400: "the body is not a Bot API update",
    403: "wrong X-Max-Bot-Api-Secret",
}


async def maxbot_webhook(request: Request) -> Response:
    """Journal one update MAX delivered, then answer 200."""
    runtime: Runtime = request.app.state.runtime
    try:
        instance_id = int(request.path_params["instance"])
    except ValueError:
        return error_response(403, _REASONS[403])
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPDATE:
        return error_response(413, "the update is too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPDATE:
            return error_response(413, "the update is too large")
    secret = request.headers.get("x-max-bot-api-secret", "")
    status = await runtime.maxbot.deliver(instance_id, secret, bytes(body))
    if status != 200:
        return error_response(status, _REASONS[status])
    return json_response({"ok": True})
