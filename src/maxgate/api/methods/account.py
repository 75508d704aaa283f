"""Account: getStateInstance, getSettings, setSettings, getAccountSettings, checkAccount, logout,
qr, sendAuthorizationPassword."""

from __future__ import annotations

import base64
from typing import Any

from maxgate.api import schemas
from maxgate.api.errors import validation_failed
from maxgate.api.routing import Call, method
from maxgate.api.schemas import JsonBody
from maxgate.api.validation import Field, decode_json, validate
from maxgate.domain.instances import DELAY_RANGE, YES_NO_SETTINGS, Instances
from maxgate.domain.messenger import Upstream
from maxgate.domain.records import SECRET_SETTINGS, Instance
from maxgate.errors import OutboundBlocked, OutboundError, UpstreamError
from maxgate.net.urlguard import UrlGuard, refusal

SETTABLE = (
    Field("webhookUrl", required=False, allow_empty=True, max_length=2048),
    Field("webhookUrlToken", required=False, allow_empty=True, max_length=512),
    # maxgate's own: the key of the X-Maxgate-Signature HMAC over webhook bodies ("" = none).
    Field("webhookSecret", required=False, allow_empty=True, max_length=512),
    Field(
        "delaySendMessagesMilliseconds",
        int,
        required=False,
        minimum=DELAY_RANGE[0],
        maximum=DELAY_RANGE[1],
    ),
    *(Field(name, required=False, choices=("yes", "no")) for name in YES_NO_SETTINGS),
)
SETTABLE_NAMES = frozenset(f.name for f in SETTABLE)
CHECK_ACCOUNT = (Field("phoneNumber", int, minimum=1, maximum=999999999999999),)
SETTINGS_VIEW = schemas.obj(
    {"wid": schemas.STRING, "typeInstance": {"const": "v3"}},
    {f.name: schemas.field_schema(f) for f in SETTABLE},
)


TOKEN_MASK = "*" * 8


def settings_view(instance: Instance) -> dict[str, Any]:
    """The instance's settings object (the webhook token and secret are write-only: shown
    masked)."""
    view: dict[str, Any] = {"wid": instance.wid, "typeInstance": "v3", **instance.settings}
    for secret in SECRET_SETTINGS:
        if view.get(secret):
            view[secret] = TOKEN_MASK
    return view


def validated_settings(guard: UrlGuard, body: Any) -> dict[str, Any]:
    """Check a settings subset (setSettings, createInstance); unknown keys are ignored."""
    if not isinstance(body, dict):
        raise validation_failed("'value' must be of type object")
    known = {k: v for k, v in body.items() if k in SETTABLE_NAMES}
    if not known:
        raise validation_failed("'value' must have at least 1 keys")
    values = validate(known, SETTABLE, min_keys=1)
    for secret in SECRET_SETTINGS:
        if values.get(secret) == TOKEN_MASK:
            # A client writing back what getSettings showed keeps the real value.
            del values[secret]
    url = values.get("webhookUrl")
    if url:
        try:
            guard.check_url(url)
        except OutboundBlocked as exc:
            raise validation_failed(f"'webhookUrl' is not allowed: {refusal(exc)}") from None
        except OutboundError:
            raise validation_failed(
                f"'webhookUrl' with value '{url}' fails to match the required pattern"
            ) from None
    return values


@method("getStateInstance", "GET", answer=schemas.STATE)
async def get_state_instance(call: Call) -> dict[str, Any]:
    """The messenger connection state of the instance."""
    return {"stateInstance": call.instance.state}


@method("getSettings", "GET", answer=SETTINGS_VIEW)
async def get_settings(call: Call) -> dict[str, Any]:
    """The instance's settings."""
    return settings_view(call.instance)


@method("setSettings", "POST", body=JsonBody(SETTABLE, min_keys=1), answer=schemas.SAVED_SETTINGS)
async def set_settings(call: Call, *, instances: Instances, guard: UrlGuard) -> dict[str, Any]:
    """Change some settings; they apply at once (no restart delay)."""
    values = validated_settings(guard, decode_json(await call.body_bytes()))
    await instances.update_settings(call.instance.id, values)
    return {"saveSettings": True}


@method("getAccountSettings", "GET", answer=schemas.ACCOUNT_SETTINGS)
async def get_account_settings(call: Call) -> dict[str, Any]:
    """The account behind the instance: phone, chatId, avatar, state and deviceId."""
    instance = call.instance
    return {
        "phone": str(instance.phone),
        "chatId": instance.chat_id,
        "avatar": "",
        "stateInstance": instance.state,
        "deviceId": f"maxgate-{instance.upstream}-{instance.id}",
    }


@method(
    "checkAccount",
    "POST",
    needs_upstream=True,
    body=CHECK_ACCOUNT,
    answer=schemas.CHECKED_ACCOUNT,
)
async def check_account(call: Call, *, upstream: Upstream) -> dict[str, Any]:
    """Whether a phone number has an account, and its chatId."""
    body = await call.json(CHECK_ACCOUNT)
    chat_id = await upstream.resolve_phone(call.instance, body["phoneNumber"])
    return {"exist": chat_id is not None, "chatId": chat_id or ""}


@method("reboot", "GET", answer=schemas.obj({"isReboot": schemas.TRUE}))
async def reboot(call: Call, *, upstream: Upstream) -> dict[str, Any]:
    """Reconnect the account to the messenger (stateInstanceChanged: starting, then back)."""
    await upstream.reboot(call.instance)
    return {"isReboot": True}


@method("logout", "GET", answer=schemas.obj({"isLogout": schemas.TRUE}))
async def logout(call: Call, *, upstream: Upstream) -> dict[str, Any]:
    """Log the account out (notAuthorized until it logs in again by qr)."""
    await upstream.logout(call.instance)
    return {"isLogout": True}


QR = schemas.obj(
    {
        "type": {"type": "string", "enum": ["qrCode", "alreadyLogged"]},
        "message": {"type": "string", "description": "A base64 PNG, or why there is none."},
    }
)


@method("qr", "GET", answer=QR)
async def qr(call: Call, *, upstream: Upstream) -> dict[str, Any]:
    """A QR code (base64 PNG) to log the account in; in the sandbox, its phone scans it a
    moment later."""
    png = await upstream.qr(call.instance)
    if png is None:
        return {"type": "alreadyLogged", "message": "instance account already authorized"}
    return {"type": "qrCode", "message": base64.b64encode(png).decode()}


SEND_PASSWORD = (Field("password", required=False, allow_empty=True, max_length=256),)
PASSWORD_RESULT = schemas.obj(
    {
        "status": schemas.BOOLEAN,
        "data": schemas.obj(
            {"status": {"type": "string", "enum": ["success", "fail"]}},
            {
                "reason": {
                    "type": "string",
                    "enum": [
                        "already_registered",
                        "invalid_password",
                        "authorization_not_started",
                        "timeout",
                    ],
                }
            },
        ),
    }
)


def _password_failed(reason: str) -> dict[str, Any]:
    return {"status": True, "data": {"status": "fail", "reason": reason}}


@method("sendAuthorizationPassword", "POST", body=SEND_PASSWORD, answer=PASSWORD_RESULT)
async def send_authorization_password(call: Call, *, upstream: Upstream) -> dict[str, Any]:
    """Finish a QR login with the account's two-factor password (``qr`` first).

    ``data.status`` says whether the account is now authorised; ``data.reason`` why not:
    ``already_registered``, ``invalid_password``, ``authorization_not_started`` (no login is
    waiting for a password) or ``timeout`` (the messenger did not answer in time). Too many
    attempts are the rate limit's 429.
    """
    body = await call.json(SEND_PASSWORD, min_keys=0)
    if await upstream.state(call.instance) == "authorized":
        return _password_failed("already_registered")
    try:
        authorised = await upstream.send_password(call.instance, body.get("password", ""))
    except TimeoutError:
        return _password_failed("timeout")
    except UpstreamError:
        return _password_failed("authorization_not_started")
    return (
        {"status": True, "data": {"status": "success"}}
        if authorised
        else (_password_failed("invalid_password"))
    )
