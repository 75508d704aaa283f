"""Full storage: telling "no space left" from other failures, and whether a store has room now.

The blob store (``maxgate.blobs``) and the metadata store (``maxgate.store.database``) use this
to raise ``StorageFull`` instead of a generic failure, and to answer their ``check()`` — which
``/ready`` calls — with "storage full" while it lasts.

Readiness reflects the present where it can be measured: the free space of the filesystem under
a local blob directory or a SQLite database, now (``os.statvfs``), below ``MIN_FREE_BYTES`` (or
``MIN_FREE_INODES`` files) counts as full. The measurement is the same for every worker process,
clears by itself when space is freed (by the operator, or by retention), and goes "full" a little
*before* writes start failing, so a balancer can move traffic away in time.

What cannot be measured from here — a PostgreSQL server's disk, a quota (EDQUOT: ``statvfs``
does not see quotas), an S3 backend that reports itself full — is remembered instead, by a
``FullMark``: the store was found full at that moment. A mark clears on the store's next
successful write, and also after ``FULL_MARK_SECONDS`` whatever happens, because a store that is
not ready receives no traffic, so no write would ever clear it: at worst the next failing write
sets it again. A full disk that the measurement explains is not marked, so freeing space is seen
at once (an upload too large for what is left fails, but does not make the store unready after
its temporary file is gone).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time

MIN_FREE_BYTES = 1024 * 1024
"""Below this much free space on a store's filesystem, the store counts as full."""

MIN_FREE_INODES = 16
"""Below this many free inodes (where the filesystem counts them), the store counts as full."""

FULL_MARK_SECONDS = 30.0
"""How long a full store that cannot be measured stays reported, unless a write succeeds."""

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DISK_FULL_SQLSTATE = "53100"  # PostgreSQL's disk_full (asyncpg's DiskFullError)
_SQLITE_FULL = 13  # SQLITE_FULL; extended codes keep it in their low byte
_SQLITE_IOERR = 10
# Texts that say the same when only a message is left (obstore, a driver's wrapped error).
_FULL_TEXTS = (
    "no space left on device",
    "disk quota exceeded",
    "database or disk is full",
    "could not extend file",
    "xminiostoragefull",  # MinIO's S3 error code when its drives are full
    "507 insufficient storage",  # an S3-compatible server answering HTTP 507
)


def full_errno(exc: BaseException) -> int | None:
    """ENOSPC or EDQUOT when ``exc`` or an exception it was raised from carries it, else None."""
    for link in _chain(exc):
        if isinstance(link, OSError) and link.errno in FULL_ERRNOS:
            return link.errno
    return None


def is_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or anything in its ``__cause__``/``__context__`` chain) says the storage
    is full: ENOSPC/EDQUOT, SQLITE_FULL, SQLSTATE 53100, or one of their messages."""
    if full_errno(exc) is not None:
        return True
    for link in _chain(exc):
        if isinstance(link, sqlite3.Error) and _sqlite_code(link) == _SQLITE_FULL:
            return True
        for attribute in ("sqlstate", "pgcode"):
            if getattr(link, attribute, None) == DISK_FULL_SQLSTATE:
                return True
        text = str(link).lower()
        if any(marker in text for marker in _FULL_TEXTS):
            return True
    return False


def is_sqlite_io_error(exc: BaseException) -> bool:
    """Whether ``exc`` carries a SQLITE_IOERR (SQLite reports a failed write that way when the
    errno was not ENOSPC, e.g. EDQUOT, and when its shared-memory file cannot grow)."""
    return any(
        isinstance(link, sqlite3.Error) and _sqlite_code(link) == _SQLITE_IOERR
        for link in _chain(exc)
    )


def free_space(path: str) -> tuple[int, int | None]:
    """Free bytes and free inodes (None where the filesystem does not count them) of the
    filesystem holding ``path``, as this process may use them (root may use reserved blocks)."""
    found = os.statvfs(path)
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    blocks = found.f_bfree if root else found.f_bavail
    inodes = (found.f_ffree if root else found.f_favail) if found.f_files else None
    return blocks * found.f_frsize, inodes


def low_on_space(path: str) -> str | None:
    """A sentence saying how little room is left when the filesystem of ``path`` counts as
    full (see ``MIN_FREE_BYTES``), else None; None too when it cannot be measured."""
    try:
        free, inodes = free_space(path)
    except OSError:
        return None
    if free < MIN_FREE_BYTES:
        return f"{free} bytes free under {path} (the minimum is {MIN_FREE_BYTES})"
    if inodes is not None and inodes < MIN_FREE_INODES:
        return f"{inodes} inodes free under {path} (the minimum is {MIN_FREE_INODES})"
    return None


class FullMark:
    """When a store was last found full in a way that cannot be measured (module docs)."""

    __slots__ = ("_at",)

    def __init__(self) -> None:
        self._at: float | None = None

    def set(self) -> None:
        """The store was just found full."""
        self._at = time.monotonic()

    def clear(self) -> None:
        """A write just succeeded."""
        self._at = None

    @property
    def recent(self) -> bool:
        """Whether the store was found full less than ``FULL_MARK_SECONDS`` ago."""
        at = self._at
        if at is None:
            return False
        if time.monotonic() - at >= FULL_MARK_SECONDS:
            self._at = None
            return False
        return True


def _sqlite_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, the driver error SQLAlchemy wraps (``.orig``), and what they were raised from
    (``__cause__`` only: an exception merely being handled nearby says nothing about this one)."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending and len(seen) < 16:
        link = pending.pop()
        if link is None or any(link is s for s in seen):
            continue
        seen.append(link)
        orig = getattr(link, "orig", None)
        pending += [link.__cause__, orig if isinstance(orig, BaseException) else None]
    return seen
