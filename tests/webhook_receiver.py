"""A real HTTP webhook receiver on 127.0.0.1 for the tests: records what arrives, and can fail or
hang on purpose (``fail_next``, ``hang_next``)."""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@dataclasses.dataclass
class Delivery:
    """One POST as the receiver saw it."""

    headers: dict[str, str]
    raw: bytes
    status: int

    @property
    def body(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed


class Receiver:
    """Shared state of the receiver's handler threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        self.fail_next = 0  # answer 500 to this many POSTs
        self.hang_next = 0  # hold this many POSTs for hang_seconds without answering
        self.hang_seconds = 3.0
        self.delay = 0.0  # seconds every POST takes (a slow receiver)
        self.url = ""

    @property
    def accepted(self) -> list[Delivery]:
        """The deliveries answered 200, in arrival order."""
        with self.lock:
            return [d for d in self.deliveries if d.status == 200]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Delivery]:
        """Block until ``count`` deliveries were accepted; returns them."""
        deadline = time.monotonic() + timeout
        while len(self.accepted) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.accepted)} of {count} webhooks arrived")
            time.sleep(0.02)
        return self.accepted

    async def arrived(self, count: int, timeout: float = 20.0) -> list[Delivery]:
        """``wait_for`` for async tests (the event loop keeps running the gateway meanwhile)."""
        deadline = time.monotonic() + timeout
        while len(self.accepted) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.accepted)} of {count} webhooks arrived")
            await asyncio.sleep(0.02)
        return self.accepted

    def _handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", "0"))
        raw = handler.rfile.read(length)
        with self.lock:
            hang = self.hang_next > 0
            self.hang_next -= hang
            fail = not hang and self.fail_next > 0
            self.fail_next -= fail
        if hang:
            time.sleep(self.hang_seconds)
        elif self.delay:
            time.sleep(self.delay)
        status = 500 if fail or hang else 200
        with self.lock:
            self.deliveries.append(Delivery(dict(handler.headers.items()), raw, status))
        handler.send_response(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """Run a receiver on a free loopback port for the duration of the block."""
    receiver = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            receiver._handle(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
