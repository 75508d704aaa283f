"""Full storage: which errors say "full", free space measured on a real small tmpfs, the mark."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from maxgate import space
from maxgate.space import FullMark, free_space, is_full, is_sqlite_io_error, low_on_space
from tests._tmpfs import fill, free, small_tmpfs


class _DriverError(Exception):
    """What SQLAlchemy's asyncpg adapter raises: the SQLSTATE on the error."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _sqlite_error(code: int, message: str) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


def _caused(outer: Exception, inner: BaseException) -> Exception:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        _sqlite_error(13, "database or disk is full"),  # SQLITE_FULL
        sqlite3.OperationalError("database or disk is full"),  # only the message left
        _DriverError("could not extend file: No space left on device", "53100"),
        _DriverError("disk full", "53100"),
        RuntimeError('could not extend file "base/16384/16385": wrote only 4096 of 8192 bytes'),
        ValueError("Generic LocalFileSystem error: No space left on device (os error 28)"),
        RuntimeError("XMinioStorageFull: Storage backend has reached its minimum free drive"),
        _caused(RuntimeError("commit failed"), OSError(errno.ENOSPC, "No space left on device")),
        sa.exc.OperationalError("INSERT …", {}, _sqlite_error(13, "database or disk is full")),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_errors_that_say_full(exc: Exception) -> None:
    assert is_full(exc)


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.EIO, "Input/output error"),
        PermissionError(errno.EACCES, "Permission denied"),
        _sqlite_error(5, "database is locked"),
        _sqlite_error(778, "disk I/O error"),  # SQLITE_IOERR_WRITE: not by itself
        _DriverError("duplicate key value violates unique constraint", "23505"),
        _DriverError("out of memory", "53200"),
        RuntimeError("something else"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_errors_that_do_not(exc: Exception) -> None:
    assert not is_full(exc)


def test_an_error_merely_handled_nearby_does_not_count() -> None:
    """Only ``raise … from`` links: an unrelated ENOSPC being handled says nothing."""
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("another failure") from None
    except RuntimeError as exc:
        assert not is_full(exc)


def test_sqlite_io_errors_are_told_apart() -> None:
    assert is_sqlite_io_error(_sqlite_error(778, "disk I/O error"))  # SQLITE_IOERR_WRITE
    assert is_sqlite_io_error(_sqlite_error(4874, "disk I/O error"))  # SQLITE_IOERR_SHMSIZE
    assert not is_sqlite_io_error(_sqlite_error(13, "database or disk is full"))
    assert not is_sqlite_io_error(OSError(errno.EIO, "Input/output error"))


def test_free_space_of_a_real_small_filesystem(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "4m") as disk:
        free_bytes, inodes = free_space(str(disk))
        assert 3 * 1024 * 1024 < free_bytes <= 4 * 1024 * 1024
        assert inodes is None or inodes > space.MIN_FREE_INODES
        assert low_on_space(str(disk)) is None

        fill(disk)
        assert free_space(str(disk))[0] == 0
        reason = low_on_space(str(disk))
        assert reason is not None and reason.startswith("0 bytes free under ")

        free(disk)
        assert low_on_space(str(disk)) is None


def test_an_unmeasurable_path_is_not_low(tmp_path: Path) -> None:
    assert low_on_space(str(tmp_path / "missing")) is None


def test_the_mark_clears_on_a_write_and_by_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(space.time, "monotonic", lambda: now[0])
    mark = FullMark()
    assert not mark.recent
    mark.set()
    assert mark.recent
    mark.clear()  # a successful write
    assert not mark.recent

    mark.set()
    now[0] += space.FULL_MARK_SECONDS - 1
    assert mark.recent
    now[0] += 1  # nothing wrote since: it expires, so a store out of rotation comes back
    assert not mark.recent
