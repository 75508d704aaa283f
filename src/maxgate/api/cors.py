"""CORS for the v3 and partner methods: the preflight answer and the header of every answer.

GREEN-API's servers answer ``OPTIONS`` with ``204 No Content`` (its common-errors page lists
it) and its JavaScript SDK calls the API from web pages, so maxgate does the same. Any origin
may call: the credentials are in the path, not in cookies or headers a browser would add, so
a page can do nothing with CORS that a script outside a browser could not. A preflight names
no credentials either, so it is answered without checking the instance or the token; the
browser's real request then gets its 401 or 403. An unknown method is still ``404 Not Found``
(the route is checked first, as for every verb).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.responses import Response
from starlette.types import Scope

__all__ = ["ALLOW_ORIGIN", "EXPOSE", "MAX_AGE", "preflight"]

ALLOW_ORIGIN = ("Access-Control-Allow-Origin", "*")
"""Sent with every answer of a method, so a page may read it."""
EXPOSE = ("Access-Control-Expose-Headers", "Retry-After")
"""Sent with error answers: ``Retry-After`` (429) is not a header a page may read unasked."""
MAX_AGE = 86400
"""Seconds a browser may reuse a preflight's answer (Chromium caps it at 7200)."""
_DEFAULT_HEADERS = "Content-Type"


def _requested_headers(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"access-control-request-headers":
            text = bytes(value).decode("latin-1").strip()
            return text or None
    return None


def preflight(verbs: Iterable[str], scope: Scope) -> Response:
    """``204`` for an ``OPTIONS`` request to a method served with ``verbs``.

    ``Access-Control-Allow-Methods`` (and ``Allow``) are those verbs and ``OPTIONS``;
    ``Access-Control-Allow-Headers`` echoes the request's ``Access-Control-Request-Headers``
    (``Content-Type`` when it names none), so ``GA-Filename`` and the like pass.
    """
    methods = ", ".join([*sorted(verbs), "OPTIONS"])
    headers = {
        ALLOW_ORIGIN[0]: ALLOW_ORIGIN[1],
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": _requested_headers(scope) or _DEFAULT_HEADERS,
        "Access-Control-Max-Age": str(MAX_AGE),
        "Allow": methods,
        "Vary": "Access-Control-Request-Headers",
    }
    return Response(status_code=204, headers=headers)
