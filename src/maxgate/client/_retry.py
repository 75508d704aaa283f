"""When to try a rate-limited request again: ``Retry-After``, a bounded count and total wait."""

from __future__ import annotations

import dataclasses
import email.utils
import time
from collections.abc import Mapping

# Without a Retry-After header: 1 s, 2 s, 4 s, …
_BACKOFF_START = 1.0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_after_of(headers: Mapping[str, str]) -> float | None:
    """The ``Retry-After`` of a response's headers, if any is usable."""
    return parse_retry_after(headers.get("retry-after"))


@dataclasses.dataclass(slots=True)
class RetryBudget:
    """What is left of the retries of one call: a count and a total time to wait."""

    retries: int
    max_wait: float
    used: int = 0
    waited: float = 0.0

    def delay(self, retry_after: float | None) -> float | None:
        """How long to wait before trying again, or None to give up now.

        Gives up when the retries are spent, or when waiting as long as the server asks would
        pass the total wait (better an error at once than a sleep that ends in one).
        """
        if self.used >= self.retries:
            return None
        wait = _BACKOFF_START * 2**self.used if retry_after is None else retry_after
        if self.waited + wait > self.max_wait:
            return None
        self.used += 1
        self.waited += wait
        return wait
