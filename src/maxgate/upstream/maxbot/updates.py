"""What a Bot API ``Update`` means to maxgate: the messages, chats and files in it, in the
shapes the messenger port reports (``InboundMessage``, ``InboundFile``).

Chat ids: a dialog is the other person's ``user_id`` (as GREEN-API v3 names a personal chat by
the contact), a group its negative ``chat_id``; ``recipient`` turns one back into the query of
``POST /messages``. idMessage is the message's ``body.seq`` (v3-style: ``seq >> 16`` is its
time in ms); the n-th further file of one message (an album) is ``seq`` followed by two digits.
MAX's ``mid`` goes with each message as its upstream id.

Besides files a message may carry a location, a contact card (``contactMessage``) and a link
preview (``share``: the text becomes an ``extendedTextMessage``). Each location or contact is a
journal message of its own after the text and files, numbered as the files of an album are.
"""

from __future__ import annotations

import dataclasses
import json
import mimetypes
import posixpath
import re
import urllib.parse
from typing import Any

from maxgate.domain.messenger import InboundFile, InboundMessage
from maxgate.domain.records import LinkPreview, Location, SharedContact

FILE_KINDS = {
    # attachment type: (typeMessage, file name when MAX gives none, MIME type when unknown)
    "image": ("imageMessage", "image.jpg", "image/jpeg"),
    "video": ("videoMessage", "video.mp4", "video/mp4"),
    "audio": ("audioMessage", "audio.ogg", "audio/ogg"),
    "file": ("documentMessage", "file", "application/octet-stream"),
    "sticker": ("stickerMessage", "sticker.webp", "image/webp"),
}


@dataclasses.dataclass(frozen=True, slots=True)
class FileRef:
    """Where a received file's bytes are on MAX: its message, which attachment, the URL it
    came with (signed, expiring) and its token (videos are resolved again by it)."""

    mid: str
    index: int
    kind: str
    url: str
    token: str | None = None

    def __str__(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def parse(cls, text: str) -> FileRef:
        """A reference written by ``str``; ``ValueError`` for anything else."""
        try:
            fields = json.loads(text)
            return cls(**fields)
        except (TypeError, ValueError) as exc:
            raise ValueError("not a MAX file reference") from exc


def recipient(chat_id: str) -> dict[str, int]:
    """The query of ``POST /messages`` for a v3 chatId (``ValueError`` if not digits)."""
    number = int(chat_id)
    return {"chat_id": number} if number < 0 else {"user_id": number}


def _name_of(person: dict[str, Any] | None) -> str:
    if not person:
        return ""
    name = person.get("name") or " ".join(
        part for part in (person.get("first_name"), person.get("last_name")) if part
    )
    return str(name or person.get("username") or "")


def _file_name(kind: str, attachment: dict[str, Any], url: str) -> tuple[str, str]:
    _, default_name, default_mime = FILE_KINDS[kind]
    name = attachment.get("filename")
    if not isinstance(name, str) or not name.strip():
        name = default_name
    mime = mimetypes.guess_type(name)[0] if kind == "file" else None
    if mime is None and kind != "file":
        guessed = mimetypes.guess_type(posixpath.basename(urllib.parse.urlsplit(url).path))[0]
        mime = guessed if guessed and guessed.split("/")[0] == default_mime.split("/")[0] else None
    return name, mime or default_mime


def files_of(mid: str, attachments: list[Any] | None) -> list[tuple[str, InboundFile]]:
    """The files among a message's attachments: (typeMessage, file), in order."""
    found = []
    for index, attachment in enumerate(attachments or []):
        if not isinstance(attachment, dict) or attachment.get("type") not in FILE_KINDS:
            continue
        kind = attachment["type"]
        payload = attachment.get("payload") or {}
        url = payload.get("url")
        if not isinstance(url, str) or not url:
            continue
        token = payload.get("token")
        ref = FileRef(mid, index, kind, url, token if isinstance(token, str) else None)
        name, mime = _file_name(kind, attachment, url)
        size = attachment.get("size")
        inbound = InboundFile(
            ref=str(ref),
            file_name=name[:255],
            mime_type=mime,
            size=size if isinstance(size, int) and size >= 0 else None,
        )
        found.append((FILE_KINDS[kind][0], inbound))
    return found


def _vcard_field(vcard: str, name: str) -> str:
    """The value of a vCard's first ``name`` line (``FN``, ``TEL;TYPE=cell`` …), or ""."""
    match = re.search(rf"^{name}(?:;[^:\r\n]*)?:(.*)$", vcard, re.MULTILINE | re.IGNORECASE)
    return match.group(1).strip() if match else ""


def contact_of(payload: dict[str, Any]) -> SharedContact:
    """A ``contact`` attachment's card: MAX gives a vCard (``vcf_info``), the MAX user
    (``max_info``), or both; a card is made from the user when there is no vCard."""
    vcard = payload.get("vcf_info")
    user = payload.get("max_info")
    user = user if isinstance(user, dict) else None
    name = _name_of(user) if user else ""
    if not isinstance(vcard, str) or not vcard.strip():
        vcard = f"BEGIN:VCARD\nVERSION:3.0\nFN:{name}\nEND:VCARD" if name else ""
    name = name or _vcard_field(vcard, "FN")
    user_id = user.get("user_id") if user else None
    avatar = user.get("avatar_url") if user else None
    return SharedContact(
        display_name=name,
        vcard=vcard,
        chat_id=str(user_id) if isinstance(user_id, int) else "",
        phone=re.sub(r"[^0-9]", "", _vcard_field(vcard, "TEL")),
        avatar_url=avatar if isinstance(avatar, str) else "",
    )


def extras_of(attachments: list[Any] | None) -> list[tuple[str, dict[str, Any]]]:
    """The locations and contact cards among a message's attachments, in order: (typeMessage,
    the ``InboundMessage`` fields that carry it)."""
    found: list[tuple[str, dict[str, Any]]] = []
    for attachment in attachments or []:
        if not isinstance(attachment, dict):
            continue
        kind = attachment.get("type")
        if kind == "location":
            lat, lon = attachment.get("latitude"), attachment.get("longitude")
            if isinstance(lat, int | float) and isinstance(lon, int | float):
                location = Location(latitude=float(lat), longitude=float(lon))
                found.append(("locationMessage", {"location": location}))
        elif kind == "contact" and isinstance(attachment.get("payload"), dict):
            found.append(("contactMessage", {"contact": contact_of(attachment["payload"])}))
    return found


def preview_of(attachments: list[Any] | None) -> LinkPreview | None:
    """The link preview (``share`` attachment) of a message, or None."""
    for attachment in attachments or []:
        if isinstance(attachment, dict) and attachment.get("type") == "share":
            url = (attachment.get("payload") or {}).get("url")
            title, description = attachment.get("title"), attachment.get("description")
            return LinkPreview(
                url=url if isinstance(url, str) else "",
                title=title if isinstance(title, str) else "",
                description=description if isinstance(description, str) else "",
            )
    return None


def messages_of(
    instance_id: int, bot_user_id: int | None, message: dict[str, Any], *, chat_name: str = ""
) -> list[InboundMessage]:
    """The journal messages of one Bot API ``Message``: one for its text (or its first file,
    captioned by the text), one more for each further file, location and contact. Empty for a
    message with nothing maxgate journals (a keyboard alone)."""
    body = message.get("body") or {}
    recipient_ = message.get("recipient") or {}
    sender = message.get("sender") or {}
    mid, seq = body.get("mid"), body.get("seq")
    if not isinstance(mid, str) or not isinstance(seq, int):
        return []
    sender_id = sender.get("user_id")
    from_me = bot_user_id is not None and sender_id == bot_user_id
    if recipient_.get("chat_type") == "dialog":
        other = recipient_.get("user_id") if from_me else sender_id
        if not isinstance(other, int):
            return []
        chat_id, chat_type = str(other), "user"
        chat_name = _name_of(sender) if not from_me else chat_name
    else:
        group = recipient_.get("chat_id")
        if not isinstance(group, int):
            return []
        chat_id, chat_type = str(group), "group"
    text = body.get("text")
    link = message.get("link") or {}
    quoted = None
    if link.get("type") == "reply":
        quoted_seq = (link.get("message") or {}).get("seq")
        quoted = str(quoted_seq) if isinstance(quoted_seq, int) else None
    base = InboundMessage(
        instance_id=instance_id,
        chat_id=chat_id,
        chat_type=chat_type,
        chat_name=chat_name,
        sender_id=str(sender_id) if sender_id is not None else "",
        sender_name=_name_of(sender),
        sender_phone=0,  # the Bot API tells no phone numbers
        id_message=str(seq),
        timestamp=int(message.get("timestamp") or 0) // 1000,
        type_message="textMessage",
        text=text,
        quoted_id=quoted,
        from_me=from_me,
        upstream_id=mid,
    )
    attachments = body.get("attachments")
    files = files_of(mid, attachments)
    preview = preview_of(attachments)
    parts = [
        dataclasses.replace(
            base,
            type_message=type_message,
            text=None,
            caption=(text or "") if n == 0 else "",
            file=inbound,
        )
        for n, (type_message, inbound) in enumerate(files)
    ]
    if not files and preview is not None:
        parts.append(
            dataclasses.replace(
                base, type_message="extendedTextMessage", text=text or preview.url, preview=preview
            )
        )
    elif not files and text:
        parts.append(base)
    parts.extend(
        dataclasses.replace(base, type_message=type_message, text=None, **fields)
        for type_message, fields in extras_of(attachments)
    )
    return [
        dataclasses.replace(
            part,
            id_message=str(seq) if n == 0 else f"{seq}{n:02d}",
            upstream_id=mid if n == 0 else None,
        )
        for n, part in enumerate(parts)
    ]
