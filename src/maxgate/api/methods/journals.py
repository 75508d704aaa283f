"""Journals: getChatHistory, getMessage, lastIncomingMessages, lastOutgoingMessages, getChats."""

from __future__ import annotations

from typing import Any

from maxgate.api import schemas
from maxgate.api.errors import bad_request
from maxgate.api.routing import Call, method
from maxgate.api.schemas import Param
from maxgate.api.shapes import journal_item
from maxgate.api.validation import CHAT_ID, Field
from maxgate.domain.journal import Journal
from maxgate.domain.links import LinkSigner
from maxgate.domain.records import Message
from maxgate.settings import Settings

GET_CHAT_HISTORY = (
    Field("chatId", pattern=CHAT_ID),
    Field("count", int, required=False, minimum=1, maximum=10000),
)
GET_MESSAGE = (Field("chatId", pattern=CHAT_ID), Field("idMessage"))
MINUTES_MAX = 60 * 24 * 365
MINUTES = Param(
    "minutes", "The window, in minutes back from now.", default=1440, minimum=1, maximum=MINUTES_MAX
)


def _items(signer: LinkSigner, settings: Settings, messages: list[Message]) -> list[dict[str, Any]]:
    return [journal_item(m, signer, settings.file_retention) for m in messages]


@method("getChatHistory", "POST", body=GET_CHAT_HISTORY, answer=schemas.JOURNAL)
async def get_chat_history(
    call: Call, *, journal: Journal, signer: LinkSigner, settings: Settings
) -> list[dict[str, Any]]:
    """The newest messages of a chat, newest first (default 100)."""
    body = await call.json(GET_CHAT_HISTORY)
    messages = await journal.history(call.instance.id, body["chatId"], body.get("count", 100))
    return _items(signer, settings, messages)


@method("getMessage", "POST", body=GET_MESSAGE, answer=schemas.JOURNAL_ITEM)
async def get_message(
    call: Call, *, journal: Journal, signer: LinkSigner, settings: Settings
) -> dict[str, Any]:
    """One message of a chat, or 400 ``Message not found``."""
    body = await call.json(GET_MESSAGE)
    message = await journal.get(call.instance.id, body["chatId"], body["idMessage"])
    if message is None:
        raise bad_request("Message not found")
    return _items(signer, settings, [message])[0]


async def _last(
    call: Call, direction: str, journal: Journal, signer: LinkSigner, settings: Settings
) -> list[dict[str, Any]]:
    minutes = MINUTES.read(call.request.query_params)
    return _items(signer, settings, await journal.last(call.instance.id, direction, minutes))


@method("lastIncomingMessages", "GET", query=[MINUTES], answer=schemas.JOURNAL)
async def last_incoming_messages(
    call: Call, *, journal: Journal, signer: LinkSigner, settings: Settings
) -> list[dict[str, Any]]:
    """Incoming messages of the last ``minutes`` (default 1440), newest first."""
    return await _last(call, "incoming", journal, signer, settings)


@method("lastOutgoingMessages", "GET", query=[MINUTES], answer=schemas.JOURNAL)
async def last_outgoing_messages(
    call: Call, *, journal: Journal, signer: LinkSigner, settings: Settings
) -> list[dict[str, Any]]:
    """Outgoing messages of the last ``minutes`` (default 1440), newest first."""
    return await _last(call, "outgoing", journal, signer, settings)


@method("getChats", "GET", answer=schemas.CHATS)
async def get_chats(call: Call, *, journal: Journal) -> list[dict[str, Any]]:
    """The instance's chats: chatId and phone number (0 when unknown or a group)."""
    chats = await journal.chats(call.instance.id)
    return [{"chatId": c["chat_id"], "phoneNumber": c["phone"]} for c in chats]
