"""The control API (``/_control/…``, no token): a test plays the other side of the bot. A user
starts the bot, writes, sends files of every kind, stickers, locations and contacts, edits or
removes a message, adds the bot to a group; the operator revokes a token, deletes a file for
good or makes the platform answer 503. Each action produces the updates the real platform
would, with the fields real payloads carry beyond the schema (a top-level ``user_id`` in chat
events, users' avatars): the official Go client's fixtures, ``tests/fakemax/stabs/``, are the
reference. docs/fakemax.md lists every route.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from maxgate.fakemax.calls import json_response
from maxgate.fakemax.errors import ApiError, bad_request, error_body, not_found
from maxgate.fakemax.files import UPLOAD_TYPES
from maxgate.fakemax.server import FakeMax
from maxgate.fakemax.world import Attachment, Bot, Chat, Message, Person, now_ms

ControlHandler = Callable[["Control"], Awaitable[Any]]


class Control:
    """One control request: its JSON body and helpers to find records."""

    def __init__(self, request: Request, fake: FakeMax, body: dict[str, Any]) -> None:
        self.request = request
        self.fake = fake
        self.world = fake.world
        self.body = body
        self.render = fake.renderer(request)

    def param(self, name: str) -> int:
        try:
            return int(self.request.path_params[name])
        except ValueError:
            raise bad_request(f"{name} must be a number") from None

    def field(self, name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        value = self.body.get(name, default)
        if value is ...:
            raise bad_request(f"Field {name} is required")
        if value is not None and value is not default and not isinstance(value, kind):
            raise bad_request(f"Field {name} has the wrong type: {value!r}")
        return value

    def user(self, user_id: Any) -> Person:
        person = self.world.people.get(user_id) if isinstance(user_id, int) else None
        if person is None or person.is_bot:
            raise not_found(f"No user {user_id!r}")
        return person

    def bot(self, bot_id: Any = None) -> Bot:
        if bot_id is None:
            if len(self.world.bots) != 1:
                raise bad_request("Name the bot: field bot_id (the fake has several)")
            return next(iter(self.world.bots.values()))
        bot = self.world.bots.get(bot_id) if isinstance(bot_id, int) else None
        if bot is None:
            raise not_found(f"No bot {bot_id!r}")
        return bot

    def chat(self, chat_id: int) -> Chat:
        chat = self.world.chats.get(chat_id)
        if chat is None:
            raise not_found(f"No chat {chat_id}")
        return chat

    def message(self, mid: str) -> Message:
        message = self.world.messages.get(mid)
        if message is None or message.removed:
            raise not_found(f"No message {mid!r}")
        return message

    def to_bots(self, chat: Chat, update: dict[str, Any], *, besides: int | None = None) -> None:
        """Push ``update`` to every bot in ``chat`` except ``besides``."""
        for bot in self.world.bots_in(chat):
            if bot.user_id != besides:
                self.world.push(bot, dict(update))


def _bot_view(bot: Bot) -> dict[str, Any]:
    return {
        "bot_id": bot.user_id,
        "token": bot.token,
        "username": bot.person.username,
        "revoked": bot.revoked,
    }


async def health(c: Control) -> Any:
    return {"ok": True}


async def list_bots(c: Control) -> Any:
    return {"bots": [_bot_view(b) for b in c.world.bots.values()]}


async def add_bot(c: Control) -> Any:
    token = c.field("token", str, None) or f"fakemax-{len(c.world.bots) + 1}-token"
    if c.world.bot_by_token(token) is not None:
        raise bad_request(f"Token {token!r} is taken")
    bot = c.world.add_bot(
        token,
        first_name=c.field("first_name", str, "Fake bot"),
        username=c.field("username", str, ""),
    )
    return _bot_view(bot)


async def revoke(c: Control) -> Any:
    bot = c.bot(c.param("bot_id"))
    bot.revoked = True
    bot.arrived.set()  # a poll under way ends (and the next call gets 401)
    return {"success": True}


async def add_user(c: Control) -> Any:
    person = c.world.add_user(
        c.field("first_name", str, "Test"),
        c.field("last_name", str, None),
        c.field("username", str, None),
    )
    return c.render.user(person)


async def start_bot(c: Control) -> Any:
    person, bot = c.user(c.param("user_id")), c.bot(c.field("bot_id", int, None))
    chat = c.world.dialog(bot, person.user_id)
    update = {
        "update_type": "bot_started",
        "chat_id": chat.chat_id,
        "user": c.render.user(person, photo=True),
        "payload": c.field("payload", str, None),
        "user_locale": "ru",
        "user_id": person.user_id,
    }
    c.world.push(bot, update)
    return {"chat_id": chat.chat_id}


async def stop_bot(c: Control) -> Any:
    person, bot = c.user(c.param("user_id")), c.bot(c.field("bot_id", int, None))
    chat = c.world.dialog(bot, person.user_id)
    update = {
        "update_type": "bot_stopped",
        "chat_id": chat.chat_id,
        "user": c.render.user(person, photo=True),
        "user_locale": "ru",
    }
    c.world.push(bot, update)
    return {"chat_id": chat.chat_id}


async def add_file(c: Control) -> Any:
    kind = c.request.query_params.get("type", "file")
    if kind not in UPLOAD_TYPES:
        raise bad_request(f"Parameter type must be one of {', '.join(UPLOAD_TYPES)}")
    stored = c.fake.files.new_file(kind, c.request.query_params.get("filename", ""))
    stored.filename = stored.filename or f"file-{stored.file_id}"
    with stored.path.open("wb") as fh:
        async for chunk in c.request.stream():
            fh.write(chunk)
    c.fake.files.finish(stored)
    stored.ready_at = 0.0
    return {"file_id": stored.file_id, "token": stored.token, "size": stored.size}


async def delete_file(c: Control) -> Any:
    stored = c.fake.files.files.get(c.param("file_id"))
    if stored is None:
        raise not_found("No such file")
    c.fake.files.delete(stored)
    return {"success": True}


def _attachment(c: Control, item: Any) -> Attachment:
    if not isinstance(item, dict):
        raise bad_request("Each attachment must be an object")
    kind = item.get("type")
    if kind in UPLOAD_TYPES:
        if "file_id" in item:
            stored = c.fake.files.files.get(item["file_id"])
            if stored is None or stored.kind != kind:
                raise not_found(f"No {kind} file {item['file_id']!r}")
            return Attachment(kind, stored)
        try:
            data = base64.b64decode(item["content_base64"], validate=True)
        except (KeyError, binascii.Error, TypeError):
            data = str(item.get("text", "")).encode()
        filename = str(item.get("filename") or f"{kind}.bin")
        return Attachment(kind, c.fake.files.store_bytes(kind, filename, data))
    if kind == "sticker":
        return Attachment("sticker", fields={"code": str(item.get("code", "smile"))})
    if kind == "location":
        lat, lon = item.get("latitude"), item.get("longitude")
        if not all(isinstance(v, int | float) for v in (lat, lon)):
            raise bad_request("A location needs numeric latitude and longitude")
        return Attachment("location", fields={"latitude": lat, "longitude": lon})
    if kind == "contact":
        name, phone = item.get("name", ""), item.get("phone", "")
        vcf = f"BEGIN:VCARD\nVERSION:3.0\nFN:{name}\nTEL;TYPE=cell:{phone}\nEND:VCARD"
        user_id = item.get("user_id")
        known = c.world.people.get(user_id) if isinstance(user_id, int) else None
        return Attachment(
            "contact", fields={"vcf_info": vcf, "max_info": c.render.user(known) if known else None}
        )
    if kind == "share":
        payload = {"url": item.get("url"), "token": None}
        return Attachment("share", fields={"payload": payload, "title": None, "image_url": None})
    raise bad_request(f"Unknown attachment type {kind!r}")


def _attachments(c: Control) -> list[Attachment]:
    raw = c.field("attachments", list, [])
    return [_attachment(c, item) for item in raw or []]


async def send(c: Control) -> Any:
    person = c.user(c.field("user_id", int))
    chat_id = c.field("chat_id", int, None)
    if chat_id is None:
        chat = c.world.dialog(c.bot(c.field("bot_id", int, None)), person.user_id)
    else:
        chat = c.chat(chat_id)
    if person.user_id not in chat.members:
        raise bad_request(f"User {person.user_id} is not in chat {chat.chat_id}")
    link = None
    if (replied := c.field("reply_to", str, None)) is not None:
        link = ("reply", c.message(replied).mid)
    elif (forwarded := c.field("forward", str, None)) is not None:
        link = ("forward", c.message(forwarded).mid)
    message = c.world.add_message(
        chat, person.user_id, c.field("text", str, None), _attachments(c), link=link
    )
    rendered = c.render.message(message)
    locale = "ru" if chat.type == "dialog" else None
    update = {"update_type": "message_created", "message": rendered, "user_locale": locale}
    c.to_bots(chat, update, besides=person.user_id)
    return {"message": rendered}


async def edit(c: Control) -> Any:
    message = c.message(c.request.path_params["mid"])
    if "text" in c.body:
        message.text = c.field("text", str, None)
    if "attachments" in c.body:
        message.attachments = _attachments(c)
    rendered = c.render.message(message)
    chat = c.world.chats[message.chat_id]
    c.to_bots(
        chat, {"update_type": "message_edited", "message": rendered}, besides=message.sender_id
    )
    return {"message": rendered}


async def remove(c: Control) -> Any:
    message = c.message(c.request.path_params["mid"])
    message.removed = True
    chat = c.world.chats[message.chat_id]
    update = {
        "update_type": "message_removed",
        "message_id": message.mid,
        "chat_id": chat.chat_id,
        "user_id": message.sender_id,
    }
    c.to_bots(chat, update, besides=message.sender_id)
    return {"success": True}


async def add_chat(c: Control) -> Any:
    owner = c.user(c.field("owner_id", int))
    members = [c.user(m).user_id for m in c.field("members", list, []) or []]
    chat = c.world.add_group(c.field("title", str, "Group"), owner.user_id, members)
    return {"chat_id": chat.chat_id}


async def add_bot_to_chat(c: Control) -> Any:
    chat, bot = c.chat(c.param("chat_id")), c.bot(c.field("bot_id", int, None))
    chat.members.setdefault(bot.user_id, now_ms())
    if c.field("admin", bool, True):
        chat.admins.add(bot.user_id)
    # Since November 2026 bot_added carries no user (dev.max.ru changelog).
    c.world.push(bot, {"update_type": "bot_added", "chat_id": chat.chat_id, "is_channel": False})
    return {"success": True}


async def remove_bot_from_chat(c: Control) -> Any:
    chat, bot = c.chat(c.param("chat_id")), c.bot(c.param("bot_id"))
    chat.members.pop(bot.user_id, None)
    chat.admins.discard(bot.user_id)
    owner = c.world.people[chat.owner_id] if chat.owner_id else bot.person
    update = {
        "update_type": "bot_removed",
        "chat_id": chat.chat_id,
        "user": c.render.user(owner, photo=True),
        "user_id": owner.user_id,
        "is_channel": False,
    }
    c.world.push(bot, update)
    return {"success": True}


async def rename_chat(c: Control) -> Any:
    chat, person = c.chat(c.param("chat_id")), c.user(c.field("user_id", int))
    chat.title = c.field("title", str)
    update = {
        "update_type": "chat_title_changed",
        "chat_id": chat.chat_id,
        "user": c.render.user(person, photo=True),
        "title": chat.title,
        "user_id": person.user_id,
    }
    c.to_bots(chat, update)
    return {"success": True}


async def press(c: Control) -> Any:
    """A user presses a callback button of a bot's message."""
    person, message = c.user(c.field("user_id", int)), c.message(c.field("mid", str))
    callback_id = c.world.new_callback(message.mid)
    callback = {
        "timestamp": now_ms(),
        "callback_id": callback_id,
        "payload": c.field("payload", str, None),
        "user": c.render.user(person),
    }
    update = {
        "update_type": "message_callback",
        "callback": callback,
        "message": c.render.message(message),
        "user_locale": "ru",
    }
    c.to_bots(c.world.chats[message.chat_id], update, besides=person.user_id)
    return {"callback_id": callback_id}


async def add_member(c: Control) -> Any:
    chat, person = c.chat(c.param("chat_id")), c.user(c.field("user_id", int))
    chat.members.setdefault(person.user_id, now_ms())
    update = {
        "update_type": "user_added",
        "chat_id": chat.chat_id,
        "user": c.render.user(person, photo=True),
        "inviter_id": c.field("inviter_id", int, None),
        "user_id": person.user_id,
        "is_channel": False,
    }
    c.to_bots(chat, update)
    return {"success": True}


async def remove_member(c: Control) -> Any:
    """A member leaves a group, or an admin (``?admin_id=``) removes them."""
    chat, person = c.chat(c.param("chat_id")), c.user(c.param("user_id"))
    if chat.members.pop(person.user_id, None) is None:
        raise bad_request(f"User {person.user_id} is not in chat {chat.chat_id}")
    update: dict[str, Any] = {
        "update_type": "user_removed",
        "chat_id": chat.chat_id,
        "user": c.render.user(person, photo=True),
        "user_id": person.user_id,
        "is_channel": False,
    }
    if admin := c.request.query_params.get("admin_id"):
        # The schema says the user who left has a null admin_id, yet types it non-nullable:
        # the fake leaves it out then (it is not required).
        update["admin_id"] = int(admin)
    c.to_bots(chat, update)
    return {"success": True}


async def chat_messages(c: Control) -> Any:
    listed = c.world.chat_messages(c.chat(c.param("chat_id")).chat_id)
    return {"messages": [c.render.message(m) for m in listed]}


async def updates(c: Control) -> Any:
    bot = c.bot(
        int(c.request.query_params["bot_id"]) if "bot_id" in c.request.query_params else None
    )
    return {"updates": bot.log, "delivered": [u for _url, u in c.fake.webhooks.delivered]}


async def set_faults(c: Control) -> Any:
    faults = c.fake.faults
    faults.status = c.field("status", int, 503)
    faults.count = c.field("count", int, 0)
    faults.until = time.monotonic() + float(c.field("seconds", (int, float), 0))
    return {"success": True}


async def clear_faults(c: Control) -> Any:
    c.fake.faults.count, c.fake.faults.until = 0, 0.0
    return {"success": True}


async def stats(c: Control) -> Any:
    tokens = {
        token: {
            "requests": s.requests,
            "limited": s.limited,
            "peak_rps": s.peak_rps,
            "peak_attempted_rps": s.peak_attempted_rps,
        }
        for token, s in c.fake.stats.items()
    }
    return {"tokens": tokens}


def control_route(path: str, method: str, handler: ControlHandler) -> Route:
    """A control route: JSON body in (except raw file bytes), JSON out, errors as ``Error``."""

    async def endpoint(request: Request) -> Response:
        fake: FakeMax = request.app.state.fakemax
        try:
            body: Any = {}
            if method in ("POST", "PATCH") and handler is not add_file:
                raw = await request.body()
                body = msgspec.json.decode(raw) if raw.strip() else {}
                if not isinstance(body, dict):
                    raise bad_request("The body must be a JSON object")
            return json_response(await handler(Control(request, fake, body)))
        except msgspec.DecodeError:
            return json_response(error_body("proto.payload", "The body is not valid JSON"), 400)
        except ApiError as exc:
            return json_response(error_body(exc.code, exc.message), exc.status)

    endpoint.__name__ = f"control_{handler.__name__}"
    return Route("/_control" + path, endpoint, methods=[method])


ROUTES: list[Route] = [
    control_route("/health", "GET", health),
    control_route("/bots", "GET", list_bots),
    control_route("/bots", "POST", add_bot),
    control_route("/bots/{bot_id}/revoke", "POST", revoke),
    control_route("/users", "POST", add_user),
    control_route("/users/{user_id}/start", "POST", start_bot),
    control_route("/users/{user_id}/stop", "POST", stop_bot),
    control_route("/files", "POST", add_file),
    control_route("/files/{file_id}/delete", "POST", delete_file),
    control_route("/messages", "POST", send),
    control_route("/messages/{mid}", "PATCH", edit),
    control_route("/messages/{mid}", "DELETE", remove),
    control_route("/chats", "POST", add_chat),
    control_route("/chats/{chat_id}/bots", "POST", add_bot_to_chat),
    control_route("/chats/{chat_id}/bots/{bot_id}", "DELETE", remove_bot_from_chat),
    control_route("/chats/{chat_id}/members", "POST", add_member),
    control_route("/chats/{chat_id}/members/{user_id}", "DELETE", remove_member),
    control_route("/chats/{chat_id}/title", "POST", rename_chat),
    control_route("/callbacks", "POST", press),
    control_route("/chats/{chat_id}/messages", "GET", chat_messages),
    control_route("/updates", "GET", updates),
    control_route("/faults", "POST", set_faults),
    control_route("/faults", "DELETE", clear_faults),
    control_route("/stats", "GET", stats),
]
