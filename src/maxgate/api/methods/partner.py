"""Partner methods: createInstance, getInstances, deleteInstanceAccount (operator's token), and
maxgate's sandboxSendMessage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from maxgate.api import schemas
from maxgate.api.errors import bad_request
from maxgate.api.methods.account import SETTABLE, SETTABLE_NAMES, validated_settings
from maxgate.api.routing import Call, partner_method
from maxgate.api.schemas import JsonBody
from maxgate.api.validation import CHAT_ID, Field, decode_json, validate
from maxgate.domain.instances import Instances
from maxgate.domain.records import Instance
from maxgate.errors import ConfigError, UpstreamError
from maxgate.net.urlguard import UrlGuard
from maxgate.upstream.sandbox import Sandbox

DELETE = (Field("idInstance", int, minimum=1),)
NAME = (Field("name", required=False, allow_empty=True, max_length=200),)
# maxgate's own (GREEN-API documents no kind): the messenger behind the instance, and for a
# maxbot instance the bot's token (docs/max-bot.md).
KIND = (
    Field("upstream", required=False, max_length=20),
    Field("botToken", required=False, max_length=512),
)


@partner_method(
    "createInstance",
    "POST",
    body=JsonBody((*NAME, *KIND, *SETTABLE), min_keys=0),
    answer=schemas.CREATED_INSTANCE,
)
async def create_instance(
    call: Call, *, create_instance: Callable[..., Awaitable[tuple[Instance, str]]], guard: UrlGuard
) -> dict[str, Any]:
    """Create an instance, optionally named, of a kind (a maxbot one with its ``botToken``,
    checked at MAX first) and with initial settings."""
    body = decode_json(await call.body_bytes())
    named = validate(body, (*NAME, *KIND), min_keys=0)
    settings = validated_settings(guard, body) if set(body) & SETTABLE_NAMES else {}
    try:
        instance, token = await create_instance(
            name=named.get("name", ""),
            upstream=named.get("upstream"),
            bot_token=named.get("botToken"),
            settings=settings,
        )
    except (ConfigError, UpstreamError) as exc:
        raise bad_request(str(exc)) from None
    return {"idInstance": instance.id, "apiTokenInstance": token, "typeInstance": "v3"}


@partner_method("getInstances", "GET", answer=schemas.INSTANCES)
async def get_instances(call: Call, *, instances: Instances) -> list[dict[str, Any]]:
    """Every live instance."""
    return [
        {
            "idInstance": i.id,
            "name": i.name,
            "typeInstance": "v3",
            "timeCreated": int(i.created_at),
            "stateInstance": i.state,
            "chatId": i.chat_id,
            "deleted": False,
        }
        for i in await instances.list()
    ]


@partner_method("deleteInstanceAccount", "POST", body=DELETE, answer=schemas.DELETED_INSTANCE)
async def delete_instance_account(call: Call, *, instances: Instances) -> dict[str, Any]:
    """Delete an instance; ``false`` with a reason when there is no such live instance."""
    body = await call.json(DELETE)
    if await instances.delete(body["idInstance"]):
        return {"deleteInstanceAccount": True}
    return {"deleteInstanceAccount": False, "reason": "instance not found"}


SANDBOX_SEND = (
    Field("idInstance", int, minimum=1),
    Field("chatId", pattern=CHAT_ID),
    Field("message", max_length=20000),
    Field("senderName", required=False, allow_empty=True, max_length=200),
)


@partner_method(
    "sandboxSendMessage",
    "POST",
    body=SANDBOX_SEND,
    answer=schemas.obj({"idMessage": schemas.STRING}),
)
async def sandbox_send_message(
    call: Call, *, instances: Instances, sandbox: Sandbox
) -> dict[str, Any]:
    """maxgate's own: a simulated contact (``chatId``) of the sandbox messenger writes a text into
    an instance of kind ``sandbox`` — what ``maxgate sandbox send`` does, over HTTP (demos, load
    tests)."""
    body = await call.json(SANDBOX_SEND)
    target = await instances.get(body["idInstance"])
    if target is None or target.deleted:
        raise bad_request("instance not found")
    if target.upstream != "sandbox":
        raise bad_request("sandboxSendMessage needs the sandbox upstream")
    id_message = await sandbox.contact_send(
        target.id, body["chatId"], text=body["message"], sender_name=body.get("senderName", "")
    )
    return {"idMessage": id_message}
