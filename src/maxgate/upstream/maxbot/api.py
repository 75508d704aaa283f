"""The MAX Bot API as one bot token calls it: ``Authorization: <token>`` (no ``Bearer``), JSON
in and out, the schema's ``Error`` shape on failure, and never more than ``rps`` requests in any
second (MAX asks for about 30; a burst above it is what gets a bot limited or banned).

Every call goes through the one outbound client (``maxgate.net``); the TLS context trusts the
system's roots and the Минцифры root CA that ``platform-api2.max.ru`` needs (or the operator's
bundle). 429 and 503 are retried with growing, jittered pauses (MAX sends no ``Retry-After``);
a GET that fails on the network is retried too; a POST that may have reached MAX is not (the
outbox decides). 401 is ``TokenRevoked``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import secrets
import ssl
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from importlib import resources
from typing import Any

import httpx

from maxgate.errors import OutboundError, UpstreamError
from maxgate.net.client import OutboundClient
from maxgate.net.deadlines import MIN_RATE
from maxgate.net.exchange import exchange

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://platform-api2.max.ru"
CA_FILE = "russian_trusted_root_ca.pem"
RETRIES = 6  # attempts after the first, for 429 / 503 / a GET's network failure
NOT_READY = "attachment.not.ready"
NOT_READY_PAUSES = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0)  # ~80 s in all
UPLOAD_KINDS = ("image", "video", "audio", "file")


def trusted_context(ca_bundle: str = "") -> ssl.SSLContext:
    """The TLS context for MAX: certifi's roots and the Минцифры root CA shipped with maxgate
    (``russian_trusted_root_ca.pem``, see its README), or only ``ca_bundle`` when given."""
    if ca_bundle:
        return ssl.create_default_context(cafile=ca_bundle)
    context = httpx.create_ssl_context(trust_env=False)
    context.load_verify_locations(
        cadata=resources.files(__package__).joinpath(CA_FILE).read_text("ascii")
    )
    return context


class BotApiError(UpstreamError):
    """MAX answered a call with an error: its HTTP status and the ``Error``'s ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"MAX Bot API answered {status} {code}: {message}".rstrip(": "))
        self.status = status
        self.code = code


class TokenRevoked(BotApiError):
    """401: the bot token is wrong or was revoked."""


class _Slot:
    """One call's place in a ``RateWindow``: when the call ended (``inf`` while under way)."""

    __slots__ = ("end",)

    def __init__(self) -> None:
        self.end = math.inf


class RateWindow:
    """At most ``rate`` calls in any ``period`` seconds, as the server counts them. A call holds
    one of ``rate`` slots from when it starts until ``period`` (+ ``margin``) after its answer
    came. The server counts it on arrival, somewhere in between, however long the network or a
    busy server delayed it; so any ``rate + 1`` calls arrive more than ``period`` apart. (A log
    of start times alone is beaten by a spread of delays above the margin: calls that left
    apart arrive bunched — on a loaded machine the fake counted 31 in a second.)"""

    def __init__(self, rate: int, *, period: float = 1.0, margin: float = 0.05) -> None:
        self.rate = rate
        self.period = period + margin
        self._slots: list[_Slot] = []
        self._lock = asyncio.Lock()
        self._released = asyncio.Event()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the duration of one call (waiting until one is free)."""
        if self.rate <= 0:
            yield
            return
        held = await self._acquire()
        try:
            yield
        finally:
            held.end = asyncio.get_running_loop().time()
            self._released.set()

    async def _acquire(self) -> _Slot:
        async with self._lock:
            loop = asyncio.get_running_loop()
            while True:
                now = loop.time()
                self._slots = [s for s in self._slots if s.end + self.period > now]
                if len(self._slots) < self.rate:
                    held = _Slot()
                    self._slots.append(held)
                    return held
                self._released.clear()
                soonest = min(s.end for s in self._slots) + self.period - now
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(None if math.isinf(soonest) else soonest):
                        await self._released.wait()  # a call ended: its slot frees later


def _pause(attempt: int) -> float:
    """Seconds before retry ``attempt`` (0-based): 0.5 s doubling to 30 s, ±50 % jitter."""
    return min(30.0, 0.5 * 2.0**attempt) * random.uniform(0.5, 1.5)


def _error(status: int, body: bytes) -> BotApiError:
    code, message = "", ""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        code = str(parsed.get("code") or parsed.get("error") or "")
        message = str(parsed.get("message") or "")
    kind = TokenRevoked if status == 401 else BotApiError
    return kind(status, code or "unknown", message[:300])


class BotApi:
    """The calls of one bot. Its repr shows the base URL, never the token."""

    def __init__(
        self,
        client: OutboundClient,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        window: RateWindow,
        timeout: float = 30.0,
    ) -> None:
        self._client = client
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.window = window
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"BotApi(base_url={self.base_url!r})"

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        deadline: float | None = None,
    ) -> Any:
        """One call of the API: the answer's JSON, or ``BotApiError`` / ``UpstreamError``."""
        url = self.base_url + path
        if query:
            shown = {k: v for k, v in query.items() if v is not None}
            url += "?" + urllib.parse.urlencode(shown, doseq=True)
        headers = {"Authorization": self._token, "Accept": "application/json"}
        payload = b""
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body, ensure_ascii=False).encode()
        for attempt in range(RETRIES + 1):
            try:
                async with self.window.slot():
                    answer = await exchange(
                        self._client,
                        method,
                        url,
                        headers=headers,
                        body=payload,
                        deadline=deadline or self.timeout,
                    )
            except OutboundError as exc:
                if method == "GET" and attempt < RETRIES:
                    log.warning("MAX Bot API %s %s failed (%s); retrying", method, path, exc)
                    await asyncio.sleep(_pause(attempt))
                    continue
                raise UpstreamError(f"MAX Bot API {method} {path}: {exc}") from exc
            if 200 <= answer.status < 300:
                try:
                    return json.loads(answer.body) if answer.body else {}
                except ValueError as exc:
                    raise UpstreamError(f"MAX Bot API {method} {path}: not JSON") from exc
            if answer.status in (429, 503) and attempt < RETRIES:
                log.warning(
                    "MAX Bot API answered %d to %s %s; backing off", answer.status, method, path
                )
                await asyncio.sleep(_pause(attempt))
                continue
            raise _error(answer.status, answer.body)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def me(self) -> dict[str, Any]:
        """``GET /me``: who the bot is."""
        found: dict[str, Any] = await self.call("GET", "/me")
        return found

    async def updates(self, marker: int | None, *, wait: int, limit: int = 100) -> dict[str, Any]:
        """``GET /updates``: a long poll of up to ``wait`` seconds from ``marker``."""
        query = {"limit": limit, "timeout": wait, "marker": marker}
        found: dict[str, Any] = await self.call(
            "GET", "/updates", query=query, deadline=wait + self.timeout
        )
        return found

    async def message(self, mid: str) -> dict[str, Any]:
        """``GET /messages/{mid}``: a message with fresh file URLs."""
        found: dict[str, Any] = await self.call("GET", f"/messages/{urllib.parse.quote(mid)}")
        return found

    async def video(self, token: str) -> dict[str, Any]:
        """``GET /videos/{token}``: a video's direct URLs."""
        found: dict[str, Any] = await self.call("GET", f"/videos/{urllib.parse.quote(token)}")
        return found

    async def chat(self, chat_id: int) -> dict[str, Any]:
        """``GET /chats/{chatId}``."""
        found: dict[str, Any] = await self.call("GET", f"/chats/{chat_id}")
        return found

    async def send(self, recipient: Mapping[str, int], body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /messages``; ``attachment.not.ready`` (a fresh upload still processing) is
        retried with growing pauses, as MAX asks."""
        for pause in (*NOT_READY_PAUSES, None):
            try:
                found: dict[str, Any] = await self.call(
                    "POST", "/messages", query=recipient, body=body
                )
            except BotApiError as exc:
                if exc.code != NOT_READY or pause is None:
                    raise
                await asyncio.sleep(pause)
                continue
            return found
        raise AssertionError("unreachable")  # pragma: no cover

    async def upload(
        self, kind: str, file_name: str, mime_type: str, size: int, body: AsyncIterator[bytes]
    ) -> dict[str, Any]:
        """Upload a file (``POST /uploads`` → the upload URL, the bytes streamed as the
        multipart field ``data``) and return the attachment for ``POST /messages``."""
        slot = await self.call("POST", "/uploads", query={"type": kind})
        url = slot.get("url") if isinstance(slot, dict) else None
        if not isinstance(url, str):
            raise UpstreamError("MAX Bot API gave no upload URL")
        boundary = "maxgate" + secrets.token_hex(12)
        safe_name = "".join(ch for ch in file_name if ch not in '"\r\n\\') or "file"
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="data"; filename="{safe_name}"\r\n'
            f"Content-Type: {mime_type or 'application/octet-stream'}\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        async def parts() -> AsyncIterator[bytes]:
            yield head
            async for chunk in body:
                yield chunk
            yield tail

        started = time.monotonic()
        try:
            answer = await exchange(
                self._client,
                "POST",
                url,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                body=parts(),
                length=len(head) + size + len(tail),
                deadline=self.timeout + size / MIN_RATE,
            )
        except OutboundError as exc:
            raise UpstreamError(f"uploading to MAX failed: {exc}") from exc
        log.debug("uploaded %d bytes to MAX in %.2f s", size, time.monotonic() - started)
        if not 200 <= answer.status < 300:
            raise _error(answer.status, answer.body)
        return {"type": kind, "payload": _uploaded(kind, slot, answer.body)}


def _uploaded(kind: str, slot: dict[str, Any], answer: bytes) -> dict[str, Any]:
    """The attachment payload an upload's answer gives: ``{token}`` for files, ``{photos}``
    for images, the token of the slot for video and audio (whose upload answers XML)."""
    if kind in ("video", "audio"):
        token = slot.get("token")
        if not isinstance(token, str):
            raise UpstreamError(f"MAX Bot API gave no token for the {kind} upload")
        return {"token": token}
    try:
        parsed = json.loads(answer)
    except ValueError as exc:
        raise UpstreamError("MAX's upload answer is not JSON") from exc
    if kind == "image" and isinstance(parsed, dict) and isinstance(parsed.get("photos"), dict):
        return {"photos": parsed["photos"]}
    if isinstance(parsed, dict) and isinstance(parsed.get("token"), str):
        return {"token": parsed["token"]}
    raise UpstreamError(f"MAX's answer to the {kind} upload has no token")
