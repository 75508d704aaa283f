"""The one exception tree of maxgate.

Driver errors (sqlite3, asyncpg, obstore, httpx) are translated into these classes at the
boundary with ``raise … from exc``, so callers never need to know which backend is in use.
"""

from __future__ import annotations


class MaxgateError(Exception):
    """Base class of every error maxgate raises on purpose."""


class ConfigError(MaxgateError):
    """A setting is missing, malformed or inconsistent."""


class StoreError(MaxgateError):
    """The metadata store (SQLite or PostgreSQL) failed or is unreachable."""


class StoreConflict(StoreError):
    """A write collided with an existing row (a unique key such as an idMessage)."""


class BlobError(MaxgateError):
    """The blob store (local disk or S3) failed or is unreachable."""


class BlobNotFound(BlobError):
    """A blob key that was expected to exist is absent."""


class StorageFull(MaxgateError):
    """A write failed, or would, because the storage under a store is full: no space left on
    the device (ENOSPC), a quota used up (EDQUOT), SQLite's SQLITE_FULL, PostgreSQL's
    ``disk_full`` (SQLSTATE 53100, "could not extend file").

    Raised as one of the two classes below, which are also a ``StoreError`` / ``BlobError``, so
    code that handles a failing store keeps doing so. The API answers it with 507 Insufficient
    Storage (``maxgate.api.errors.fault_error``) and ``/ready`` names it.
    """

    store = "storage"
    """What is full, in words: ``"database"`` or ``"file store"``."""


class StoreFull(StorageFull, StoreError):
    """The metadata store's disk (or the PostgreSQL server's) is full."""

    store = "database"


class BlobStoreFull(StorageFull, BlobError):
    """The blob store's disk (or bucket quota) is full."""

    store = "file store"


class SizeLimitExceeded(MaxgateError):
    """A streamed body grew past its size limit; raised while streaming, before it is stored."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"stream of at least {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class OutboundError(MaxgateError):
    """An outbound HTTP request (sendFileByUrl, webhooks, a messenger's API) failed."""


class OutboundStatus(OutboundError):
    """The server answered, with a status other than 2xx (``status``)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"server answered {status}")
        self.status = status


class OutboundBlocked(OutboundError):
    """The outbound URL guard refused a target: a loopback, private, link-local, multicast or
    metadata address that the operator did not allow-list (also after redirects)."""


class UpstreamError(MaxgateError):
    """The messenger upstream failed or could not be reached."""


class UpstreamFileGone(UpstreamError):
    """The messenger no longer has the bytes of a file."""


class ApiError(MaxgateError):
    """An answer of the HTTP API other than 200: a status code and the documented message.

    Raised by handlers and turned into the one error shape by ``maxgate.api.errors``.
    """

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
