"""Plain records the domain hands around: an instance, a file, a journal message and what a
message carries besides text and files (a location, a contact card, a link preview).

No secret shows in a record's repr (or str): an instance's settings hold the webhook token
and secret, shown masked.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

SECRET_SETTINGS = frozenset({"webhookUrlToken", "webhookSecret"})
"""The settings that are secrets: write-only over the API, masked in every repr."""

MASK = "***"


def masked_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` fit for a repr or a log: each secret set (``SECRET_SETTINGS``) is ``***``,
    and so is the user and password part of ``webhookUrl``."""
    shown = {
        key: MASK if key in SECRET_SETTINGS and value else value for key, value in settings.items()
    }
    url = shown.get("webhookUrl")
    if isinstance(url, str) and "@" in url:
        shown["webhookUrl"] = _masked_userinfo(url)
    return shown


def _masked_userinfo(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK  # unparsable: it may hold anything
    _userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url
    return parts._replace(netloc=f"{MASK}@{host}").geturl()


@dataclasses.dataclass(frozen=True, slots=True)
class Instance:
    """One gateway instance (an account on the messenger). Its repr masks the secrets among its
    settings (``masked_settings``); equality and the values themselves are untouched."""

    id: int
    name: str
    chat_id: str
    phone: int
    state: str
    settings: dict[str, Any]
    created_at: float
    deleted: bool
    # The messenger behind it (maxgate.domain.messenger): "sandbox", later "maxbot", "maxuser".
    upstream: str = "sandbox"

    @property
    def wid(self) -> str:
        """The account id in the vendor's form."""
        return f"{self.phone}@c.us"

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        shown["settings"] = masked_settings(self.settings)
        return f"Instance({', '.join(f'{name}={value!r}' for name, value in shown.items())})"


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
class Location:
    """A shared place (``locationMessage``): MAX tells only its coordinates."""

    latitude: float
    longitude: float
    name: str = ""
    address: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class SharedContact:
    """A shared contact card (``contactMessage``): its name, vCard, and the person's chatId,
    number and avatar when the messenger tells them."""

    display_name: str
    vcard: str
    chat_id: str = ""
    phone: str = ""
    avatar_url: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class LinkPreview:
    """The preview of a link in a text (``extendedTextMessage``)."""

    url: str = ""
    title: str = ""
    description: str = ""


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
    location: Location | None = None
    contact: SharedContact | None = None
    preview: LinkPreview | None = None
    # Changed on the messenger after it was journaled: the text is the newest (isEdited), or
    # the message was removed for everybody (isDeleted; the item stays in the journal).
    is_edited: bool = False
    is_deleted: bool = False
