"""The one error shape of the HTTP API, built by one function (spec §1.3)."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from maxgate.errors import ApiError


def error_body(status: int, message: str) -> dict[str, object]:
    """``{"statusCode", "error", "message"}`` — every non-200 answer has this shape."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"statusCode": status, "error": phrase, "message": message}


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response carrying the error shape."""
    return Response(
        msgspec.json.encode(error_body(status, message)),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


async def api_error_handler(_request: Request, exc: Exception) -> Response:
    """Starlette exception handler for ApiError."""
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def http_exception_handler(_request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 etc. in our shape, with the standard phrase as message."""
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, HTTPStatus(exc.status_code).phrase, exc.headers)


async def internal_error_handler(_request: Request, _exc: Exception) -> Response:
    """A bug: 500 in our shape; the traceback goes to the log, never to the client."""
    return error_response(500, "Internal Server Error")


def bad_request(message: str = "Bad Request") -> ApiError:
    """A 400 with the given message."""
    return ApiError(400, message)


def validation_failed(details: str) -> ApiError:
    """A 400 ``Validation failed. Details: …``."""
    return ApiError(400, f"Validation failed. Details: {details}")
