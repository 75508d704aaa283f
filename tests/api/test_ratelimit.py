"""Rate limit configuration and the shared Redis backend."""

from __future__ import annotations

import secrets

import pytest

from maxgate.api.ratelimit import DEFAULT_RATES, RateLimiter, parse_overrides
from maxgate.errors import ApiError, ConfigError


def test_defaults_follow_the_vendor_table() -> None:
    limiter = RateLimiter()
    assert limiter.rate("sendmessage") == 50
    assert limiter.rate("downloadfile") == 1
    assert limiter.rate("receivenotification") == 100
    assert limiter.rate("getchathistory") == 1  # anything unnamed: 1 per second
    assert DEFAULT_RATES["uploadfile"] == 1


def test_overrides_parse_and_bad_ones_name_the_problem() -> None:
    assert parse_overrides("downloadFile=5, GetChatHistory=10,") == {
        "downloadfile": 5,
        "getchathistory": 10,
    }
    for bad in ("downloadFile", "downloadFile=0", "downloadFile=fast"):
        with pytest.raises(ConfigError, match="method=requests-per-second"):
            parse_overrides(bad)
    with pytest.raises(ConfigError, match="rate_limit_storage"):
        RateLimiter(storage="nosuch://x")


@pytest.mark.redis
async def test_two_limiters_share_counters_through_redis() -> None:
    """Two processes (here: two limiters) on one Redis see one budget per instance."""
    instance = 9_000_000_000 + secrets.randbelow(10**8)  # unique keys per run
    a = RateLimiter(storage="redis://127.0.0.1:6379", overrides="getChats=2")
    b = RateLimiter(storage="redis://127.0.0.1:6379", overrides="getChats=2")
    await a.check(instance, "getchats")
    await b.check(instance, "getchats")
    try:
        with pytest.raises(ApiError) as refused:
            await a.check(instance, "getchats")
        assert refused.value.status == 429 and int(refused.value.headers["Retry-After"]) >= 1
    finally:
        a.close()
        b.close()
