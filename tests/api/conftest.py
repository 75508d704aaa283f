"""Fixtures of the HTTP API tests: a small file server (gateways: tests/conftest.py)."""

from __future__ import annotations

import dataclasses
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Gateway, GatewayFactory

__all__ = ["FileServer", "Gateway", "GatewayFactory"]


@dataclasses.dataclass
class Served:
    """What the file server answers for one path."""

    body: bytes
    content_type: str = "application/octet-stream"
    send_length: bool = True
    status: int = 200
    location: str | None = None


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
                if served.location is not None:
                    self.send_header("Location", served.location)
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

    def redirect(self, path: str, target: str) -> str:
        """Answer ``path`` with a 302 to ``target``; returns its URL."""
        return self.serve(path, b"", status=302, location=target)

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
