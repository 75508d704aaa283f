"""File names and MIME types: what a file is called and what kind of message it makes."""

from __future__ import annotations

import mimetypes
import unicodedata
import uuid

_FALLBACK_MIME = "application/octet-stream"
_EXTRA_TYPES = {".opus": "audio/ogg", ".webp": "image/webp", ".heic": "image/heic"}


def guess_mime(file_name: str, declared: str | None = None) -> str:
    """The MIME type of a file: from its name's extension, else what the sender declared."""
    dot = file_name.rfind(".")
    ext = file_name[dot:].lower() if dot > 0 else ""
    guessed = _EXTRA_TYPES.get(ext) or mimetypes.guess_type(file_name, strict=False)[0]
    if guessed:
        return guessed
    if declared and "/" in declared:
        return declared.split(";")[0].strip().lower()
    return _FALLBACK_MIME


def made_up_name(mime_type: str) -> str:
    """A name for a file that came without one: ``<uuid>.<ext>`` (spec §3)."""
    ext = mimetypes.guess_extension(mime_type.split(";")[0].strip(), strict=False) or ""
    return f"{uuid.uuid4()}{ext}"


def clean_name(name: str | None) -> str:
    """A safe display name: last path segment, no control characters, at most 255 bytes."""
    if not name:
        return ""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if name in (".", ".."):
        return ""
    while len(name.encode("utf-8")) > 255:
        name = name[:-1]
    return name


def type_message_for(mime_type: str) -> str:
    """The GREEN-API message kind a file makes: image, video, audio or document."""
    major = mime_type.split("/", 1)[0]
    if mime_type == "image/webp":
        return "imageMessage"
    return {
        "image": "imageMessage",
        "video": "videoMessage",
        "audio": "audioMessage",
    }.get(major, "documentMessage")
