"""Build the Starlette application from a Settings object."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator
from time import perf_counter

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

import maxgate.api.methods  # noqa: F401 - registers every v3 method
from maxgate.api.downloadguard import DownloadGuard
from maxgate.api.errors import (
    api_error_handler,
    http_exception_handler,
    internal_error_handler,
    storage_full_handler,
)
from maxgate.api.files import LINK_PATH, serve_file, serve_link
from maxgate.api.health import health, ready
from maxgate.api.home import home_page
from maxgate.api.metrics import Metrics, MetricsMiddleware, Sent, metrics_endpoint
from maxgate.api.openapi import docs_asset, docs_page, openapi_endpoint
from maxgate.api.ratelimit import RateLimiter
from maxgate.api.routing import V3_PATH, partner_endpoint, serve_v3, v3_endpoint, v3_label
from maxgate.errors import ApiError, StorageFull
from maxgate.runtime import Runtime
from maxgate.settings import Settings, load_settings

log = logging.getLogger(__name__)

ALL_VERBS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_VERBS = frozenset(ALL_VERBS)  # other verbs get Starlette's 405 on every route


class App(Starlette):
    """Starlette, with the two hot routes answered before its middleware and router.

    Every v3 method (``downloadFile`` above all) comes through ``serve_v3`` and every GET/HEAD
    of a file link through ``serve_link``: a path match, then the route's own work, without the
    error and exception middleware, the route scan and (for v3) a request object per call,
    which cost more than the method's own work. The routes stay declared (the OpenAPI document
    and ``/metrics`` read them); Starlette serves them only for what the fast match does not
    take. Everything else goes through Starlette as usual.
    """

    metrics: Metrics | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if scope["method"] in _VERBS and (match := V3_PATH.fullmatch(path)):
                await self._v3(scope, receive, send, match)
                return
            if scope["method"] in ("GET", "HEAD") and (match := LINK_PATH.fullmatch(path)):
                await self._link(scope, receive, send, match)
                return
        await super().__call__(scope, receive, send)

    async def _v3(self, scope: Scope, receive: Receive, send: Send, match: re.Match[str]) -> None:
        scope["app"] = self
        if self.metrics is None:
            await serve_v3(self.state.runtime, scope, receive, send, match)
            return
        started = perf_counter()
        counted = Sent(send)
        status: int | None = None
        try:
            status = await serve_v3(self.state.runtime, scope, receive, counted, match)
        finally:
            seconds = perf_counter() - started
            self.metrics.count(v3_label(match), status or counted.status, 0, seconds)

    async def _link(self, scope: Scope, receive: Receive, send: Send, match: re.Match[str]) -> None:
        scope["app"] = self
        if self.metrics is None:
            await serve_link(scope, receive, send, match)
            return
        started = perf_counter()
        counted = Sent(send)
        try:
            await serve_link(scope, receive, counted, match)
        finally:
            self.metrics.count("files", counted.status, counted.sent, perf_counter() - started)


def create_app(settings: Settings, *, workers: bool = True) -> App:
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
            yield
        finally:
            await runtime.close()
            if app.state.limiter is not None:
                app.state.limiter.close()

    v3 = "/waInstance{id_instance}/{method}/{token}"
    routes = [
        Route("/", home_page, methods=["GET"]),
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
    app = App(
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
        app.state.metrics = app.metrics = metrics
    return app


def app_from_environ() -> App:
    """Factory for server worker processes: settings come from MAXGATE_* variables."""
    settings = load_settings(environ=os.environ)
    logging.basicConfig(level=settings.log_level.upper())
    # httpx logs every request URL at INFO (sendFileByUrl fetches, with their query strings);
    # alembic says "Context impl SQLiteImpl" on every start.
    for chatty in ("httpx", "alembic"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.root.level))
    return create_app(settings)
