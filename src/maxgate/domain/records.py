"""Plain records the domain hands around: an instance, a file, a journal message."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class Instance:
    """One gateway instance (an account on the messenger)."""

    id: int
    name: str
    chat_id: str
    phone: int
    state: str
    settings: dict[str, Any]
    created_at: float
    deleted: bool

    @property
    def wid(self) -> str:
        """The account id in the vendor's form."""
        return f"{self.phone}@c.us"


@dataclasses.dataclass(frozen=True, slots=True)
class FileRecord:
    """A file of a message: where its bytes are and until when we keep them."""

    id: str
    instance_id: int
    state: str  # remote | stored | evicted
    sha256: str | None
    size: int | None
    file_name: str
    mime_type: str
    upstream_ref: str | None
    thumbnail: str
    created_at: float
    stored_at: float | None
    expires_at: float


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """One journal entry, incoming or outgoing, with its file if it has one."""

    pk: int
    instance_id: int
    chat_id: str
    id_message: str
    direction: str  # incoming | outgoing
    type_message: str
    timestamp: int
    sender_id: str
    sender_name: str
    text: str | None
    caption: str
    status: str | None
    status_description: str | None
    send_by_api: bool
    quoted_id: str | None
    file: FileRecord | None
