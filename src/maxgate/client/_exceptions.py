"""The client's one exception tree.

::

    MaxgateClientError
    ├── TransportError          the server could not be reached, or the connection broke
    ├── DecodeError             a 200 answer that is not what the method promises
    ├── ApiStatusError          any answer other than 200 (status_code, message)
    │   ├── BadRequestError         400
    │   ├── UnauthorizedError       401
    │   ├── ForbiddenError          403
    │   ├── NotFoundError           404
    │   ├── GoneError               410
    │   ├── PayloadTooLargeError    413
    │   ├── RateLimitError          429 (retry_after)
    │   └── ServerError             5xx
    └── DownloadError           a file download could not be completed
        └── HashMismatchError       the bytes do not match the server's content hash

Messages never contain the instance token: the v3 URL carries it, so the client names the method
instead of the URL, and scrubs the token from any text it passes on.
"""

from __future__ import annotations

__all__ = [
    "ApiStatusError",
    "BadRequestError",
    "DecodeError",
    "DownloadError",
    "ForbiddenError",
    "GoneError",
    "HashMismatchError",
    "MaxgateClientError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitError",
    "ServerError",
    "TransportError",
    "UnauthorizedError",
]


class MaxgateClientError(Exception):
    """Base class of every error the client raises."""


class TransportError(MaxgateClientError):
    """The server could not be reached, the connection broke, or a timeout passed."""


class DecodeError(MaxgateClientError):
    """A 200 answer whose body is not the JSON the method promises."""


class ApiStatusError(MaxgateClientError):
    """The server answered with a status other than 200.

    ``status_code`` is the HTTP status and ``message`` the ``message`` of the JSON error body
    (spec §1.3), e.g. ``Validation failed. Details: 'chatId' is required``; ``method`` is the v3
    method that was called (or ``"file link"`` for a download).
    """

    def __init__(self, status_code: int, message: str, *, method: str) -> None:
        super().__init__(f"{method}: {status_code} {message}")
        self.status_code = status_code
        self.message = message
        self.method = method


class BadRequestError(ApiStatusError):
    """400: the request is invalid (a missing or malformed field, no such message, …)."""


class UnauthorizedError(ApiStatusError):
    """401: the instance exists but the token is wrong."""


class ForbiddenError(ApiStatusError):
    """403: no such instance (or an expired or forged file link)."""


class NotFoundError(ApiStatusError):
    """404: no such method (or no such file behind a link)."""


class GoneError(ApiStatusError):
    """410: the file behind a link is gone for good (the messenger no longer has it)."""


class PayloadTooLargeError(ApiStatusError):
    """413: the file or body is over the server's size limit."""


class RateLimitError(ApiStatusError):
    """429: over the instance's rate limit, after the client's retries (if any) ran out.

    ``retry_after`` is the server's ``Retry-After`` in seconds (None when it sent none).
    """

    def __init__(
        self, status_code: int, message: str, *, method: str, retry_after: float | None
    ) -> None:
        super().__init__(status_code, message, method=method)
        self.retry_after = retry_after


class ServerError(ApiStatusError):
    """5xx: the server failed (500), or the messenger behind it did (502)."""


class DownloadError(MaxgateClientError):
    """A file download could not be completed (the server ended it early, resume failed, …)."""


class HashMismatchError(DownloadError):
    """The downloaded bytes do not hash to the content hash the server announced (its ETag)."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(
            f"the downloaded file's SHA-256 is {actual}, the server announced {expected}"
        )
        self.expected = expected
        self.actual = actual


_BY_STATUS: dict[int, type[ApiStatusError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    410: GoneError,
    413: PayloadTooLargeError,
}


def status_error(
    status_code: int, message: str, *, method: str, retry_after: float | None = None
) -> ApiStatusError:
    """The exception class that fits a status code."""
    if status_code == 429:
        return RateLimitError(status_code, message, method=method, retry_after=retry_after)
    if status_code >= 500:
        return ServerError(status_code, message, method=method)
    return _BY_STATUS.get(status_code, ApiStatusError)(status_code, message, method=method)
