"""The sandbox's phone logging accounts in: QR codes it scans a moment after they are handed
out, and the two-factor password it asks for when the account has one.

State lives in this process only (what the phone is doing now); the account's connection state
itself is reported to the sink, as any messenger reports it.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import segno

from maxgate.errors import UpstreamError

QR_SCAN_SECONDS = 1.0  # the sandbox's phone scans a handed-out QR code after this long

StateOf = Callable[[int], Awaitable[str | None]]  # an account's state now (None: gone)
Report = Callable[[int, str], Awaitable[None]]  # report a new state of an account


class SandboxLogin:
    """QR logins and 2FA passwords of the sandbox's accounts."""

    def __init__(
        self, state_of: StateOf, report: Report, spawn: Callable[[Coroutine[Any, Any, None]], None]
    ) -> None:
        self._state_of = state_of
        self._report = report
        self._spawn = spawn
        self._passwords: dict[int, str] = {}  # instance id -> the account's 2FA password
        self._awaiting_password: set[int] = set()  # logins scanned, waiting for the password
        self._scanning: set[int] = set()  # instances whose handed-out QR code is being scanned

    def set_password(self, instance_id: int, password: str | None) -> None:
        """Set (or, with None, remove) the two-factor password of an account, as its owner
        would on the phone: a QR login then waits for ``send_password``."""
        if password is None:
            self._passwords.pop(instance_id, None)
            self._awaiting_password.discard(instance_id)
        else:
            self._passwords[instance_id] = password

    def logged_out(self, instance_id: int) -> None:
        """The account was logged out: a login in progress ends."""
        self._awaiting_password.discard(instance_id)

    def qr(self, instance_id: int) -> bytes:
        """A new QR code (PNG) to log in; the phone scans it shortly (one scan at a time)."""
        code = segno.make(f"maxgate-sandbox:login:{instance_id}:{secrets.token_hex(8)}")
        png = io.BytesIO()
        code.save(png, kind="png", scale=4)
        if instance_id not in self._scanning:
            self._scanning.add(instance_id)
            self._spawn(self._scan(instance_id))
        return png.getvalue()

    async def _scan(self, instance_id: int) -> None:
        try:
            await asyncio.sleep(QR_SCAN_SECONDS)
            state = await self._state_of(instance_id)
            if state is None or state == "authorized":
                return
            if instance_id in self._passwords:
                self._awaiting_password.add(instance_id)  # the phone asks for the password
                return
            await self._report(instance_id, "authorized")
        finally:
            self._scanning.discard(instance_id)

    def awaits_password(self, instance_id: int) -> bool:
        """Whether a scanned login of the instance waits for ``send_password``."""
        return instance_id in self._awaiting_password

    async def send_password(self, instance_id: int, password: str) -> bool:
        """Finish a scanned login with the account's password: True and ``authorized`` when it
        matches, False (still waiting) when not."""
        if instance_id not in self._awaiting_password:
            raise UpstreamError(
                f"no login of instance {instance_id} is waiting for a password; "
                "scan a QR code first"
            )
        expected = self._passwords.get(instance_id, "")
        if not hmac.compare_digest(password.encode(), expected.encode()):
            return False
        self._awaiting_password.discard(instance_id)
        await self._report(instance_id, "authorized")
        return True
