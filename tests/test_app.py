"""The app's composition: routes, the metrics middleware, settings from the environment."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.routing import Route

from maxgate.api.metrics import MetricsMiddleware
from maxgate.api.openapi import build_document
from maxgate.app import app_from_environ, create_app
from maxgate.settings import Settings

SERVICE_PATHS = {"/", "/health", "/ready", "/openapi.json", "/docs", "/docs/assets/{name}"}


@pytest.mark.parametrize("metrics", [True, False])
def test_the_metrics_setting_decides_route_and_middleware(
    settings: Settings, metrics: bool
) -> None:
    app = create_app(dataclasses.replace(settings, metrics=metrics))
    paths = {route.path for route in app.routes if isinstance(route, Route)}
    assert paths >= SERVICE_PATHS
    assert ("/metrics" in paths) is metrics
    assert any(m.cls is MetricsMiddleware for m in app.user_middleware) is metrics
    assert hasattr(app.state, "metrics") is metrics
    document, problems = build_document(app.routes)
    assert problems == []
    assert ("/metrics" in document["paths"]) is metrics


@pytest.fixture
def logger_levels() -> Iterator[None]:
    """Put back the logger levels a test changes (``app_from_environ`` quiets httpx's logger,
    which tests that read httpx's log lines rely on)."""
    loggers = [logging.root] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    levels = {logger.name: (logger, logger.level) for logger in loggers}
    yield
    for logger, level in levels.values():
        logger.setLevel(level)
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and name not in levels:
            logger.setLevel(logging.NOTSET)  # made during the test: back to its default


@pytest.mark.usefixtures("logger_levels")
def test_app_from_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAXGATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MAXGATE_METRICS", "false")
    app = app_from_environ()
    assert "/metrics" not in {route.path for route in app.routes if isinstance(route, Route)}
