"""``FakeMax``: the fake's state (world, files, webhooks) and the checks in front of every Bot
API call (injected 503s, the per-token rate limit, the ``Authorization`` token), plus the
counters a test reads to prove a client kept to the limit."""

from __future__ import annotations

import collections
import dataclasses
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from starlette.requests import Request

from maxgate.fakemax.calls import Exchange
from maxgate.fakemax.config import FakeMaxConfig
from maxgate.fakemax.errors import INVALID_TOKEN, ApiError
from maxgate.fakemax.files import FileStore
from maxgate.fakemax.render import Renderer
from maxgate.fakemax.webhooks import WebhookSender
from maxgate.fakemax.world import Bot, World

Observer = Callable[[Exchange], None]


@dataclasses.dataclass
class TokenStats:
    """What one token did: calls, how many got 429, and the busiest second, counting the
    calls let through (``peak_rps``, never above the limit) and all calls tried
    (``peak_attempted_rps``: above the limit means the client did not pace itself)."""

    requests: int = 0
    limited: int = 0
    peak_rps: int = 0
    peak_attempted_rps: int = 0
    recent: collections.deque[float] = dataclasses.field(default_factory=collections.deque)
    attempts: collections.deque[float] = dataclasses.field(default_factory=collections.deque)


@dataclasses.dataclass
class Faults:
    """Failures asked for through the control API: the next ``count`` calls, or every call
    until ``until`` (monotonic), answer ``status``."""

    status: int = 503
    count: int = 0
    until: float = 0.0


class ExchangeLog:
    """An observer writing each exchange as a JSON line (``Contract.check_log`` reads it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, exchange: Exchange) -> None:
        with self.path.open("ab") as fh:
            fh.write(msgspec.json.encode(exchange) + b"\n")


class FakeMax:
    """The state of one fake MAX server."""

    def __init__(self, config: FakeMaxConfig) -> None:
        self.config = config
        self.world = World()
        root = Path(config.data_dir) if config.data_dir else Path(tempfile.mkdtemp("-fakemax"))
        key = config.signing_key.encode() if config.signing_key else secrets.token_bytes(32)
        self.files = FileStore(root, signing_key=key, not_ready_seconds=config.not_ready_seconds)
        self.webhooks = WebhookSender(self)
        self.world.on_update.append(self.webhooks.enqueue)
        self.observers: list[Observer] = []
        self.stats: dict[str, TokenStats] = collections.defaultdict(TokenStats)
        self.faults = Faults()
        for token in config.tokens:
            self.world.add_bot(token)
        if config.exchange_log:
            self.observers.append(ExchangeLog(Path(config.exchange_log)))

    def renderer(self, request: Request | None = None) -> Renderer:
        """Renders records with links to where this fake is reached."""
        base = self.config.public_url
        if not base and request is not None:
            base = str(request.base_url)
        return Renderer(
            self.world,
            self.files,
            base or "http://127.0.0.1",
            self.config.file_url_lifetime_seconds,
        )

    def observe(self, exchange: Exchange) -> None:
        """Hand an exchange to every observer (the contract check in tests)."""
        for observer in self.observers:
            observer(exchange)

    def admit(self, request: Request) -> None:
        """Injected faults, then the rate limit of the caller's token (30 rps by default;
        MAX documents the limit but no ``Retry-After``)."""
        now = time.monotonic()
        if self.faults.count > 0 or now < self.faults.until:
            self.faults.count = max(0, self.faults.count - 1)
            raise ApiError(self.faults.status, "service.unavailable", "Service unavailable")
        token = request.headers.get("authorization", "")
        stats = self.stats[token]
        stats.requests += 1
        for window in (stats.recent, stats.attempts):
            while window and window[0] <= now - 1.0:
                window.popleft()
        stats.attempts.append(now)
        stats.peak_attempted_rps = max(stats.peak_attempted_rps, len(stats.attempts))
        limit = self.config.rate_limit_rps
        if limit and len(stats.recent) >= limit:
            stats.limited += 1
            raise ApiError(429, "too.many.requests", f"Too many requests: over {limit} per second")
        stats.recent.append(now)
        stats.peak_rps = max(stats.peak_rps, len(stats.recent))

    def authenticate(self, request: Request) -> Bot:
        """The bot of the ``Authorization: <token>`` header (no ``Bearer``; the
        ``access_token`` query parameter is no longer accepted, per the 2026 docs)."""
        token = request.headers.get("authorization", "")
        bot = self.world.bot_by_token(token) if token else None
        if bot is None or bot.revoked:
            raise ApiError(401, *INVALID_TOKEN)
        return bot
