"""Build the Starlette application from a Settings object."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

import maxgate.api.methods  # noqa: F401 - registers every v3 method
from maxgate.api.errors import api_error_handler, http_exception_handler, internal_error_handler
from maxgate.api.files import serve_file
from maxgate.api.health import health, ready
from maxgate.api.metrics import Metrics, MetricsMiddleware, metrics_endpoint
from maxgate.api.openapi import docs_asset, docs_page, openapi_endpoint
from maxgate.api.routing import partner_endpoint, v3_endpoint
from maxgate.errors import ApiError
from maxgate.runtime import Runtime
from maxgate.settings import Settings, load_settings

log = logging.getLogger(__name__)

ALL_VERBS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_app(settings: Settings, *, workers: bool = True) -> Starlette:
    """The maxgate ASGI app; its lifespan opens the runtime and starts the background workers.

    Every route is described in the OpenAPI document (``maxgate.api.openapi``); a test fails
    when one is not.
    """

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
        Route("/ready", ready, methods=["GET"]),
        Route("/openapi.json", openapi_endpoint, methods=["GET"]),
        Route("/docs", docs_page, methods=["GET"]),
        Route("/docs/assets/{name}", docs_asset, methods=["GET"]),
        Route("/files/{instance}/{file_id}/{name:path}", serve_file, methods=["GET", "HEAD"]),
        Route("/partner/{method}/{token}", partner_endpoint, methods=ALL_VERBS),
    ]
    middleware = []
    if settings.metrics:
        metrics = Metrics()
        routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
        middleware.append(Middleware(MetricsMiddleware, metrics=metrics))
    for prefix in ("/v3", ""):
        routes.append(Route(prefix + v3, v3_endpoint, methods=ALL_VERBS))
        routes.append(Route(prefix + v3 + "/{extra}", v3_endpoint, methods=ALL_VERBS))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_exception_handler,
            Exception: internal_error_handler,
        },
    )
    if settings.metrics:
        app.state.metrics = metrics
    return app


def app_from_environ() -> Starlette:
    """Factory for server worker processes: settings come from MAXGATE_* variables."""
    settings = load_settings(environ=os.environ)
    logging.basicConfig(level=settings.log_level.upper())
    # httpx logs every request URL at INFO (sendFileByUrl fetches, with their query strings).
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.root.level))
    return create_app(settings)
