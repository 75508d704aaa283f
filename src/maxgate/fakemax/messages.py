"""``/messages`` and ``/messages/{messageId}``: what the bot sends, reads, edits and deletes.

Attachments are taken as the schema's ``AttachmentRequest``: media by the token of an upload
(``attachment.not.ready`` until the fake has "processed" it), an image also by URL or
``photos``, stickers, contacts, locations, shares and keyboards by their fields. Audio and file
attachments must be alone in their message, as the schema says.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.routing import Route

from maxgate.fakemax.calls import Call, bot_route
from maxgate.fakemax.errors import NOT_READY, ApiError, bad_request, forbidden, not_found
from maxgate.fakemax.world import Attachment, Chat, Message

MAX_TEXT = 4000
ALONE = ("audio", "file")


def _media(call: Call, kind: str, payload: dict[str, Any]) -> Attachment:
    token = payload.get("token")
    stored = call.fake.files.by_token.get(token) if isinstance(token, str) else None
    if stored is None or stored.deleted or stored.kind != kind:
        raise bad_request(f"Attachment {kind}: unknown token {token!r}")
    if not stored.complete or time.monotonic() < stored.ready_at:
        raise ApiError(400, *NOT_READY)
    return Attachment(kind, stored)


def _attachment(call: Call, item: Any) -> Attachment:
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        raise bad_request("Each attachment must be an object with a type")
    kind = item["type"]
    payload = item.get("payload")
    if kind == "location":
        lat, lon = item.get("latitude"), item.get("longitude")
        if not all(isinstance(v, int | float) for v in (lat, lon)):
            raise bad_request("Attachment location needs numeric latitude and longitude")
        return Attachment("location", fields={"latitude": lat, "longitude": lon})
    if kind == "reply_keyboard":
        return Attachment(kind, fields={"buttons": item.get("buttons", [])})
    if not isinstance(payload, dict):
        raise bad_request(f"Attachment {kind} needs a payload object")
    if kind == "image":
        if isinstance(payload.get("token"), str):
            return _media(call, "image", payload)
        photos = payload.get("photos")
        if isinstance(photos, dict) and photos:
            first = next(iter(photos.values()))
            return _media(call, "image", first if isinstance(first, dict) else {})
        if isinstance(payload.get("url"), str):
            fields = {"photo_id": 0, "token": "", "url": payload["url"]}
            return Attachment("image", fields=fields)
        raise bad_request("Attachment image needs one of url, token or photos")
    if kind in ("video", "audio", "file"):
        return _media(call, kind, payload)
    if kind == "sticker":
        if not isinstance(payload.get("code"), str):
            raise bad_request("Attachment sticker needs payload.code")
        return Attachment("sticker", fields={"code": payload["code"]})
    if kind == "contact":
        vcf = payload.get("vcf_info")
        if vcf is None and payload.get("name"):
            phone = payload.get("vcf_phone") or ""
            vcf = f"BEGIN:VCARD\nVERSION:3.0\nFN:{payload['name']}\nTEL:{phone}\nEND:VCARD"
        return Attachment("contact", fields={"vcf_info": vcf, "max_info": None})
    if kind == "inline_keyboard":
        return Attachment(kind, fields={"payload": {"buttons": payload.get("buttons", [])}})
    if kind == "share":
        fields = {"payload": {"url": payload.get("url"), "token": payload.get("token")}}
        return Attachment("share", fields={**fields, "title": None, "image_url": None})
    raise bad_request(f"Unknown attachment type {kind!r}")


def parse_new_body(call: Call) -> tuple[str | None, list[Attachment] | None, Any]:
    """The text, attachments (None: not given) and link of a ``NewMessageBody``."""
    body = call.body_object()
    text = body.get("text")
    if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
        raise bad_request(f"Field text must be a string of at most {MAX_TEXT} characters")
    if body.get("format") not in (None, "markdown", "html"):
        raise bad_request(f"Field format must be markdown or html, got {body['format']!r}")
    raw = body.get("attachments")
    attachments = None
    if raw is not None:
        if not isinstance(raw, list):
            raise bad_request("Field attachments must be a list")
        attachments = [_attachment(call, item) for item in raw]
        if len(attachments) > 1 and any(a.kind in ALONE for a in attachments):
            raise bad_request("Audio and file attachments must be the only one in a message")
    return text, attachments, body.get("link")


def visible_chat(call: Call, chat_id: int) -> Chat:
    """A chat the bot is a member of, else 404."""
    chat = call.world.chats.get(chat_id)
    if chat is None or call.bot.user_id not in chat.members:
        raise not_found(f"Chat {chat_id} not found")
    return chat


def visible_message(call: Call, mid: str | None) -> Message:
    """A message in one of the bot's chats, else 404."""
    message = call.world.messages.get(mid or "")
    if message is None or message.removed:
        raise not_found(f"Message {mid!r} not found")
    chat = call.world.chats[message.chat_id]
    if call.bot.user_id not in chat.members:
        raise not_found(f"Message {mid!r} not found")
    return message


async def send_message(call: Call) -> Any:
    user_id, chat_id = call.query_int("user_id"), call.query_int("chat_id")
    if chat_id is not None:
        chat = visible_chat(call, chat_id)
    elif user_id is not None:
        if user_id not in call.world.people or user_id in call.world.bots:
            raise not_found(f"User {user_id} not found")
        chat = call.world.dialog(call.bot, user_id)
    else:
        raise bad_request("One of the parameters user_id or chat_id is required")
    if chat.status != "active":
        raise forbidden(f"The bot cannot write to chat {chat.chat_id}: {chat.status}")
    text, attachments, link = parse_new_body(call)
    if not text and not attachments:
        raise bad_request("A message needs text or attachments")
    reply = None
    if isinstance(link, dict) and link.get("type") in ("forward", "reply"):
        visible_message(call, link.get("mid"))
        reply = (link["type"], link["mid"])
    message = call.world.add_message(chat, call.bot.user_id, text, attachments or [], link=reply)
    return {"message": call.render.message(message)}


async def get_messages(call: Call) -> Any:
    count = call.query_int("count", default=50)
    if count is None or not 1 <= count <= 100:
        raise bad_request(f"Parameter count must be 1..100, got {count}")
    ids = call.query_list("message_ids")
    chat_id = call.query_int("chat_id")
    if ids is not None:
        found = [call.world.messages.get(mid) for mid in ids]
        listed = [m for m in found if m is not None and not m.removed]
        listed = [m for m in listed if call.bot.user_id in call.world.chats[m.chat_id].members]
    elif chat_id is not None:
        listed = call.world.chat_messages(visible_chat(call, chat_id).chat_id)
        start, end = call.query_int("from"), call.query_int("to")
        if start is not None:
            listed = [m for m in listed if m.timestamp <= start]
        if end is not None:
            listed = [m for m in listed if m.timestamp >= end]
    else:
        raise bad_request("One of the parameters chat_id or message_ids is required")
    return {"messages": [call.render.message(m) for m in listed[:count]]}


async def get_message(call: Call) -> Any:
    return call.render.message(visible_message(call, call.request.path_params["messageId"]))


async def edit_message(call: Call) -> Any:
    message = visible_message(call, call.query("message_id"))
    if message.sender_id != call.bot.user_id:
        raise forbidden("The bot can edit only its own messages")
    text, attachments, _link = parse_new_body(call)
    message.text = text
    if attachments is not None:  # null keeps the attachments, [] removes them
        message.attachments = attachments
    return {"success": True}


async def delete_message(call: Call) -> Any:
    message = visible_message(call, call.query("message_id"))
    chat = call.world.chats[message.chat_id]
    if message.sender_id != call.bot.user_id and call.bot.user_id not in chat.admins:
        raise forbidden("The bot can delete others' messages only as a chat admin")
    message.removed = True
    return {"success": True}


ROUTES: list[Route] = [
    bot_route("/messages", "POST", send_message),
    bot_route("/messages", "GET", get_messages),
    bot_route("/messages", "PUT", edit_message),
    bot_route("/messages", "DELETE", delete_message),
    bot_route("/messages/{messageId}", "GET", get_message),
]
