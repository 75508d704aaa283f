"""Owning the listening port before serving: one server per port, refused loudly otherwise.

granian binds each worker's socket with ``SO_REUSEPORT`` (so that the workers of one server
share the port), and the kernel lets a *second* server do the same: it then spreads connections
over both, and each request lands on whichever data dir it likes. So before anything is created,
``claim_port`` checks the port two ways:

* a lock file per address and port, held (``flock``) for the life of the serving process: two
  maxgate servers started at the same moment cannot both pass;
* a trial bind *without* ``SO_REUSEPORT`` (with ``SO_REUSEADDR``, so connections of an earlier
  run left in ``TIME_WAIT`` do not count): it fails while anything listens on the port —
  another maxgate, or another program.

The trial socket is closed before granian binds; the lock is what covers that moment.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import tempfile
from pathlib import Path

from maxgate.errors import MaxgateError


class PortInUse(MaxgateError):
    """The address and port to serve on are taken (by maxgate or by another program)."""


def _lock_path(host: str, port: int) -> Path:
    safe = "".join(c if c.isalnum() else "_" for c in host) or "any"
    return Path(tempfile.gettempdir()) / f"maxgate-{safe}-{port}.lock"


def _in_use(host: str, port: int) -> PortInUse:
    shown = f"[{host}]" if ":" in host else host
    return PortInUse(
        f"port {port} on {shown} is already in use (by another maxgate or another program): "
        "stop that server, or choose another port with --port or MAXGATE_PORT"
    )


def _trial_bind(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise PortInUse(f"cannot listen on {host!r}: {exc.strerror}") from None
    for family, kind, proto, _name, address in infos[:1]:
        with socket.socket(family, kind, proto) as trial:
            trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                trial.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise _in_use(host, port) from None
                raise PortInUse(f"cannot listen on {host} port {port}: {exc.strerror}") from None


class PortClaim:
    """The lock that keeps a port this server's; released when the process ends."""

    def __init__(self, handle: int | None) -> None:
        self._handle = handle

    def release(self) -> None:
        """Let another server take the port (the process ending does the same)."""
        if self._handle is not None:
            with contextlib.suppress(OSError):
                os.close(self._handle)
            self._handle = None


def claim_port(host: str, port: int) -> PortClaim:
    """Claim ``host:port`` for this process or raise ``PortInUse`` with one readable sentence.

    Port 0 (any free port) needs no claim. A lock file that cannot be opened (another user's)
    leaves only the trial bind, which still sees a server that is listening.
    """
    if port == 0:
        return PortClaim(None)
    handle: int | None
    try:
        handle = os.open(_lock_path(host, port), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        handle = None
    if handle is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise _in_use(host, port) from None
        os.set_inheritable(handle, False)
    claim = PortClaim(handle)
    try:
        _trial_bind(host, port)
    except PortInUse:
        claim.release()
        raise
    return claim
