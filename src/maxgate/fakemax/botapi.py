"""The bot's own routes: ``/me``, ``/updates`` (long polling), ``/subscriptions`` (webhooks),
``/uploads`` (upload URLs) and ``/videos/{videoToken}``."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

from starlette.routing import Route

from maxgate.fakemax.calls import Call, bot_route
from maxgate.fakemax.errors import ApiError, bad_request, not_found
from maxgate.fakemax.files import UPLOAD_TYPES
from maxgate.fakemax.world import Subscription, now_ms

SECRET = re.compile(r"^[a-zA-Z0-9_-]{5,256}$")


async def get_me(call: Call) -> Any:
    return call.render.bot_info(call.bot)


async def get_updates(call: Call) -> Any:
    limit = call.query_int("limit", default=100)
    timeout = call.query_int("timeout", default=30)
    marker = call.query_int("marker")
    if limit is None or not 1 <= limit <= 1000:
        raise bad_request(f"Parameter limit must be 1..1000, got {limit}")
    if timeout is None or not 0 <= timeout <= 90:
        raise bad_request(f"Parameter timeout must be 0..90, got {timeout}")
    listed = call.query_list("types")
    types = set(listed) if listed else None
    bot = call.bot
    wait = min(float(timeout), call.fake.config.max_poll_timeout)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    updates: list[dict[str, Any]]
    next_marker: int | None
    while True:
        if bot.subscriptions:  # webhooks and polling exclude each other: nothing to poll
            updates, next_marker = [], marker
        else:
            updates, next_marker = call.world.pending(bot, marker, limit, types)
        left = deadline - loop.time()
        if updates or left <= 0:
            return {"updates": updates, "marker": next_marker}
        arrived = bot.arrived
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived.wait(), left)
        if bot.revoked:
            return {"updates": [], "marker": next_marker}
        if marker is None:
            marker = next_marker  # all that arrives while we wait is new: hand it all out


async def get_subscriptions(call: Call) -> Any:
    subs = [
        {"url": s.url, "time": s.time, "update_types": s.update_types, "version": s.version}
        for s in call.bot.subscriptions
    ]
    return {"subscriptions": subs}


async def subscribe(call: Call) -> Any:
    body = call.body_object()
    url = body.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise bad_request(f"Field url must be an http(s):// URL, got {url!r}")
    if call.fake.config.webhook_require_https and not url.startswith("https://"):
        raise bad_request(f"Field url must start with https://, got {url!r}")
    secret = body.get("secret")
    if secret is not None and (not isinstance(secret, str) or not SECRET.match(secret)):
        raise bad_request("Field secret must match ^[a-zA-Z0-9_-]{5,256}$")
    types = body.get("update_types")
    if "update_types" in body and not (
        isinstance(types, list) and all(isinstance(t, str) for t in types)
    ):
        raise bad_request("Field update_types must be a list of strings")
    bot = call.bot
    for old in [s for s in bot.subscriptions if s.url == url]:
        call.fake.webhooks.forget(old)
        bot.subscriptions.remove(old)
    version = body.get("version")
    bot.subscriptions.append(
        Subscription(
            url, now_ms(), types or None, secret, version if isinstance(version, str) else None
        )
    )
    return {"success": True}


async def unsubscribe(call: Call) -> Any:
    url = call.query("url")
    if not url:
        raise bad_request("Parameter url is required")
    bot = call.bot
    gone = [s for s in bot.subscriptions if s.url == url]
    for sub in gone:
        call.fake.webhooks.forget(sub)
        bot.subscriptions.remove(sub)
    if not gone:
        return {"success": False, "message": f"No subscription for {url}"}
    return {"success": True}


async def get_upload_url(call: Call) -> Any:
    kind = call.query("type")
    if kind not in UPLOAD_TYPES:
        raise bad_request(f"Parameter type must be one of {', '.join(UPLOAD_TYPES)}, got {kind!r}")
    upload = call.fake.files.new_upload(kind)
    url = f"{call.render.base_url}/upload/{kind}/{upload.upload_id}"
    if upload.token_in_answer:
        return {"url": url, "token": upload.file.token}
    return {"url": url}


async def get_video(call: Call) -> Any:
    token = call.request.path_params["videoToken"]
    stored = call.fake.files.by_token.get(token)
    if stored is None or stored.kind != "video" or stored.deleted or not stored.complete:
        raise not_found(f"No video with token {token!r}")
    link = call.render.link(stored)
    urls = dict.fromkeys(("mp4_1080", "mp4_720", "mp4_480", "mp4_360", "mp4_240", "mp4_144"))
    urls.update(mp4_720=link, mp4_480=link, hls=None)
    return {
        "token": token,
        "urls": urls,
        "thumbnail": None,
        "width": 640,
        "height": 360,
        "duration": 1,
    }


async def get_chats(call: Call) -> Any:
    # Removed from the platform in June 2026 (dev.max.ru changelog): bots learn chats from
    # updates. The answer the real platform gives is not documented.
    raise ApiError(404, "not.found", "GET /chats is no longer supported (June 2026)")


async def answer_callback(call: Call) -> Any:
    callback_id = call.query("callback_id")
    if not callback_id or not callback_id.strip():
        raise bad_request("Parameter callback_id is required")
    if callback_id not in call.world.callbacks:
        raise not_found(f"No callback {callback_id!r}")
    answer = call.body_object()
    if isinstance(answer.get("message"), dict):  # the answer replaces the message's text
        mid = call.world.callbacks[callback_id]
        call.world.messages[mid].text = answer["message"].get("text")
    return {"success": True}


ROUTES: list[Route] = [
    bot_route("/me", "GET", get_me),
    bot_route("/updates", "GET", get_updates),
    bot_route("/subscriptions", "GET", get_subscriptions),
    bot_route("/subscriptions", "POST", subscribe),
    bot_route("/subscriptions", "DELETE", unsubscribe),
    bot_route("/uploads", "POST", get_upload_url),
    bot_route("/videos/{videoToken}", "GET", get_video),
    bot_route("/chats", "GET", get_chats),
    bot_route("/answers", "POST", answer_callback),
]
