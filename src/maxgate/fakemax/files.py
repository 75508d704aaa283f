"""File bytes the fake holds: uploads in progress, stored files, their attachment tokens and
their signed download links.

A real MAX upload is three steps (``POST /uploads`` → bytes to the upload URL → the token in
``POST /messages``); a received file is a signed CDN link with ``expires=`` (milliseconds) that
stops working, and MAX can delete a file for good. All of that is modelled here; bytes live in
files on disk, so a large file costs no memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
import secrets
import time
from pathlib import Path
from urllib.parse import urlencode

UPLOAD_TYPES = ("image", "video", "audio", "file")


@dataclasses.dataclass
class StoredFile:
    """One file: uploaded by the bot, or sent by a fake user through the control API."""

    file_id: int
    kind: str  # image | video | audio | file
    path: Path
    token: str
    photo_id: int
    filename: str = ""
    size: int = 0  # the declared total while a ranged upload is under way
    received: int = 0  # bytes in, counted over the ranges without overlap
    ranges: list[tuple[int, int]] = dataclasses.field(default_factory=list)  # [start, end)
    complete: bool = False
    ready_at: float = 0.0  # time.monotonic() from which it may be attached
    deleted: bool = False


@dataclasses.dataclass
class Upload:
    """An upload URL handed out by ``POST /uploads``: it takes one file, and never expires."""

    upload_id: str
    file: StoredFile
    token_in_answer: bool  # video/audio: the token comes with the URL, not after the bytes


class FileStore:
    """Uploads, stored files and the signing of their links."""

    def __init__(self, root: Path, *, signing_key: bytes, not_ready_seconds: float) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._key = signing_key
        self.not_ready_seconds = not_ready_seconds
        self._ids = itertools.count(1)
        self.files: dict[int, StoredFile] = {}
        self.by_token: dict[str, StoredFile] = {}
        self.uploads: dict[str, Upload] = {}

    def new_file(self, kind: str, filename: str = "") -> StoredFile:
        """An empty file of ``kind`` with its own token."""
        file_id = next(self._ids)
        stored = StoredFile(
            file_id=file_id,
            kind=kind,
            path=self.root / f"file-{file_id}",
            token=secrets.token_urlsafe(24),
            photo_id=7_000_000_000 + file_id,
            filename=filename,
        )
        stored.path.touch()
        self.files[file_id] = stored
        self.by_token[stored.token] = stored
        return stored

    def new_upload(self, kind: str) -> Upload:
        """A fresh upload URL's record (``POST /uploads?type=kind``)."""
        upload = Upload(
            upload_id=secrets.token_urlsafe(16),
            file=self.new_file(kind),
            token_in_answer=kind in ("video", "audio"),
        )
        self.uploads[upload.upload_id] = upload
        return upload

    def finish(self, stored: StoredFile) -> None:
        """All bytes are in: the file becomes attachable after the processing delay."""
        stored.complete = True
        stored.size = stored.path.stat().st_size
        stored.received = stored.size
        stored.ready_at = time.monotonic() + self.not_ready_seconds

    def store_bytes(self, kind: str, filename: str, data: bytes) -> StoredFile:
        """A complete file at once (the control API's inline content); ready at once."""
        stored = self.new_file(kind, filename)
        stored.path.write_bytes(data)
        self.finish(stored)
        stored.ready_at = 0.0
        return stored

    def write_range(self, stored: StoredFile, start: int, total: int, data: bytes) -> None:
        """One chunk of a resumable upload (``Content-Range: bytes start-end/total``)."""
        with stored.path.open("r+b") as fh:
            fh.seek(start)
            fh.write(data)
        stored.size = total
        # Chunks may come in any order ("X-Uploading-Mode: parallel"): merge what is in.
        merged: list[tuple[int, int]] = []
        for low, high in sorted([*stored.ranges, (start, start + len(data))]):
            if merged and low <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], high))
            else:
                merged.append((low, high))
        stored.ranges = merged
        stored.received = sum(high - low for low, high in merged)

    def delete(self, stored: StoredFile) -> None:
        """Gone for good: links answer 404 and the token no longer attaches."""
        stored.deleted = True
        stored.path.unlink(missing_ok=True)

    # --- signed links ----------------------------------------------------------------------

    def _signature(self, file_id: int, expires_ms: int) -> str:
        message = f"{file_id}:{expires_ms}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    def link(self, base_url: str, stored: StoredFile, lifetime_seconds: float) -> str:
        """A download URL for ``stored`` that stops working after ``lifetime_seconds``."""
        expires = int((time.time() + lifetime_seconds) * 1000)
        query = urlencode(
            {
                "sig": self._signature(stored.file_id, expires),
                "expires": expires,
                "clientType": 3,
                "id": stored.file_id,
            }
        )
        return f"{base_url.rstrip('/')}/getfile?{query}"

    def check_link(self, file_id: str, expires: str, sig: str) -> StoredFile | str:
        """The file a link's query names, or why the link is refused: ``"forbidden"`` (bad
        signature or expired) or ``"gone"`` (unknown or deleted)."""
        try:
            number, expires_ms = int(file_id), int(expires)
        except ValueError:
            return "forbidden"
        if not hmac.compare_digest(self._signature(number, expires_ms), sig):
            return "forbidden"
        if expires_ms < time.time() * 1000:
            return "forbidden"
        stored = self.files.get(number)
        if stored is None or stored.deleted:
            return "gone"
        return stored
