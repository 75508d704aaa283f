"""The fake's settings, declared once: each field's type, default and help text are the single
source of the ``serve`` flags (``__main__.py``) and the environment variables
(``FAKEMAX_<NAME>``) the server process reads."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

ENV_PREFIX = "FAKEMAX_"


def _setting(default: Any, help_text: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclasses.dataclass(frozen=True)
class FakeMaxConfig:
    """How the fake MAX behaves. Every field has a default that mimics the real platform,
    except the delays, which are short so tests stay fast."""

    tokens: tuple[str, ...] = _setting(
        ("fakemax-bot-token",), "bot tokens the fake knows, one bot each (comma-separated)"
    )
    public_url: str = _setting(
        "", "base URL the fake is reached at (upload and file links); empty: from each request"
    )
    not_ready_seconds: float = _setting(
        0.5, "seconds after an upload during which POST /messages answers attachment.not.ready"
    )
    file_url_lifetime_seconds: float = _setting(
        30 * 86400.0, "lifetime of signed file download URLs (expires= in the URL)"
    )
    rate_limit_rps: int = _setting(30, "requests per second per token before 429 (0: off)")
    webhook_retry_seconds: float = _setting(
        1.0, "first pause before a failed webhook delivery is retried (then x2.5, 10 tries)"
    )
    webhook_timeout_seconds: float = _setting(30.0, "how long a webhook endpoint may take")
    webhook_require_https: bool = _setting(
        False, "refuse http:// subscriptions as the real MAX does (off: local tests)"
    )
    max_poll_timeout: float = _setting(90.0, "upper bound of GET /updates?timeout=")
    data_dir: str = _setting("", "where uploaded and sent file bytes are kept; empty: a temp dir")
    signing_key: str = _setting("", "HMAC key of file links; empty: random per process")
    exchange_log: str = _setting(
        "", "append every exchange to this file as a JSON line (for a contract check later)"
    )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> FakeMaxConfig:
        """The config from ``FAKEMAX_*`` variables (the server process's view)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = parse_value(field, raw)
        return cls(**values)

    def to_environ(self) -> dict[str, str]:
        """The ``FAKEMAX_*`` variables that reproduce this config in another process."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, tuple):
                text = ",".join(value)
            elif isinstance(value, bool):
                text = "true" if value else "false"
            else:
                text = str(value)
            out[ENV_PREFIX + field.name.upper()] = text
        return out


def parse_value(field: dataclasses.Field[Any], raw: str) -> Any:
    """One setting's text (a flag or an environment variable) as the field's type."""
    kind: Any = type(field.default)
    if kind is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind is bool:
        if raw.lower() not in {"1", "0", "true", "false", "yes", "no"}:
            raise ValueError(f"{field.name} must be true or false, not {raw!r}")
        return raw.lower() in {"1", "true", "yes"}
    if kind is int:
        return int(raw)
    if kind is float:
        return float(raw)
    return raw
