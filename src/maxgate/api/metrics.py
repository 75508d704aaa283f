"""Prometheus metrics: requests and latency by method, link bytes, and state read at scrape time.

Every app has its own ``CollectorRegistry`` (several apps in one process never collide). Labels
are bounded and never carry a token or a chatId: ``method`` is a v3 method's canonical name
(``unknown`` for names that are no method), ``files`` for the link route, ``partner:<name>``
for partner methods, the route template for the other routes, and ``unknown`` for paths that
match no route. The request middleware is pure ASGI and caches the label children, as it sits
on the hot path of every request (``/files/…`` and ``downloadFile`` at thousands per second).

Counters and histograms live in the process; with ``workers`` > 1 each worker counts its own
requests (Prometheus sees whichever answers the scrape). Gauges read from the database (files
by state, queue depths) are the same from every worker.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
from bisect import bisect_left
from collections.abc import Awaitable, Iterable, Iterator
from time import perf_counter
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maxgate import __version__
from maxgate.api.errors import error_response
from maxgate.api.files import serve_link
from maxgate.api.routing import (
    CLIENT_GONE,
    CLIENT_GONE_KEY,
    PARTNER_METHODS,
    method_name,
    partner_endpoint,
    v3_endpoint,
)
from maxgate.errors import StoreError
from maxgate.runtime import Runtime
from maxgate.store.counts import counts

log = logging.getLogger(__name__)

# From a cached link lookup (~1 ms) to a long poll of receiveNotification (up to 60 s).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
FILE_STATES = ("remote", "stored", "evicted")
SCRAPE_TIMEOUT = 5.0  # the database part of a scrape; Prometheus' own default timeout is 10 s


class _Series:
    """Requests of one (method, status): count, total seconds, and counts per latency bucket."""

    __slots__ = ("buckets", "count", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one: over the largest bound (+Inf)


class Metrics:
    """The app's registry, and the request metrics the middleware feeds.

    The request series are plain numbers, turned into metric families at scrape time: a
    prometheus_client child costs ~2 µs per request in locks, these ~0.5 µs. Every update and
    every scrape runs on the event loop's thread, so nothing needs a lock.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._series: dict[tuple[str, int], _Series] = {}
        self._link_bytes = 0
        self.registry.register(self)
        Info("maxgate", "The running maxgate.", registry=self.registry).info(
            {"version": __version__}
        )
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def observe(self, scope: Scope, status: int, sent: int, seconds: float) -> None:
        """Count one answered request (``sent``: body bytes) under its route's label."""
        self.count(method_label(scope), status, sent, seconds)

    def count(self, label: str, status: int, sent: int, seconds: float) -> None:
        """Count one answered request under ``label`` (a bounded label, never a token)."""
        series = self._series.get((label, status))
        if series is None:
            series = self._series[(label, status)] = _Series()
        series.count += 1
        series.seconds += seconds
        series.buckets[bisect_left(BUCKETS, seconds)] += 1  # le is inclusive, as bisect_left
        if sent and label == "files":
            self._link_bytes += sent

    def collect(self) -> Iterator[Metric]:
        """The request metrics as Prometheus families (the registry calls this on a scrape)."""
        requests = CounterMetricFamily(
            "maxgate_requests",
            "HTTP requests answered, by method (see docs/architecture.md) and status code.",
            labels=("method", "status"),
        )
        by_method: dict[str, _Series] = {}
        for (label, status), series in sorted(self._series.items()):
            requests.add_metric((label, str(status)), series.count)
            total = by_method.setdefault(label, _Series())
            total.count += series.count
            total.seconds += series.seconds
            total.buckets = [a + b for a, b in zip(total.buckets, series.buckets, strict=True)]
        yield requests
        duration = HistogramMetricFamily(
            "maxgate_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method.",
            labels=("method",),
        )
        bounds = [*(str(float(b)) for b in BUCKETS), "+Inf"]
        for label, total in by_method.items():
            cumulative = list(itertools.accumulate(total.buckets))
            duration.add_metric(
                (label,),
                buckets=list(zip(bounds, cumulative, strict=True)),
                sum_value=total.seconds,
            )
        yield duration
        yield CounterMetricFamily(
            "maxgate_file_link_bytes",
            "Bytes of file bodies sent by the link route (/files/…).",
            value=self._link_bytes,
        )


def method_label(scope: Scope) -> str:
    """The bounded ``method`` label of a request the router has seen (never a token): the one
    labeller of every route."""
    endpoint = scope.get("endpoint")
    if endpoint is v3_endpoint:
        return method_name(str(scope["path_params"]["method"]))
    if endpoint is serve_link:
        return "files"
    if endpoint is partner_endpoint:
        spec = PARTNER_METHODS.get(str(scope["path_params"]["method"]).lower())
        return "partner:" + (spec.name if spec is not None else "unknown")
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unknown"


class Sent:
    """A ``send`` that notes the status and the body bytes of the answer passing through it."""

    __slots__ = ("headers", "send", "sent", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 500  # an exception before the answer started: a 500 is what goes out
        self.sent = 0
        self.headers: Any = ()

    # A plain method handing back send's awaitable: one coroutine less per message.
    def __call__(self, message: Message) -> Awaitable[None]:
        kind = message["type"]
        if kind == "http.response.body":
            self.sent += len(message.get("body", b""))
        elif kind == "http.response.start":
            self.status = message["status"]
            self.headers = message.get("headers", ())
        elif kind == "http.response.pathsend":  # zero-copy: the whole file, as declared
            self.sent += _content_length(self.headers)
        return self.send(message)


class MetricsMiddleware:
    """Pure ASGI middleware timing every HTTP request and counting the body bytes it sends."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        counted = Sent(send)
        try:
            await self.app(scope, receive, counted)
        except ClientDisconnect:
            counted.status = CLIENT_GONE
            raise
        finally:
            if scope.get(CLIENT_GONE_KEY):  # the v3 routes answer it (a 400) and note it
                counted.status = CLIENT_GONE
            self.metrics.observe(scope, counted.status, counted.sent, perf_counter() - started)


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


class _Scrape:
    """One scrape: the registry's metrics, then the families read from the database."""

    def __init__(self, registry: CollectorRegistry, families: list[Metric]) -> None:
        self._registry = registry
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()
        yield from self._families


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``: the Prometheus text format (bearer auth when ``metrics_token`` is set)."""
    runtime: Runtime = request.app.state.runtime
    token = runtime.settings.metrics_token.reveal()
    if token:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), token.encode()
        ):
            return error_response(401, "Unauthorized", {"WWW-Authenticate": "Bearer"})
    metrics: Metrics = request.app.state.metrics
    families = [_upstream_errors(runtime), *await _state_families(runtime)]
    scrape: Collector = _Scrape(metrics.registry, families)
    return Response(generate_latest(scrape), media_type=CONTENT_TYPE_PLAIN_0_0_4)


def _upstream_errors(runtime: Runtime) -> Metric:
    family = CounterMetricFamily(
        "maxgate_upstream_errors",
        "Errors of the messenger upstream, by operation and error class.",
        labels=("operation", "error"),
    )
    for (operation, error), count in sorted(runtime.upstream.errors.items()):
        family.add_metric((operation, error), count)
    return family


async def _state_families(runtime: Runtime) -> list[Metric]:
    """Files by state and queue depths, counted in the database now (skipped if it fails)."""
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT):
            found = await counts(runtime.db)
    except (StoreError, TimeoutError) as exc:
        log.warning("metrics: the database part of the scrape failed: %s", exc)
        return []
    by_state, depths = found.files_by_state, found.queue_depths
    files = GaugeMetricFamily(
        "maxgate_files", "Files by state (remote, stored, evicted).", labels=("state",)
    )
    for state in sorted({*FILE_STATES, *by_state}):
        files.add_metric((state,), by_state.get(state, 0))
    queues = GaugeMetricFamily(
        "maxgate_queue_depth",
        "Entries waiting: outbox (messages not yet handed to the messenger), notifications "
        "(not yet received or delivered to the webhook).",
        labels=("queue",),
    )
    for queue, depth in depths.items():
        queues.add_metric((queue,), depth)
    return [files, queues]
