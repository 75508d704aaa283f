"""How one Bot API call runs: the checks every call passes in the real platform's order
(unavailable → rate limit → token), the handler, the ``Error`` shape for any failure, and the
record of the exchange that observers (the contract check) see.

Routes are declared with the schema's own path templates (``/messages/{messageId}``), so an
exchange names its operation exactly as ``schema.yaml`` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from maxgate.fakemax.errors import ApiError, bad_request, error_body
from maxgate.fakemax.render import Renderer
from maxgate.fakemax.world import Bot, World

if TYPE_CHECKING:
    from maxgate.fakemax.server import FakeMax


@dataclasses.dataclass(frozen=True)
class Exchange:
    """One request the fake received (or one webhook it sent) and its answer."""

    kind: str  # "call": a Bot API call; "webhook": an update the fake POSTed
    method: str
    path: str  # the schema's path template, e.g. "/messages/{messageId}"
    path_params: dict[str, str]
    query: list[tuple[str, str]]
    body: Any  # decoded JSON, or None
    status: int
    response: Any  # decoded JSON, or None


def json_response(content: Any, status: int = 200) -> Response:
    """A JSON answer."""
    return Response(msgspec.json.encode(content), status, media_type="application/json")


class Call:
    """What a handler is given: the request, the bot it is for and the fake's state."""

    def __init__(self, request: Request, fake: FakeMax, bot: Bot, body: Any) -> None:
        self.request = request
        self.fake = fake
        self.bot = bot
        self.body = body
        self.render: Renderer = fake.renderer(request)

    @property
    def world(self) -> World:
        return self.fake.world

    def query(self, name: str) -> str | None:
        """A query parameter's text, or None when absent."""
        return self.request.query_params.get(name)

    def query_int(self, name: str, *, default: int | None = None) -> int | None:
        """An integer query parameter."""
        raw = self.query(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise bad_request(f"Parameter {name} must be an integer, got {raw!r}") from None

    def query_list(self, name: str) -> list[str] | None:
        """A comma-separated query parameter (``types``, ``message_ids``, ``user_ids``)."""
        raw = self.query(name)
        if raw is None or raw == "":
            return None
        return [part for part in raw.split(",") if part]

    def path_int(self, name: str) -> int:
        """An integer path parameter (``chatId``, ``userId``)."""
        raw = self.request.path_params[name]
        try:
            return int(raw)
        except ValueError:
            raise ApiError(404, "not.found", f"No chat {raw!r}: expected a number") from None

    def body_object(self) -> dict[str, Any]:
        """The JSON body, which must be an object."""
        if not isinstance(self.body, dict):
            raise bad_request("The request body must be a JSON object")
        return self.body


Handler = Callable[[Call], Awaitable[Any]]


async def _read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise bad_request("The request body is not valid JSON") from None


def bot_route(path: str, method: str, handler: Handler) -> Route:
    """A Bot API route: ``handler``'s result is the 200 body; an ``ApiError`` is the error."""

    async def endpoint(request: Request) -> Response:
        fake: FakeMax = request.app.state.fakemax
        body: Any = None
        try:
            fake.admit(request)
            bot = fake.authenticate(request)
            if method in ("POST", "PUT", "PATCH"):
                body = await _read_json(request)
            status, result = 200, await handler(Call(request, fake, bot, body))
        except ApiError as exc:
            status, result = exc.status, error_body(exc.code, exc.message)
        fake.observe(
            Exchange(
                "call",
                method,
                path,
                {k: str(v) for k, v in request.path_params.items()},
                list(request.query_params.multi_items()),
                body,
                status,
                result,
            )
        )
        return json_response(result, status)

    endpoint.__name__ = f"{method.lower()}_{handler.__name__}"
    return Route(path, endpoint, methods=[method])
