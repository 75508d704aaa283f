"""Transports for the client tests: a sync bridge to the app, and fakes that cut or record."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Iterator

import httpx


class _Replay(httpx.SyncByteStream):
    """A body that was read elsewhere: its pieces, then the error that ended it (if any)."""

    def __init__(self, chunks: list[bytes], error: Exception | None) -> None:
        self._chunks = chunks
        self._error = error

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks
        if self._error is not None:
            raise self._error


class LoopTransport(httpx.BaseTransport):
    """A sync transport that runs an async one on the event loop of another thread.

    The sync ``Client`` blocks in a worker thread while the app serves its requests on the
    test's loop; a body that breaks off arrives as the bytes read, then the error.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, loop: asyncio.AbstractEventLoop) -> None:
        self._inner = inner
        self._loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"transfer-encoding"]

        async def run() -> tuple[int, list[tuple[bytes, bytes]], list[bytes], Exception | None]:
            forwarded = httpx.Request(request.method, request.url, headers=headers, content=body)
            response = await self._inner.handle_async_request(forwarded)
            chunks: list[bytes] = []
            error: Exception | None = None
            try:
                if response.is_stream_consumed:  # a fake built it with content=…
                    chunks.append(response.content)
                else:
                    async for chunk in response.aiter_raw():
                        chunks.append(chunk)
            except httpx.TransportError as exc:
                error = exc
            finally:
                await response.aclose()
            return response.status_code, response.headers.raw, chunks, error

        status, raw, chunks, error = asyncio.run_coroutine_threadsafe(run(), self._loop).result()
        return httpx.Response(status, headers=raw, stream=_Replay(chunks, error), request=request)


class _CutStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, after: int, error: bool) -> None:
        self._inner = inner
        self._after = after
        self._error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        async for chunk in self._inner:
            if sent + len(chunk) >= self._after:
                yield chunk[: self._after - sent]
                if self._error:
                    raise httpx.ReadError("the connection dropped")
                return
            sent += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class Recorder(httpx.AsyncBaseTransport):
    """Passes requests on, keeping each request and its status; can break file-link bodies.

    ``cut_after`` bytes into the body of the first ``cuts`` file-link answers (``/files/…``),
    the connection "drops" (``httpx.ReadError``), or — with ``silent`` — the body just ends.
    ``tamper`` rewrites file-link bodies (to corrupt them).
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        cut_after: int = 0,
        cuts: int = 0,
        silent: bool = False,
        tamper: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self._inner = inner
        self.cut_after = cut_after
        self.cuts = cuts
        self.silent = silent
        self.tamper = tamper
        self.requests: list[httpx.Request] = []
        self.statuses: list[int] = []

    def links(self) -> list[httpx.Request]:
        """The file-link requests."""
        return [r for r in self.requests if r.url.path.startswith("/files/")]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = await self._inner.handle_async_request(request)
        self.statuses.append(response.status_code)
        if not request.url.path.startswith("/files/"):
            return response
        if self.tamper is not None:
            body = self.tamper(await response.aread())
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        if self.cuts > 0 and response.status_code in (200, 206):
            self.cuts -= 1
            stream = _CutStream(response.stream, self.cut_after, not self.silent)  # type: ignore[arg-type]
            return httpx.Response(response.status_code, headers=response.headers, stream=stream)
        return response


def sha256(data: bytes) -> str:
    """Hex SHA-256."""
    return hashlib.sha256(data).hexdigest()
