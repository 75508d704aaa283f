"""Identifiers maxgate issues: instance ids and tokens, message ids, file ids."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

FIRST_INSTANCE_ID = 3100000001  # MAX instances start with 31 (spec §1.2)

# idMessage = milliseconds (13 digits) + a tag of this process (2 digits) + a sequence within the
# millisecond (3 digits). Within a process ids strictly increase (when a millisecond's 1000 are
# used up, the next millisecond is borrowed); two processes differ by their tag.
_PROCESS_TAG = secrets.randbelow(100)
_lock = threading.Lock()
_last = [0, -1]  # [millisecond, sequence]


def new_instance_token() -> str:
    """A fresh apiTokenInstance: 50 lowercase hex characters."""
    return secrets.token_hex(25)


def token_hash(token: str) -> str:
    """How an instance token is stored: its SHA-256 (tokens are 200 random bits, so no KDF)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    """Compare a presented token with a stored hash in constant time."""
    return hmac.compare_digest(token_hash(token), stored_hash)


def new_message_id() -> str:
    """An opaque, all-digit idMessage, strictly increasing within this process."""
    with _lock:
        now = int(time.time() * 1000)
        millisecond, sequence = _last
        if now > millisecond:
            millisecond, sequence = now, 0
        else:
            sequence += 1
            if sequence > 999:
                millisecond, sequence = millisecond + 1, 0
        _last[:] = [millisecond, sequence]
    return f"{millisecond}{_PROCESS_TAG:02d}{sequence:03d}"


def new_file_id() -> str:
    """An unguessable file id for links (128 random bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def sandbox_chat_id(instance_id: int) -> str:
    """The chatId under which other sandbox instances reach this one (8 digits, like MAX's)."""
    return str(10000000 + instance_id % 90000000)


def sandbox_phone(instance_id: int) -> int:
    """The simulated phone number of a sandbox instance."""
    return 79990000000 + instance_id % 10000000
