"""Partner methods: createInstance, getInstances, deleteInstanceAccount (operator's token)."""

from __future__ import annotations

from typing import Any

from maxgate.api.methods.account import SETTABLE_NAMES, validated_settings
from maxgate.api.routing import Call, partner_method
from maxgate.api.validation import Field, decode_json, validate

DELETE = (Field("idInstance", int, minimum=1),)
NAME = (Field("name", required=False, allow_empty=True, max_length=200),)


@partner_method("createInstance", "POST")
async def create_instance(call: Call) -> dict[str, Any]:
    """Create an instance, optionally named and with initial settings."""
    body = decode_json(await call.body_bytes())
    named = validate(body, NAME, min_keys=0)
    settings = validated_settings(call, body) if set(body) & SETTABLE_NAMES else {}
    instance, token = await call.runtime.instances.create(
        name=named.get("name", ""), settings=settings
    )
    return {"idInstance": instance.id, "apiTokenInstance": token, "typeInstance": "v3"}


@partner_method("getInstances", "GET")
async def get_instances(call: Call) -> list[dict[str, Any]]:
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
        for i in await call.runtime.instances.list()
    ]


@partner_method("deleteInstanceAccount", "POST")
async def delete_instance_account(call: Call) -> dict[str, Any]:
    """Delete an instance; ``false`` with a reason when there is no such live instance."""
    body = await call.json(DELETE)
    if await call.runtime.instances.delete(body["idInstance"]):
        return {"deleteInstanceAccount": True}
    return {"deleteInstanceAccount": False, "reason": "instance not found"}
