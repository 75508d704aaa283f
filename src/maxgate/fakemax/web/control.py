"""The web fake's control API (``/_control/…``, no token): the ``WebFake`` control methods
over HTTP, for a test that runs the fake in another process (``python -m
maxgate.fakemax.web serve``). Errors are ``{"code", "message"}`` with 400 or 404, as in the
Bot API fake's control API (``maxgate/fakemax/control.py``)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from maxgate.fakemax.web.transfer import FAKE

if TYPE_CHECKING:
    from maxgate.fakemax.web.server import WebFake

Action = Callable[["WebFake", dict[str, Any], web.Request], Awaitable[Any]]


class ControlError(Exception):
    """A control request the fake refuses (400 or 404)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _route(action: Action) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        fake = request.app[FAKE]
        body: Any = {}
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return _error(400, "The body is not JSON")
        if not isinstance(body, dict):
            return _error(400, "The body must be a JSON object")
        try:
            result = await action(fake, body, request)
        except ControlError as exc:
            return _error(exc.status, exc.message)
        except (LookupError, ValueError) as exc:
            return _error(404 if isinstance(exc, LookupError) else 400, str(exc).strip("'\""))
        return web.json_response(result)

    return handler


def _error(status: int, message: str) -> web.Response:
    code = "not.found" if status == 404 else "bad.request"
    return web.json_response({"code": code, "message": message}, status=status)


def _field(body: dict[str, Any], name: str, kind: type, default: Any = ...) -> Any:
    value = body.get(name, default)
    if value is ...:
        raise ControlError(400, f"Field {name} is required")
    if value is not None and value is not default and not isinstance(value, kind):
        raise ControlError(400, f"Field {name} must be a {kind.__name__}, not {value!r}")
    return value


async def qr_links(fake: WebFake, body: dict[str, Any], request: web.Request) -> Any:
    return {"links": list(fake.shown_qr)}


async def scan(fake: WebFake, body: dict[str, Any], request: web.Request) -> Any:
    fake.scan_qr(_field(body, "link", str, None), account_id=_field(body, "account_id", int, None))
    return {"scanned": True}


async def password(fake: WebFake, body: dict[str, Any], request: web.Request) -> Any:
    fake.require_password(_field(body, "password", str, None), hint=_field(body, "hint", str, None))
    return {"password": body.get("password") is not None}


async def revoke(fake: WebFake, body: dict[str, Any], request: web.Request) -> Any:
    return {"revoked": await fake.revoke(_field(body, "token", str, None))}


async def disconnect(fake: WebFake, body: dict[str, Any], request: web.Request) -> Any:
    return {"closed": await fake.disconnect_all()}


async def users(fake: WebFake, body: dict[str, Any], request: web.Request) -> Any:
    person = fake.add_user(
        _field(body, "first_name", str),
        _field(body, "last_name", str, None),
        phone=_field(body, "phone", int, None),
    )
    return {"user_id": person.user_id, "phone": person.phone}


async def messages(fake: WebFake, body: dict[str, Any], request: web.Request) -> Any:
    files = []
    for item in _field(body, "files", list, []):
        if not isinstance(item, dict):
            raise ControlError(400, "Each of files must be an object")
        try:
            data = base64.b64decode(_field(item, "content_base64", str), validate=True)
        except binascii.Error as exc:
            raise ControlError(400, f"content_base64 is not base64: {exc}") from None
        files.append((_field(item, "kind", str, "file"), _field(item, "name", str, ""), data))
    message = await fake.user_sends(
        _field(body, "user_id", int),
        _field(body, "text", str, ""),
        files=files,
        from_account=bool(_field(body, "from_account", bool, False)),
    )
    ids = [f.file_id for f in message.files]
    return {"message_id": message.message_id, "chat_id": message.chat_id, "file_ids": ids}


def _path_int(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except ValueError:
        raise ControlError(400, f"{name} must be a number") from None


async def edit(fake: WebFake, body: dict[str, Any], request: web.Request) -> Any:
    chat_id, message_id = _path_int(request, "chat_id"), _path_int(request, "message_id")
    await fake.edit_message(chat_id, message_id, _field(body, "text", str))
    return {"edited": message_id}


async def delete_message(fake: WebFake, body: dict[str, Any], request: web.Request) -> Any:
    chat_id, message_id = _path_int(request, "chat_id"), _path_int(request, "message_id")
    await fake.delete_message(chat_id, message_id)
    return {"deleted": message_id}


async def read(fake: WebFake, body: dict[str, Any], request: web.Request) -> Any:
    mark = await fake.user_reads(_path_int(request, "user_id"), _field(body, "mark", int, None))
    return {"mark": mark}


async def faults(fake: WebFake, body: dict[str, Any], request: web.Request) -> Any:
    drops = _field(body, "drop_requests", dict, {})
    try:
        fake.faults.drop_requests.update({int(op): int(n) for op, n in drops.items()})
    except (TypeError, ValueError):
        raise ControlError(
            400, f"drop_requests must map opcodes to counts, not {drops!r}"
        ) from None
    fake.faults.drop_uploads += int(_field(body, "drop_uploads", int, 0))
    return {"drop_requests": fake.faults.drop_requests, "drop_uploads": fake.faults.drop_uploads}


async def expire(fake: WebFake, body: dict[str, Any], request: web.Request) -> Any:
    return {"expired": fake.expire_links(_field(body, "file_id", int, None))}


async def delete_file(fake: WebFake, body: dict[str, Any], request: web.Request) -> Any:
    try:
        file_id = int(request.match_info["file_id"])
        fake.delete_file(file_id)
    except (ValueError, KeyError):
        raise ControlError(404, f"No file {request.match_info['file_id']}") from None
    return {"deleted": file_id}


async def sent(fake: WebFake, body: dict[str, Any], request: web.Request) -> Any:
    chat_id = _path_int(request, "chat_id")
    return {
        "messages": [
            {"message_id": m.message_id, "text": m.text, "file_ids": [f.file_id for f in m.files]}
            for m in fake.sent_by_account(chat_id)
        ]
    }


ROUTES = [
    web.get("/_control/qr", _route(qr_links)),
    web.post("/_control/qr/scan", _route(scan)),
    web.post("/_control/account/password", _route(password)),
    web.post("/_control/sessions/revoke", _route(revoke)),
    web.post("/_control/disconnect", _route(disconnect)),
    web.post("/_control/users", _route(users)),
    web.post("/_control/messages", _route(messages)),
    web.post("/_control/chats/{chat_id}/messages/{message_id}/edit", _route(edit)),
    web.delete("/_control/chats/{chat_id}/messages/{message_id}", _route(delete_message)),
    web.post("/_control/users/{user_id}/read", _route(read)),
    web.post("/_control/faults", _route(faults)),
    web.post("/_control/files/expire", _route(expire)),
    web.delete("/_control/files/{file_id}", _route(delete_file)),
    web.get("/_control/chats/{chat_id}/sent", _route(sent)),
]
