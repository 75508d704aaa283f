"""Wire shapes built from domain records: journal items (spec §4.2) and file links.

Links are rendered here, when read, never stored: a journal never holds a dead link.
"""

from __future__ import annotations

from typing import Any

from maxgate.domain import notifications as n
from maxgate.domain.links import LinkSigner, file_link
from maxgate.domain.records import Message

TEXT_KINDS = ("textMessage", "extendedTextMessage")


def journal_item(message: Message, signer: LinkSigner, retention: float) -> dict[str, Any]:
    """One journal item, flat, as getChatHistory, getMessage and last*Messages return it.

    A location, contact or link preview comes as the object v1's GetChatHistory names
    ``location``, ``contact``, ``extendedTextMessage`` (v3's journal pages list no fields of
    their own for them, https://green-api.com/en/docs/api/journals/GetChatHistory/), with the
    fields of the kind's notification (``maxgate.domain.notifications``)."""
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
    if message.type_message == "locationMessage":
        item["location"] = n.location_fields(message.location)
    elif message.type_message == "contactMessage":
        item["contact"] = n.contact_fields(message.contact)
    elif message.type_message == "extendedTextMessage":
        item["extendedTextMessage"] = n.extended_text_fields(message.text, message.preview)
    item.update(
        isForwarded=False,
        forwardingScore=0,
        isEdited=message.is_edited,
        isDeleted=message.is_deleted,
    )
    if message.quoted_id:
        item["quotedMessage"] = {"stanzaId": message.quoted_id}
    return item
