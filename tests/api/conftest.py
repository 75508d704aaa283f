"""Fixtures of the HTTP API tests: gateways with their own settings, a small file server."""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from maxgate.app import create_app
from maxgate.runtime import Runtime
from maxgate.settings import Settings, load_settings
from tests.conftest import Account


@dataclasses.dataclass
class Gateway:
    """A gateway built from its own settings, with an in-process client."""

    settings: Settings
    runtime: Runtime
    client: httpx.AsyncClient

    async def account(self, name: str = "") -> Account:
        """A fresh instance of this gateway."""
        instance, token = await self.runtime.instances.create(name=name)
        return Account(instance, token)


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def make_gateway(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """Build gateways with settings overrides, e.g. ``await make_gateway(max_file_size="1MB")``.

    As the shared ``settings`` fixture, rate limits are off unless the overrides turn them on.
    """
    async with contextlib.AsyncExitStack() as stack:
        built = 0

        async def build(**overrides: Any) -> Gateway:
            nonlocal built
            built += 1
            data_dir = str(tmp_path / f"gateway{built}")
            settings = load_settings(
                overrides={"data_dir": data_dir, "rate_limits": False, **overrides}, environ={}
            )
            app = create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url=settings.base_url
                )
            )
            return Gateway(settings, app.state.runtime, client)

        yield build


@dataclasses.dataclass
class Served:
    """What the file server answers for one path."""

    body: bytes
    content_type: str = "application/octet-stream"
    send_length: bool = True
    status: int = 200


class FileServer:
    """A small real HTTP server on 127.0.0.1 (port 0) for sendFileByUrl."""

    def __init__(self) -> None:
        self.routes: dict[str, Served] = {}
        self.hits: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits.append(self.path)
                served = server.routes.get(self.path)
                if served is None:
                    self.send_error(404)
                    return
                self.send_response(served.status)
                self.send_header("Content-Type", served.content_type)
                if served.send_length:
                    self.send_header("Content-Length", str(len(served.body)))
                self.end_headers()
                try:
                    for start in range(0, len(served.body), 64 * 1024):
                        self.wfile.write(served.body[start : start + 64 * 1024])
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the gateway stopped reading (size limit): expected

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def serve(self, path: str, body: bytes, **options: Any) -> str:
        """Serve ``body`` at ``path``; returns its URL."""
        self.routes[path] = Served(body, **options)
        return self.url(path)

    def url(self, path: str) -> str:
        """The URL of a path on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    """A running FileServer, stopped after the test."""
    server = FileServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
