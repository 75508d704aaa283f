"""The one error shape of the HTTP API, built by one function (spec §1.3).

``fault_error`` is the one place where an exception that no handler turned into an
``ApiError`` gets its answer: 400 for a body that never arrived whole, 507 for a full store,
500 (a bug) for anything else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from maxgate.errors import ApiError, StorageFull

# The vendor's shape is hapi/Boom's, whose `error` is Node's http.STATUS_CODES phrase. Pinned
# here, so the text does not change with the Python version (3.13 renamed 413, for one).
_PHRASES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    410: "Gone",
    413: "Payload Too Large",
    416: "Range Not Satisfiable",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    507: "Insufficient Storage",
}

log = logging.getLogger(__name__)


def phrase(status: int) -> str:
    """The reason phrase of a status code, as the vendor's server words it."""
    if status in _PHRASES:
        return _PHRASES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_body(status: int, message: str) -> dict[str, object]:
    """``{"statusCode", "error", "message"}`` — every non-200 answer has this shape."""
    return {"statusCode": status, "error": phrase(status), "message": message}


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
    return error_response(exc.status_code, phrase(exc.status_code), exc.headers)


def fault_error(exc: BaseException) -> ApiError:
    """The answer for an exception that no handler turned into an ``ApiError``.

    ``ClientDisconnect`` (the body ended in ``http.disconnect`` before it was whole) is 400
    ``Bad Request``: the client left, or the server could not read the body's framing —
    granian reports a malformed chunked body the same way — and whoever still listens gets
    the answer. ``StorageFull`` (a store's disk is full, raised where the store writes) is 507
    ``Insufficient Storage: the file store is full`` / ``… the database is full``: the client
    did nothing wrong and may retry later. Anything else is a bug: 500, whose details never go
    to the client.
    """
    if isinstance(exc, ClientDisconnect):
        return ApiError(400, "Bad Request")
    if isinstance(exc, StorageFull):
        return ApiError(507, f"Insufficient Storage: the {exc.store} is full")
    return ApiError(500, "Internal Server Error")


def fault_response(exc: BaseException) -> Response:
    """``fault_error`` as a response in the error shape."""
    fault = fault_error(exc)
    return error_response(fault.status, fault.message, fault.headers)


async def internal_error_handler(_request: Request, exc: Exception) -> Response:
    """A bug: 500 in our shape; the traceback goes to the log, never to the client. A full
    store: 507, a body that never arrived whole: 400 (``fault_response``)."""
    return fault_response(exc)


async def storage_full_handler(request: Request, exc: Exception) -> Response:
    """A full store: 507, logged as a warning (a condition of the machine, not a bug)."""
    log.warning("%s answered 507: %s", request.method, exc)  # not the path: it holds tokens
    return fault_response(exc)


def bad_request(message: str = "Bad Request") -> ApiError:
    """A 400 with the given message."""
    return ApiError(400, message)


def validation_failed(details: str) -> ApiError:
    """A 400 ``Validation failed. Details: …``."""
    return ApiError(400, f"Validation failed. Details: {details}")
