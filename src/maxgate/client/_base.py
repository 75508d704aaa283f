"""What ``Client`` and ``AsyncClient`` share: options, request arguments, error translation."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import msgspec

from maxgate import __version__
from maxgate.client._exceptions import ApiStatusError, TransportError
from maxgate.client._retry import RetryBudget, retry_after_of
from maxgate.client._wire import Call, Endpoint, error_for, redact_url_tokens

USER_AGENT = f"maxgate-client/{__version__}"
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_MAX_RETRY_WAIT = 60.0
DEFAULT_RECEIVE_TIMEOUT = 20
LINK = "file link"  # what errors of a download name instead of a method


class Options:
    """The options of a client, checked once."""

    def __init__(
        self,
        *,
        api_url: str,
        id_instance: int | str,
        api_token: str,
        media_url: str | None,
        timeout: float | httpx.Timeout | None,
        retries: int,
        max_retry_wait: float,
    ) -> None:
        self.endpoint = Endpoint.build(
            api_url=api_url, media_url=media_url, id_instance=id_instance, api_token=api_token
        )
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.retries = retries
        self.max_retry_wait = max_retry_wait

    def budget(self) -> RetryBudget:
        """The retries of one call."""
        return RetryBudget(self.retries, self.max_retry_wait)

    def request(self, call: Call[Any], **extra: Any) -> dict[str, Any]:
        """The arguments of ``httpx.Client.request`` for a call."""
        args: dict[str, Any] = {
            "method": call.verb,
            "url": self.endpoint.url(call.method, media=call.media, extra=call.extra),
            "params": call.params,
            **extra,
        }
        if call.json is not None:
            args["content"] = msgspec.json.encode(call.json)
            args["headers"] = {"content-type": "application/json"}
        if call.extra_read_time:
            read = self.timeout.read
            args["timeout"] = httpx.Timeout(
                connect=self.timeout.connect,
                read=None if read is None else read + call.extra_read_time,
                write=self.timeout.write,
                pool=self.timeout.pool,
            )
        return args

    def transport_error(self, what: str, exc: httpx.HTTPError) -> TransportError:
        """A transport failure, described without the token."""
        detail = str(exc) or type(exc).__name__
        return TransportError(self.endpoint.redact(f"{what}: {detail}"))

    def status_error(self, method: str, response: httpx.Response) -> ApiStatusError:
        """The exception for a non-200 answer (read in full)."""
        return error_for(
            method,
            response.status_code,
            response.content,
            retry_after=retry_after_of(response.headers),
            endpoint=self.endpoint,
        )

    def repr(self, cls: str) -> str:
        """``<Client api_url=… id_instance=…>``: no token."""
        return f"<{cls} api_url={self.endpoint.api_url!r} id_instance={self.endpoint.id_instance}>"


def http_options(options: Options) -> dict[str, Any]:
    """What both httpx clients are built with."""
    return {
        "timeout": options.timeout,
        "headers": {"user-agent": USER_AGENT},
        "follow_redirects": False,
    }


class RedactTokens(logging.Filter):
    """Scrubs instance tokens from log records: httpx logs every request's URL at INFO, and a
    v3 URL carries the token in its path."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_url_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url_tokens(str(arg)) if isinstance(arg, str | httpx.URL) else arg
                for arg in record.args
            )
        return True


def install_log_redaction() -> None:
    """Put :class:`RedactTokens` on httpx's logger (once)."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
