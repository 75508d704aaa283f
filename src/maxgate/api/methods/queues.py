"""Queues: showMessagesQueue, clearMessagesQueue, getMessagesCount."""

from __future__ import annotations

from typing import Any

from maxgate.api import schemas
from maxgate.api.routing import Call, method
from maxgate.domain.links import file_link


@method("showMessagesQueue", "GET", answer=schemas.MESSAGES_QUEUE)
async def show_messages_queue(call: Call) -> list[dict[str, Any]]:
    """Outgoing messages not yet handed to the messenger, oldest first."""
    runtime = call.runtime
    out = []
    for message in await runtime.outbox.pending(call.instance.id):
        body: dict[str, Any] = {"chatId": message.chat_id}
        if message.file is None:
            kind = "sendMessage"
            body["message"] = message.text or ""
        else:
            kind = "sendFile"
            body.update(
                fileName=message.file.file_name,
                caption=message.caption,
                urlFile=file_link(runtime.signer, message.file, runtime.settings.file_retention),
            )
        out.append({"messageID": message.id_message, "type": kind, "body": body})
    return out


@method("clearMessagesQueue", "GET", answer=schemas.CLEARED)
async def clear_messages_queue(call: Call) -> dict[str, Any]:
    """Drop the waiting outgoing messages (they become ``failed`` in the journal)."""
    await call.runtime.outbox.clear(call.instance.id)
    return {"isCleared": True}


@method("getMessagesCount", "GET", answer=schemas.COUNT)
async def get_messages_count(call: Call) -> dict[str, Any]:
    """How many outgoing messages wait for the messenger."""
    return {"count": await call.runtime.outbox.count(call.instance.id)}
