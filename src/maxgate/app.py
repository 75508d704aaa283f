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
from maxgate.api.downloadguard import DownloadGuard
from maxgate.api.errors import (
    api_error_handler,
    http_exception_handler,
    internal_error_handler,
    storage_full_handler,
)
from maxgate.api.files import serve_link
from maxgate.api.health import health, ready
from maxgate.api.home import home_page
from maxgate.api.maxbot import maxbot_webhook
from maxgate.api.metrics import Metrics, MetricsMiddleware, metrics_endpoint
from maxgate.api.openapi import docs_asset, docs_page, openapi_endpoint
from maxgate.api.ratelimit import RateLimiter
from maxgate.api.routing import ALL_VERBS, V3Route, partner_endpoint
from maxgate.api.services import Services
from maxgate.errors import ApiError, StorageFull
from maxgate.runtime import Runtime
from maxgate.settings import Settings, load_settings

log = logging.getLogger(__name__)

App = Starlette
"""The maxgate app is a plain Starlette app: one router, one middleware stack for every route."""


def create_app(settings: Settings, *, workers: bool = True) -> Starlette:
    """The maxgate ASGI app; its lifespan opens the runtime and starts the background workers.

    Every route is described in the OpenAPI document (``maxgate.api.openapi``); a test fails
    when one is not.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The HTTP layer's own guards are handed to the routes through app.state, beside the
        # runtime (the domain's parts), which knows nothing of them.
        app.state.limiter = (
            RateLimiter(
                storage=settings.rate_limit_storage, overrides=settings.rate_limit_overrides
            )
            if settings.rate_limits
            else None
        )
        app.state.download_guard = DownloadGuard(
            per_client=settings.link_downloads_per_client,
            per_instance=settings.link_downloads_per_instance,
        )
        runtime = Runtime(settings)
        try:
            await runtime.open()
            if workers:
                await runtime.start_workers()
            app.state.runtime = runtime
            app.state.services = Services.of(runtime)
            yield
        finally:
            await runtime.close()
            if app.state.limiter is not None:
                app.state.limiter.close()

    # The hot routes first: the router tries routes in order, and these take most requests.
    routes = [
        V3Route(),
        Route("/files/{instance}/{file_id}/{name:path}", serve_link, methods=["GET", "HEAD"]),
        Route("/", home_page, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/openapi.json", openapi_endpoint, methods=["GET"]),
        Route("/docs", docs_page, methods=["GET"]),
        Route("/docs/assets/{name}", docs_asset, methods=["GET"]),
        Route("/partner/{method}/{token}", partner_endpoint, methods=ALL_VERBS),
        Route("/maxbot/webhook/{instance}", maxbot_webhook, methods=["POST"]),
    ]
    middleware = []
    if settings.metrics:
        metrics = Metrics()
        routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
        middleware.append(Middleware(MetricsMiddleware, metrics=metrics))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_exception_handler,
            # A full store is answered by the routes' own handler (no re-raise, no traceback).
            StorageFull: storage_full_handler,
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
    # httpx logs every request URL at INFO (sendFileByUrl fetches, with their query strings);
    # alembic says "Context impl SQLiteImpl" on every start.
    for chatty in ("httpx", "alembic"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.root.level))
    return create_app(settings)
