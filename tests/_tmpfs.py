"""A real full disk for tests: a small tmpfs mounted on a directory, and a filler file.

Mounting needs root (or CAP_SYS_ADMIN) on Linux; where it is not permitted the test is skipped,
naming the reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

FILLER = ".filler"


@contextlib.contextmanager
def small_tmpfs(
    directory: Path, size: str = "16m", *, owner: tuple[int, int] | None = None
) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` on ``directory`` (created) for the block; unmounted after.
    ``owner`` (uid, gid) owns its root, mode 0700; else mode 0755."""
    if not sys.platform.startswith("linux"):
        pytest.skip("a small tmpfs needs Linux")
    directory.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0755"
    if owner is not None:
        options = f"size={size},mode=0700,uid={owner[0]},gid={owner[1]}"
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError as exc:
        pytest.skip(f"cannot run mount: {exc}")
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        done = subprocess.run(["umount", str(directory)], capture_output=True, timeout=30)
        if done.returncode != 0:  # still in use (a server that did not stop): detach it
            subprocess.run(["umount", "-l", str(directory)], capture_output=True, timeout=30)


def fill(directory: Path) -> int:
    """Fill the filesystem of ``directory`` to the last byte (a growing filler file there);
    returns the filler's size. Safe to call again to take what was freed since."""
    fd = os.open(directory / FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (1024 * 1024, 64 * 1024, 4096, 512, 1):
            chunk = b"\0" * size
            while True:
                try:
                    if os.write(fd, chunk) < size:
                        break
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def free(directory: Path) -> None:
    """Remove the filler: the space is back."""
    (directory / FILLER).unlink(missing_ok=True)


def free_bytes(directory: Path) -> int:
    """Free bytes on the filesystem of ``directory`` (as root sees them)."""
    found = os.statvfs(directory)
    return found.f_bfree * found.f_frsize
