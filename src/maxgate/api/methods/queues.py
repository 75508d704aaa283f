"""Queues: showMessagesQueue, clearMessagesQueue, getMessagesCount."""

from __future__ import annotations

from typing import Any

from maxgate.api import schemas
from maxgate.api.routing import Call, method
from maxgate.domain.links import LinkSigner, file_link
from maxgate.domain.outbox import Outbox
from maxgate.settings import Settings


@method("showMessagesQueue", "GET", answer=schemas.MESSAGES_QUEUE)
async def show_messages_queue(
    call: Call, *, outbox: Outbox, settings: Settings, signer: LinkSigner
) -> list[dict[str, Any]]:
    """Outgoing messages not yet handed to the messenger, oldest first."""
    out = []
    for message in await outbox.pending(call.instance.id):
        body: dict[str, Any] = {"chatId": message.chat_id}
        if message.file is None:
            kind = "sendMessage"
            body["message"] = message.text or ""
        else:
            kind = "sendFile"
            body.update(
                fileName=message.file.file_name,
                caption=message.caption,
                urlFile=file_link(signer, message.file, settings.file_retention),
            )
        out.append({"messageID": message.id_message, "type": kind, "body": body})
    return out


@method("clearMessagesQueue", "GET", answer=schemas.CLEARED)
async def clear_messages_queue(call: Call, *, outbox: Outbox) -> dict[str, Any]:
    """Drop the waiting outgoing messages (they become ``failed`` in the journal)."""
    await outbox.clear(call.instance.id)
    return {"isCleared": True}


@method("getMessagesCount", "GET", answer=schemas.COUNT)
async def get_messages_count(call: Call, *, outbox: Outbox) -> dict[str, Any]:
    """How many outgoing messages wait for the messenger."""
    return {"count": await outbox.count(call.instance.id)}
