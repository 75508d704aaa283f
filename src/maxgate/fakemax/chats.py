"""``/chats/{chatId}`` and its members, admins, actions and pin routes."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from maxgate.fakemax.calls import Call, bot_route
from maxgate.fakemax.errors import bad_request, forbidden
from maxgate.fakemax.messages import visible_chat, visible_message
from maxgate.fakemax.world import Chat, now_ms

ACTIONS = ("typing_on", "sending_photo", "sending_video", "sending_audio", "sending_file")


def _chat(call: Call) -> Chat:
    return visible_chat(call, call.path_int("chatId"))


def _admin_chat(call: Call) -> Chat:
    chat = _chat(call)
    if call.bot.user_id not in chat.admins:
        raise forbidden(f"The bot is not an administrator of chat {chat.chat_id}")
    return chat


async def get_chat(call: Call) -> Any:
    return call.render.chat(_chat(call), call.bot)


async def edit_chat(call: Call) -> Any:
    chat = _admin_chat(call)
    body = call.body_object()
    title = body.get("title")
    if title is not None:
        if not isinstance(title, str) or not 1 <= len(title) <= 200:
            raise bad_request("Field title must be 1..200 characters")
        chat.title = title
    return call.render.chat(chat, call.bot)


async def delete_chat(call: Call) -> Any:
    chat = _admin_chat(call)
    chat.status = "removed"
    return {"success": True}


async def send_action(call: Call) -> Any:
    _chat(call)
    action = call.body_object().get("action")
    if action not in ACTIONS:
        raise bad_request(f"Field action must be one of {', '.join(ACTIONS)}, got {action!r}")
    return {"success": True}


async def get_pin(call: Call) -> Any:
    chat = _chat(call)
    pinned = call.world.messages.get(chat.pinned) if chat.pinned else None
    return {"message": call.render.message(pinned) if pinned else None}


async def pin(call: Call) -> Any:
    chat = _chat(call)
    mid = call.body_object().get("message_id")
    chat.pinned = visible_message(call, mid if isinstance(mid, str) else None).mid
    return {"success": True}


async def unpin(call: Call) -> Any:
    _chat(call).pinned = None
    return {"success": True}


async def get_membership(call: Call) -> Any:
    return call.render.member(_chat(call), call.bot.user_id)


async def leave_chat(call: Call) -> Any:
    chat = _chat(call)
    chat.members.pop(call.bot.user_id, None)
    chat.admins.discard(call.bot.user_id)
    return {"success": True}


async def get_admins(call: Call) -> Any:
    chat = _admin_chat(call)
    admins = [m for m in chat.members if m in chat.admins or m == chat.owner_id]
    return {"members": [call.render.member(chat, m) for m in admins], "marker": None}


async def add_admins(call: Call) -> Any:
    chat = _admin_chat(call)
    admins = call.body_object().get("admins")
    if not isinstance(admins, list):
        raise bad_request("Field admins must be a list of ChatAdmin")
    for admin in admins:
        user_id = admin.get("user_id") if isinstance(admin, dict) else None
        if user_id not in chat.members:
            raise bad_request(f"User {user_id!r} is not a member of chat {chat.chat_id}")
        chat.admins.add(user_id)
    return {"success": True}


async def remove_admin(call: Call) -> Any:
    chat = _admin_chat(call)
    chat.admins.discard(call.path_int("userId"))
    return {"success": True}


async def get_members(call: Call) -> Any:
    chat = _chat(call)
    count = call.query_int("count", default=20)
    if count is None or not 1 <= count <= 100:
        raise bad_request(f"Parameter count must be 1..100, got {count}")
    wanted = call.query_list("user_ids")
    if wanted is not None:
        ids = [int(u) for u in wanted if u.lstrip("-").isdigit() and int(u) in chat.members]
        return {"members": [call.render.member(chat, u) for u in ids], "marker": None}
    everyone = sorted(chat.members)
    start = call.query_int("marker", default=0) or 0
    page = everyone[start : start + count]
    marker = start + count if start + count < len(everyone) else None
    return {"members": [call.render.member(chat, u) for u in page], "marker": marker}


async def add_members(call: Call) -> Any:
    chat = _admin_chat(call)
    ids = call.body_object().get("user_ids")
    if not isinstance(ids, list):
        raise bad_request("Field user_ids must be a list of user ids")
    failed = [u for u in ids if u not in call.world.people]
    for user_id in ids:
        if user_id in call.world.people:
            chat.members.setdefault(user_id, now_ms())
    if failed:
        details = [{"error_code": "user.not.found", "user_ids": failed}]
        return {"success": False, "failed_user_ids": failed, "failed_user_details": details}
    return {"success": True, "failed_user_ids": None, "failed_user_details": None}


async def remove_member(call: Call) -> Any:
    chat = _admin_chat(call)
    user_id = call.query_int("user_id")
    if user_id is None:
        raise bad_request("Parameter user_id is required")
    chat.members.pop(user_id, None)
    chat.admins.discard(user_id)
    return {"success": True}


ROUTES: list[Route] = [
    bot_route("/chats/{chatId}", "GET", get_chat),
    bot_route("/chats/{chatId}", "PATCH", edit_chat),
    bot_route("/chats/{chatId}", "DELETE", delete_chat),
    bot_route("/chats/{chatId}/actions", "POST", send_action),
    bot_route("/chats/{chatId}/pin", "GET", get_pin),
    bot_route("/chats/{chatId}/pin", "PUT", pin),
    bot_route("/chats/{chatId}/pin", "DELETE", unpin),
    bot_route("/chats/{chatId}/members/me", "GET", get_membership),
    bot_route("/chats/{chatId}/members/me", "DELETE", leave_chat),
    bot_route("/chats/{chatId}/members/admins", "GET", get_admins),
    bot_route("/chats/{chatId}/members/admins", "POST", add_admins),
    bot_route("/chats/{chatId}/members/admins/{userId}", "DELETE", remove_admin),
    bot_route("/chats/{chatId}/members", "GET", get_members),
    bot_route("/chats/{chatId}/members", "POST", add_members),
    bot_route("/chats/{chatId}/members", "DELETE", remove_member),
]
