"""The web fake's settings, declared once (type, default, help): the ``serve`` flags of
``python -m maxgate.fakemax.web`` come from these fields."""

from __future__ import annotations

import dataclasses
from typing import Any


def _setting(default: Any, help_text: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclasses.dataclass(frozen=True)
class WebFakeConfig:
    """How the fake web protocol behaves. Delays are short so tests stay fast."""

    qr_ttl_seconds: float = _setting(60.0, "how long a QR login link can be scanned")
    qr_poll_interval_ms: int = _setting(
        100, "pollingInterval handed to the client with each QR (GET_QR_STATUS pace)"
    )
    link_lifetime_seconds: float = _setting(
        3600.0, "lifetime of the temporary download URLs of files, videos and photos"
    )
    attach_ready_seconds: float = _setting(
        0.0, "delay between the last uploaded byte and the NOTIF_ATTACH ready event"
    )
    compression: str = _setting(
        "none", "compression of the payloads the fake sends: none, lz4 or zstd"
    )
    compress_min_bytes: int = _setting(
        0, "payloads shorter than this are sent uncompressed (with --compression)"
    )
