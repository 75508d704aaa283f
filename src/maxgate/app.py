"""Build the Starlette application from a Settings object."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import maxgate.api.methods  # noqa: F401 - registers every v3 method
from maxgate import __version__
from maxgate.api.errors import api_error_handler, http_exception_handler, internal_error_handler
from maxgate.api.files import serve_file
from maxgate.api.routing import json_response, partner_endpoint, v3_endpoint
from maxgate.errors import ApiError
from maxgate.runtime import Runtime
from maxgate.settings import Settings, load_settings

log = logging.getLogger(__name__)

ALL_VERBS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def health(_request: Request) -> Response:
    """Liveness."""
    return json_response({"status": "ok", "version": __version__})


def create_app(settings: Settings, *, workers: bool = True) -> Starlette:
    """The maxgate ASGI app; its lifespan opens the runtime and starts the background workers."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = Runtime(settings)
        await runtime.open()
        if workers:
            await runtime.start_workers()
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.close()

    v3 = "/waInstance{id_instance}/{method}/{token}"
    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/files/{instance}/{file_id}/{name:path}", serve_file, methods=["GET", "HEAD"]),
        Route("/partner/{method}/{token}", partner_endpoint, methods=ALL_VERBS),
    ]
    for prefix in ("/v3", ""):
        routes.append(Route(prefix + v3, v3_endpoint, methods=ALL_VERBS))
        routes.append(Route(prefix + v3 + "/{extra}", v3_endpoint, methods=ALL_VERBS))
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_exception_handler,
            Exception: internal_error_handler,
        },
    )


def app_from_environ() -> Starlette:
    """Factory for server worker processes: settings come from MAXGATE_* variables."""
    settings = load_settings(environ=os.environ)
    logging.basicConfig(level=settings.log_level.upper())
    return create_app(settings)
