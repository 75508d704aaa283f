"""Service methods: editMessage, deleteMessage, sendTyping, readChat, getContacts,
getContactInfo, getAvatar.

editMessage follows v3's own page (https://green-api.com/v3/docs/api/service/EditMessage);
the others follow GREEN-API's v1 pages of the same method (…/en/docs/api/service/…,
…/marks/ReadChat/, …/sending/SendTyping), with v3's chatIds. Each needs the messenger: the
instance's adapter does the work through its ``MessageActions`` (``actions_of``), and a
failure of the messenger is 502 ``Bad Gateway``.
"""

from __future__ import annotations

from typing import Any

from maxgate.api import schemas
from maxgate.api.errors import bad_request, validation_failed
from maxgate.api.routing import Call, method
from maxgate.api.validation import CHAT_ID, Field
from maxgate.domain.journal import Journal
from maxgate.domain.messenger import MessageActions, actions_of
from maxgate.domain.records import Instance, Message
from maxgate.errors import ApiError, UpstreamError
from maxgate.upstream.router import Upstreams

MAX_TEXT = 4000
TEXT_KINDS = frozenset({"textMessage", "extendedTextMessage"})
TYPING_MIN, TYPING_MAX = 1000, 20000  # milliseconds, as the vendor bounds typingTime

EDIT_MESSAGE = (
    Field("chatId", pattern=CHAT_ID),
    Field("idMessage"),
    Field("message", max_length=MAX_TEXT),
)
DELETE_MESSAGE = (Field("chatId", pattern=CHAT_ID), Field("idMessage"))
SEND_TYPING = (
    Field("chatId", pattern=CHAT_ID),
    Field("typingTime", int, required=False),
    Field("typingType", required=False),
)
READ_CHAT = (Field("chatId", pattern=CHAT_ID), Field("idMessage", required=False))
CHAT = (Field("chatId", pattern=CHAT_ID),)

NOT_FOUND = "Message by id not found"
"""v1 DeleteMessage's text for a message it does not have (or one already deleted)."""


def _actions(upstreams: Upstreams, instance: Instance) -> MessageActions:
    try:
        return actions_of(upstreams.of(instance))
    except UpstreamError:
        raise ApiError(502, "Bad Gateway") from None


async def _own_message(
    journal: Journal, instance: Instance, chat_id: str, id_message: str
) -> Message:
    """An outgoing message of the journal that the messenger has: 400 otherwise."""
    found = await journal.get(instance.id, chat_id, id_message)
    if found is None or found.is_deleted:
        raise bad_request(NOT_FOUND)
    if found.direction != "outgoing":
        raise bad_request(
            f"Message {id_message} is incoming: only outgoing messages can be changed"
        )
    if found.status in ("pending", "failed"):
        raise bad_request(f"Message {id_message} was not sent: it is {found.status}")
    return found


@method("editMessage", "POST", needs_upstream=True, body=EDIT_MESSAGE, answer=schemas.ID_MESSAGE)
async def edit_message(call: Call, *, journal: Journal, upstreams: Upstreams) -> dict[str, Any]:
    """Change the text of an outgoing text message; answers its (unchanged) idMessage."""
    body = await call.json(EDIT_MESSAGE)
    found = await _own_message(journal, call.instance, body["chatId"], body["idMessage"])
    if found.type_message not in TEXT_KINDS:
        raise bad_request(
            f"Message {found.id_message} is a {found.type_message}: "
            "only text messages can be edited"
        )
    try:
        await _actions(upstreams, call.instance).edit_message(call.instance, found, body["message"])
    except UpstreamError:
        raise ApiError(502, "Bad Gateway") from None
    await journal.record_edit(call.instance, found, body["message"])
    return {"idMessage": found.id_message}


@method("deleteMessage", "POST", needs_upstream=True, body=DELETE_MESSAGE, answer=schemas.EMPTY)
async def delete_message(call: Call, *, journal: Journal, upstreams: Upstreams) -> dict[str, Any]:
    """Remove an outgoing message for everybody; the journal keeps it with ``isDeleted``."""
    body = await call.json(DELETE_MESSAGE)
    found = await _own_message(journal, call.instance, body["chatId"], body["idMessage"])
    try:
        await _actions(upstreams, call.instance).delete_message(call.instance, found)
    except UpstreamError:
        raise ApiError(502, "Bad Gateway") from None
    await journal.on_delete(call.instance.id, chat_id=found.chat_id, id_message=found.id_message)
    return {}


@method("sendTyping", "POST", needs_upstream=True, body=SEND_TYPING, answer=schemas.EMPTY)
async def send_typing(call: Call, *, upstreams: Upstreams) -> dict[str, Any]:
    """Show "typing…" (``typingType`` ``recording``: "recording…") in a chat for
    ``typingTime`` milliseconds (1000 to 20000, default 1000)."""
    body = await call.json(SEND_TYPING)
    milliseconds = body.get("typingTime", TYPING_MIN)
    # The vendor's own words for the bounds ("larger than", not Joi's "greater than").
    if milliseconds < TYPING_MIN:
        raise validation_failed(f"'typingTime' must be larger than or equal to {TYPING_MIN}")
    if milliseconds > TYPING_MAX:
        raise validation_failed(f"'typingTime' must be less than or equal to {TYPING_MAX}")
    recording = body.get("typingType") == "recording"
    try:
        await _actions(upstreams, call.instance).send_typing(
            call.instance, body["chatId"], milliseconds=milliseconds, recording=recording
        )
    except UpstreamError:
        raise ApiError(502, "Bad Gateway") from None
    return {}


@method("readChat", "POST", needs_upstream=True, body=READ_CHAT, answer=schemas.SET_READ)
async def read_chat(call: Call, *, upstreams: Upstreams) -> dict[str, Any]:
    """Mark a chat's incoming messages read (one, with ``idMessage``): the sender sees it."""
    body = await call.json(READ_CHAT)
    try:
        await _actions(upstreams, call.instance).read_chat(
            call.instance, body["chatId"], body.get("idMessage")
        )
    except UpstreamError:
        raise ApiError(502, "Bad Gateway") from None
    return {"setRead": True}


@method("getContacts", "GET", needs_upstream=True, answer=schemas.CONTACTS)
async def get_contacts(call: Call, *, upstreams: Upstreams) -> list[dict[str, Any]]:
    """The account's contacts: ``[{"chatId", "name", "contactName", "type", "phoneNumber"}]``."""
    try:
        found = await upstreams.of(call.instance).contacts(call.instance)
    except UpstreamError:
        raise ApiError(502, "Bad Gateway") from None
    return [
        {
            "chatId": contact.chat_id,
            "name": contact.name,
            "contactName": contact.name,
            "type": "group" if contact.chat_id.startswith("-") else "user",
            "phoneNumber": contact.phone,
        }
        for contact in found
    ]


@method("getContactInfo", "POST", needs_upstream=True, body=CHAT, answer=schemas.CONTACT_INFO)
async def get_contact_info(call: Call, *, upstreams: Upstreams) -> dict[str, Any]:
    """What the messenger tells of a person (not of a group)."""
    body = await call.json(CHAT)
    chat_id = body["chatId"]
    if chat_id.startswith("-"):
        raise validation_failed("The method GetContactInfo does not support group chats")
    try:
        info = await _actions(upstreams, call.instance).contact_info(call.instance, chat_id)
    except UpstreamError:
        raise ApiError(502, "Bad Gateway") from None
    return {
        "avatar": info.avatar if info else "",
        "name": info.name if info else "",
        "contactName": info.contact_name if info else "",
        "chatId": chat_id,
        "phoneNumber": info.phone if info else 0,
    }


@method("getAvatar", "POST", needs_upstream=True, body=CHAT, answer=schemas.AVATAR)
async def get_avatar(call: Call, *, upstreams: Upstreams) -> dict[str, Any]:
    """The picture of a person or group: ``{"urlAvatar"}`` ("" when none is set)."""
    body = await call.json(CHAT)
    try:
        url = await _actions(upstreams, call.instance).avatar(call.instance, body["chatId"])
    except UpstreamError:
        raise ApiError(502, "Bad Gateway") from None
    return {"urlAvatar": url}
