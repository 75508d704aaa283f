"""The local channel between the gateway and the connector's worker process.

The gateway starts the worker (``python -m maxgate.upstream.maxuser.worker``) with pipes for its
standard input and output; nobody else holds their ends, so no socket, address or secret is
needed. Each message is one line of UTF-8 JSON (an object), at most ``LINE_LIMIT`` bytes:

* gateway → worker, a request: ``{"id": 7, "op": "send", "instance": 3, …}``;
* worker → gateway, its answer: ``{"id": 7, "ok": true, "result": …}`` or ``{"id": 7, "ok":
  false, "error": "a sentence"}`` (answers may come in any order);
* worker → gateway, an event (no ``id``): ``{"event": "state", "instance": 3, "state": …}``,
  ``"session"`` (PyMax saved or dropped the session), ``"message"``, ``"health"`` (every
  ``HEARTBEAT`` seconds).

The worker's own log goes to standard error, which it shares with the gateway. What crosses
the pipe may hold a session's token: neither side logs a line of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from maxgate.errors import UpstreamError

log = logging.getLogger(__name__)

LINE_LIMIT = 4 * 1024 * 1024  # bytes of one message (a text of MAX's 4,000 characters fits)
HEARTBEAT = 5.0  # seconds between the worker's health events
REQUEST_TIMEOUT = 60.0  # seconds an answer may take (a send waits for MAX's answer)
WORKER_MODULE = "maxgate.upstream.maxuser.worker"

Message = dict[str, Any]


def encode(message: Message) -> bytes:
    """One message as its line."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> Message:
    """A line as its message (``ValueError`` for anything but a JSON object)."""
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a channel message is a JSON object")
    return message


class WorkerGone(UpstreamError):
    """The worker process ended (or was never started) before it answered."""


class WorkerProcess:
    """One run of the worker process, seen from the gateway: requests with their answers, and
    every event handed to ``on_event`` in the order the worker sent them."""

    def __init__(self, on_event: Callable[[Message], Awaitable[None]]) -> None:
        self._on_event = on_event
        self._process: asyncio.subprocess.Process | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        pid = self._process.pid if self._process is not None else None
        return f"<maxuser worker pid={pid}>"

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Start the worker with this interpreter."""
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            WORKER_MODULE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
        )
        self._reader = asyncio.create_task(self._read(), name="maxgate-maxuser-channel")

    async def wait(self) -> int:
        """Wait until the worker has ended and every event it sent was handled; its exit code."""
        if self._process is None:
            return 0
        if self._reader is not None:
            await self._reader
        return await self._process.wait()

    async def request(self, op: str, wait: float = REQUEST_TIMEOUT, **fields: Any) -> Any:
        """Send a request and wait for its answer: the result, or ``UpstreamError`` with the
        worker's sentence (``WorkerGone`` when the worker ends first)."""
        process = self._process
        if process is None or process.stdin is None or process.returncode is not None:
            raise WorkerGone("the MAX user connector's worker is not running")
        request_id = next(self._ids)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer
        try:
            process.stdin.write(encode({"id": request_id, "op": op, **fields}))
            try:
                await process.stdin.drain()
            except (ConnectionError, OSError) as exc:
                raise WorkerGone("the MAX user connector's worker is gone") from exc
            try:
                async with asyncio.timeout(wait):
                    return await answer
            except TimeoutError:
                raise UpstreamError(
                    f"the MAX user connector did not answer {op} within {wait:g} s"
                ) from None
        finally:
            self._waiting.pop(request_id, None)

    async def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout
        try:
            while True:
                try:
                    line = await stdout.readline()
                except ValueError:  # longer than LINE_LIMIT: the channel is out of step
                    log.error("maxuser worker: a message over %d bytes; stopping it", LINE_LIMIT)
                    self.kill()
                    return
                if not line:
                    return
                try:
                    message = decode(line)
                except ValueError:
                    log.error("maxuser worker: an unreadable line on the channel; stopping it")
                    self.kill()
                    return
                request_id = message.get("id")
                if isinstance(request_id, int):
                    self._answer(request_id, message)
                    continue
                try:
                    await self._on_event(message)
                except Exception:  # one bad event must not stop the channel
                    log.exception("maxuser worker: event %s failed", message.get("event"))
        finally:
            for waiting in self._waiting.values():
                if not waiting.done():
                    waiting.set_exception(WorkerGone("the MAX user connector's worker ended"))

    def _answer(self, request_id: int, message: Message) -> None:
        waiting = self._waiting.get(request_id)
        if waiting is None or waiting.done():
            return
        if message.get("ok"):
            waiting.set_result(message.get("result"))
        else:
            waiting.set_exception(UpstreamError(str(message.get("error") or "failed")))

    def kill(self) -> None:
        """End the worker at once (SIGKILL)."""
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signal.SIGKILL)

    async def close(self, grace: float = 5.0) -> None:
        """Close the worker's input (it closes its connections to MAX and exits; sessions stay
        valid), killed after ``grace`` seconds."""
        process = self._process
        if process is None:
            return
        if process.stdin is not None and not process.stdin.is_closing():
            process.stdin.close()
        try:
            async with asyncio.timeout(grace):
                await process.wait()
        except TimeoutError:
            self.kill()
            await process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
