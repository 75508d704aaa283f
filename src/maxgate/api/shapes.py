"""Wire shapes built from domain records: journal items (spec §4.2) and file links.

Links are rendered here, when read, never stored: a journal never holds a dead link.
"""

from __future__ import annotations

from typing import Any

from maxgate.domain.links import LinkSigner, file_link
from maxgate.domain.records import Message

TEXT_KINDS = ("textMessage", "extendedTextMessage")


def journal_item(message: Message, signer: LinkSigner, retention: float) -> dict[str, Any]:
    """One journal item, flat, as getChatHistory, getMessage and last*Messages return it."""
    item: dict[str, Any] = {
        "type": message.direction,
        "idMessage": message.id_message,
        "timestamp": message.timestamp,
        "typeMessage": message.type_message,
        "chatId": message.chat_id,
        "senderId": message.sender_id,
        "senderName": message.sender_name,
    }
    if message.direction == "incoming":
        item["senderContactName"] = ""
    else:
        item["statusMessage"] = message.status or "pending"
        item["sendByApi"] = message.send_by_api
        if message.status == "failed" and message.status_description:
            item["description"] = message.status_description
    if message.type_message in TEXT_KINDS:
        item["textMessage"] = message.text or ""
    if message.file is not None:
        item.update(
            downloadUrl=file_link(signer, message.file, retention),
            caption=message.caption,
            fileName=message.file.file_name,
            jpegThumbnail=message.file.thumbnail,
            mimeType=message.file.mime_type,
            isAnimated=False,
        )
    item.update(isForwarded=False, forwardingScore=0, isEdited=False, isDeleted=False)
    if message.quoted_id:
        item["quotedMessage"] = {"stanzaId": message.quoted_id}
    return item
