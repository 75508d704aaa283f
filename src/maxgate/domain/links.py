"""Signed file links: ``/files/{instance}/{fileId}/{fileName}?exp=…&sig=…``.

The signature is an HMAC-SHA256 over instance, file id and expiry, under a key derived per
instance from the server's link key: a link is bound to one file of one instance, and a link of
instance A says nothing about the key of instance B. Links are rendered when they are read
(journals, downloadFile, notifications), never stored, so they cannot go stale.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import time
from urllib.parse import quote

from maxgate.domain.records import FileRecord

MAX_CACHED_INSTANCES = 10_000  # keyed HMACs kept (~0.9 KB each); the cache restarts when full


@functools.lru_cache(maxsize=4096)
def _quoted(name: str) -> str:
    # A file's name is quoted on every link rendered: a journal page renders the same few.
    return quote(name, safe="")


class LinkSigner:
    """Signs and verifies file links with the server's link key."""

    def __init__(self, key: str, base_url: str) -> None:
        self._key = key.encode("utf-8")
        self._instance_macs: dict[int, hmac.HMAC] = {}
        self.base_url = base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"LinkSigner(base_url={self.base_url!r})"

    def _instance_mac(self, instance_id: int) -> hmac.HMAC:
        # Keyed once per instance: every link rendered or checked needs it, and copying a keyed
        # HMAC costs half of keying a new one.
        mac = self._instance_macs.get(instance_id)
        if mac is None:
            key = hmac.digest(self._key, f"instance:{instance_id}".encode(), hashlib.sha256)
            if len(self._instance_macs) >= MAX_CACHED_INSTANCES:
                self._instance_macs.clear()
            mac = self._instance_macs[instance_id] = hmac.new(key, digestmod=hashlib.sha256)
        return mac

    def signature(self, instance_id: int, file_id: str, expires: int) -> str:
        """The signature of one link."""
        mac = self._instance_mac(instance_id).copy()
        mac.update(f"{instance_id}/{file_id}/{expires}".encode())
        return base64.urlsafe_b64encode(mac.digest()[:18]).decode("ascii")

    def verify(self, instance_id: int, file_id: str, expires: int, signature: str) -> bool:
        """Whether a signature is valid (constant time); expiry is checked by the caller."""
        expected = self.signature(instance_id, file_id, expires)
        return hmac.compare_digest(expected.encode(), signature.encode())

    def url(self, instance_id: int, file_id: str, file_name: str, expires: int) -> str:
        """The full link to a file, valid until ``expires`` (Unix seconds)."""
        sig = self.signature(instance_id, file_id, expires)
        name = _quoted(file_name or "file")
        return f"{self.base_url}/files/{instance_id}/{file_id}/{name}?exp={expires}&sig={sig}"


def link_expiry(file: FileRecord, retention: float) -> int:
    """Until when a freshly rendered link works: the file's retention end, or — for a file
    whose retention already ended — a new period (opening the link fetches it again)."""
    now = time.time()
    return int(file.expires_at if file.expires_at > now else now + retention)


def file_link(signer: LinkSigner, file: FileRecord, retention: float) -> str:
    """A signed link to a file, rendered when read (a journal never holds a dead link)."""
    return signer.url(file.instance_id, file.id, file.file_name, link_expiry(file, retention))
