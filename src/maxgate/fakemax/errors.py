"""The fake's one error: an ``ApiError`` raised anywhere becomes the Bot API's ``Error`` body
``{"code": …, "message": …}`` (schema ``components.schemas.Error``; ``code`` in every failure
since the November 2026 changelog), built by ``error_body`` alone.

The codes the real platform uses are known only from samples (``verify.token``,
``attachment.not.ready``, ``too.many.requests``); the others follow the same dotted style.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A Bot API call is answered with an error status and the ``Error`` shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_body(code: str, message: str) -> dict[str, Any]:
    """The body of every failure the fake answers."""
    return {"code": code, "message": message}


def bad_request(message: str) -> ApiError:
    """A malformed call: a missing or ill-typed parameter, a body that breaks the schema."""
    return ApiError(400, "proto.payload", message)


def not_found(message: str) -> ApiError:
    """A chat, message, video or file the bot cannot see."""
    return ApiError(404, "not.found", message)


def forbidden(message: str) -> ApiError:
    """The bot may not do this in this chat."""
    return ApiError(403, "access.denied", message)


INVALID_TOKEN = ("verify.token", "Invalid access_token")
NOT_READY = ("attachment.not.ready", "Key: errors.process.attachment.file.not.processed")
