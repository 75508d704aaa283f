"""The fake MAX as an ASGI app: ``create_app(config)`` for tests (in-process, or under a real
server), ``app_from_environ`` for ``python -m maxgate.fakemax serve`` (granian's factory)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from maxgate.fakemax import botapi, chats, control, messages, transfer
from maxgate.fakemax.calls import json_response
from maxgate.fakemax.config import FakeMaxConfig
from maxgate.fakemax.errors import error_body
from maxgate.fakemax.server import FakeMax

HTTP_CODES = {404: "not.found", 405: "method.not.allowed"}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "error")
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return json_response(error_body(code, message), exc.status_code)


def create_app(config: FakeMaxConfig | None = None, *, fake: FakeMax | None = None) -> Starlette:
    """The fake's app; its state is ``app.state.fakemax`` (a ``FakeMax``)."""
    state = fake if fake is not None else FakeMax(config or FakeMaxConfig())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await state.webhooks.close()

    app = Starlette(
        routes=[
            *botapi.ROUTES,
            *messages.ROUTES,
            *chats.ROUTES,
            *transfer.ROUTES,
            *control.ROUTES,
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.fakemax = state
    return app


def app_from_environ() -> Starlette:
    """The app configured by ``FAKEMAX_*`` variables (one process, one world)."""
    return create_app(FakeMaxConfig.from_environ())
