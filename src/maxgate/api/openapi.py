"""The OpenAPI 3.1 document of every served route, and the API reference page (``/docs``).

The document is generated from the app's routes: the v3 and partner routes expand into one
operation per method of ``METHODS`` / ``PARTNER_METHODS``, with the schema info each method
declares in its ``@method(...)`` (``maxgate.api.schemas``); every other route is described in
``SERVICE_ROUTES`` below. ``build_document`` also returns the problems it met — a method or a
route without its schema info — which a test requires to be none, so nothing is left out
silently. The page's scripts and styles are Swagger UI files installed with the package
(``static/``); nothing is loaded from a CDN.

Over 500 lines because ``SERVICE_ROUTES`` and the shared response schemas are data — the
descriptions of the service routes, written out — not logic; the generator itself is short.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from maxgate import __version__
from maxgate.api import schemas
from maxgate.api.errors import error_response
from maxgate.api.ratelimit import DEFAULT_RATES, FALLBACK_RATE
from maxgate.api.routing import METHODS, PARTNER_METHODS, MethodSpec, V3Route, partner_endpoint
from maxgate.api.schemas import Body, JsonBody, JsonSchema, MultipartBody, Param, obj

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "docs.js": "text/javascript",
}
UNPREFIXED_TAG = "Without the /v3 prefix"
DOCS = "docs/methods.md in the maxgate repository"
"""Where the methods are described in prose (a served page cannot link a relative path)."""
TAGS = {
    "Sending": "Messages and files out.",
    "Receiving": "Links to the files of messages, received or sent.",
    "Notifications": "Events in, by polling or by webhook (docs/webhooks.md in the maxgate "
    "repository), and their queue.",
    "Journals": "Messages sent and received.",
    "Account": "The instance's state and settings.",
    "Queues": "The outgoing queue.",
    "Partner": "Instance management with the operator's partner token.",
    "File links": "The signed links that downloadFile, journals and notifications carry.",
    "Service": "Probes, metrics and this reference.",
    UNPREFIXED_TAG: "The same v3 methods, also served without `/v3` (the vendor made it optional).",
}

ERROR: JsonSchema = {
    "type": "object",
    "description": "The one error shape of every non-200 answer.",
    "required": ["statusCode", "error", "message"],
    "properties": {
        "statusCode": {"type": "integer"},
        "error": {"type": "string", "description": "The status's reason phrase."},
        "message": {
            "type": "string",
            "description": f"GREEN-API's text for the error; {DOCS} lists them.",
        },
    },
    "additionalProperties": False,
}
_SECONDS = {"type": "integer", "minimum": 0}
# status → (component name, description, headers)
ERRORS: dict[int, tuple[str, str, dict[str, JsonSchema]]] = {
    400: (
        "BadRequest",
        "A bad body or query: `Validation failed. Details: …`, `Unexpected token … in JSON at "
        "position …`, `Bad Request`, `Instance is deleted`, `instance is starting or not "
        "authorized`, or the method's own texts.",
        {},
    ),
    401: ("Unauthorized", "Wrong token: `Unauthorized`.", {}),
    403: ("Forbidden", "Unknown instance, or a link whose signature or expiry fails.", {}),
    404: ("NotFound", "`Not Found`.", {}),
    410: ("Gone", "The messenger no longer has the file.", {}),
    413: (
        "PayloadTooLarge",
        "Over the size limit: `Payload Too Large` (JSON bodies) or `File exceeded max upload "
        "size. Size: <n>mb Limit: <m>mb` (files; checked while streaming).",
        {},
    ),
    416: ("RangeNotSatisfiable", "No requested byte range lies within the file.", {}),
    429: (
        "TooManyRequests",
        "Rate limit (per instance and method) or concurrent-download limit; retry after "
        "`Retry-After` seconds.",
        {"Retry-After": _SECONDS},
    ),
    500: ("InternalError", "`Internal Server Error`, or the method's documented 500.", {}),
    502: ("BadGateway", "The messenger upstream failed.", {}),
    503: ("ServiceUnavailable", "Not ready: the message names the part that failed.", {}),
}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/{ERRORS[s][0]}"} for s in statuses}


def _json(schema: JsonSchema, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _param(
    where: str,
    name: str,
    description: str,
    schema: JsonSchema,
    *,
    required: bool = False,
    example: str | None = None,
) -> dict[str, Any]:
    """A parameter object; path parameters are always required."""
    param = {
        "name": name,
        "in": where,
        "required": where == "path" or required,
        "description": description,
        "schema": schema,
    }
    if example is not None:
        param["example"] = example
    return param


def _docs_param(param: Param) -> dict[str, Any]:
    return _param(
        param.where, param.name, param.description, param.schema(), required=param.required
    )


ID_INSTANCE = _param(
    "path",
    "idInstance",
    "The instance's 10-digit id (MAX instances start with 31).",
    {"type": "string", "pattern": "^[0-9]{10}$"},
    example="3100000001",
)
API_TOKEN = _param(
    "path",
    "apiTokenInstance",
    "The instance's token: 50 lowercase hex characters, issued once at creation.",
    {"type": "string"},
)
PARTNER_TOKEN = _param("path", "partnerToken", "The operator's partner token.", {"type": "string"})

# Every route other than the v3 and partner methods, by its Starlette path. HEAD is implied by
# GET (Starlette answers it) and documented only where it is meant to be used.
SERVICE_ROUTES: dict[str, dict[str, dict[str, Any]]] = {
    "/": {
        "get": {
            "operationId": "home",
            "tags": ["Service"],
            "summary": "What this server is",
            "description": "A small HTML page for a browser: the version, where instance "
            "calls go, and links to this reference, the document and the probes.",
            "responses": {
                "200": {
                    "description": "An HTML page.",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/files/{instance}/{file_id}/{name:path}": {
        verb: {
            "operationId": f"{verb}FileLink",
            "tags": ["File links"],
            "summary": "A file, through its signed link"
            + (" (headers only)" if verb == "head" else ""),
            "description": "No instance token: the link is signed for this one file and "
            "expires with the file's retention. Evicted bytes are fetched from the messenger "
            "again first. Range (single and multiple), If-Range and If-None-Match (the ETag "
            "is the SHA-256) are honoured; not counted against the method rate limits, but "
            "bounded in concurrent downloads per client address and per instance.",
            "parameters": [
                _param("path", "instance", "The instance's id.", {"type": "integer"}),
                _param("path", "file_id", "The file's id.", {"type": "string"}),
                _param("path", "name", "The file's name (any value).", {"type": "string"}),
                _param("query", "exp", "Expiry, Unix seconds.", {"type": "integer"}, required=True),
                _param("query", "sig", "The link's signature.", {"type": "string"}, required=True),
                _param("header", "Range", "Byte ranges (RFC 9110).", {"type": "string"}),
                _param("header", "If-Range", "An ETag or a date.", {"type": "string"}),
                _param("header", "If-None-Match", "ETags already held.", {"type": "string"}),
            ],
            "responses": {
                "200": {
                    "description": "The file (headers only for HEAD).",
                    "content": {"*/*": {"schema": {"contentMediaType": "*/*"}}},
                },
                "206": {
                    "description": "The requested byte range(s).",
                    "content": {"*/*": {"schema": {"contentMediaType": "*/*"}}},
                },
                "304": {"description": "Not modified (If-None-Match)."},
                **_errors(403, 404, 410, 416, 429, 502),
            },
        }
        for verb in ("get", "head")
    },
    "/maxbot/webhook/{instance}": {
        "post": {
            "operationId": "maxbotWebhook",
            "tags": ["Service"],
            "summary": "MAX delivers a bot's update (webhook mode)",
            "description": "For MAX, not for clients: maxgate subscribes this URL for each "
            "maxbot instance when `maxbot_updates` is webhook (or auto with an HTTPS "
            "`public_url`). The update is journaled before the 200.",
            "parameters": [
                _param("path", "instance", "The instance's id.", {"type": "integer"}),
                _param(
                    "header",
                    "X-Max-Bot-Api-Secret",
                    "The secret maxgate gave MAX when subscribing.",
                    {"type": "string"},
                    required=True,
                ),
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "responses": {
                "200": _json(obj({"ok": {"const": True}})),
                **_errors(400, 403, 413),
            },
        }
    },
    "/health": {
        "get": {
            "operationId": "health",
            "tags": ["Service"],
            "summary": "Liveness",
            "description": "The process answers; nothing else is checked.",
            "responses": {
                "200": _json(obj({"status": {"const": "ok"}, "version": schemas.STRING}))
            },
        }
    },
    "/ready": {
        "get": {
            "operationId": "ready",
            "tags": ["Service"],
            "summary": "Readiness",
            "description": "200 when the database answers `SELECT 1` and the blob store is "
            "reachable, each within 2 seconds; 503 naming which failed otherwise.",
            "responses": {
                "200": _json(
                    obj(
                        {
                            "status": {"const": "ready"},
                            "database": {"const": "ok"},
                            "blobs": {"const": "ok"},
                        }
                    )
                ),
                **_errors(503),
            },
        }
    },
    "/metrics": {
        "get": {
            "operationId": "metrics",
            "tags": ["Service"],
            "summary": "Prometheus metrics",
            "description": "The Prometheus text format: requests and latency by method, link "
            "bytes, upstream errors, files by state, queue depths. Open unless the setting "
            "`metrics_token` is set; then it needs `Authorization: Bearer <metrics_token>`.",
            "security": [{}, {"metricsToken": []}],
            "responses": {
                "200": {
                    "description": "The metrics.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **_errors(401),
            },
        }
    },
    "/openapi.json": {
        "get": {
            "operationId": "openapi",
            "tags": ["Service"],
            "summary": "This OpenAPI document",
            "responses": {"200": _json({"type": "object"}, "The OpenAPI 3.1 document.")},
        }
    },
    "/docs": {
        "get": {
            "operationId": "docs",
            "tags": ["Service"],
            "summary": "The API reference page",
            "responses": {
                "200": {
                    "description": "An HTML page (Swagger UI).",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/docs/assets/{name}": {
        "get": {
            "operationId": "docsAsset",
            "tags": ["Service"],
            "summary": "A script or style sheet of the reference page",
            "parameters": [
                _param("path", "name", "The asset.", {"type": "string", "enum": sorted(ASSETS)})
            ],
            "responses": {
                "200": {
                    "description": "The asset.",
                    "content": {
                        "text/javascript": {"schema": {"type": "string"}},
                        "text/css": {"schema": {"type": "string"}},
                    },
                },
                **_errors(404),
            },
        }
    },
}


def openapi_path(route_path: str) -> str:
    """A Starlette path as an OpenAPI path (``{name:path}`` → ``{name}``)."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", route_path)


def method_path(spec: MethodSpec, prefix: str = "/v3") -> str:
    """The OpenAPI path of a v3 or partner method."""
    if spec.partner:
        return f"/partner/{spec.name}/{{partnerToken}}"
    path = f"{prefix}/waInstance{{idInstance}}/{spec.name}/{{apiTokenInstance}}"
    if spec.takes_extra:
        path += "/{" + (spec.extra.name if spec.extra is not None else "extra") + "}"
    return path


def build_document(
    routes: Sequence[BaseRoute], *, server_url: str = "/"
) -> tuple[dict[str, Any], list[str]]:
    """The OpenAPI document of ``routes``, and the problems met (empty when all is described)."""
    paths: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for route in routes:
        if not isinstance(route, Route):
            problems.append(f"{route!r} is not a Route: the generator cannot describe it")
        elif isinstance(route, V3Route):
            for prefix in V3Route.PREFIXES:
                for spec in METHODS.values():
                    paths[method_path(spec, prefix)] = _method_item(spec, prefix, problems)
        elif route.endpoint is partner_endpoint:
            for spec in PARTNER_METHODS.values():
                paths[method_path(spec)] = _method_item(spec, "", problems)
        else:
            paths[openapi_path(route.path)] = _service_item(route, problems)
    tags = {tag for item in paths.values() for op in item.values() for tag in op["tags"]}
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "maxgate",
            "version": __version__,
            "summary": "A self-hosted GREEN-API v3 gateway for the MAX messenger.",
            "description": "Auth is the pair `idInstance` + `apiTokenInstance` in the path "
            "(no header). Method names match case-insensitively. Every non-200 answer is "
            "JSON `{statusCode, error, message}`; the checking order is route → verb → "
            "instance (403) → token (401) → rate limit (429) → body (400) → work. Every "
            "method also answers `OPTIONS` (a CORS preflight) with 204, without checking the "
            f"token, and every answer of a method allows any origin. More in {DOCS}.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": server_url}],
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()]
        + [{"name": name} for name in sorted(tags - TAGS.keys())],
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "responses": {
                name: {
                    "description": text,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                    **(
                        {"headers": {h: {"schema": s} for h, s in headers.items()}}
                        if headers
                        else {}
                    ),
                }
                for name, text, headers in ERRORS.values()
            },
            "securitySchemes": {"metricsToken": {"type": "http", "scheme": "bearer"}},
        },
    }
    return document, list(dict.fromkeys(problems))  # each form of a method finds the same


def _service_item(route: Route, problems: list[str]) -> dict[str, Any]:
    item = SERVICE_ROUTES.get(route.path)
    if item is None:
        problems.append(f"route {route.path} is not described: add it to SERVICE_ROUTES")
        return {}
    served = {verb.lower() for verb in route.methods or ()}
    if "get" in served and "head" not in item:
        served.discard("head")  # Starlette answers HEAD for every GET route
    if served != set(item):
        problems.append(f"route {route.path} serves {sorted(served)} but documents {sorted(item)}")
    return item


def _method_item(spec: MethodSpec, prefix: str, problems: list[str]) -> dict[str, Any]:
    where = f"{'partner ' if spec.partner else ''}method {spec.name}"
    doc = (spec.handler.__doc__ or "").strip()
    if not doc:
        problems.append(f"{where} has no docstring (its summary)")
    if spec.answer is None:
        problems.append(f"{where} has no answer schema: pass answer=… to its decorator")
    if spec.body is None and spec.verbs & {"POST", "PUT", "PATCH"}:
        problems.append(f"{where} takes a body but declares none: pass body=… to its decorator")
    if spec.takes_extra and spec.extra is None:
        problems.append(f"{where} takes an {{extra}} segment: name it with extra=Param(…)")
    # The docstring's first sentence is the summary, the rest the description (RST → Markdown).
    summary, _, rest = " ".join(doc.replace("``", "`").split()).partition(". ")
    notes = [rest] if rest else []
    if spec.needs_upstream:
        notes.append(
            "Needs the messenger connection (400 `instance is starting or not authorized`)."
        )
    if not spec.partner:
        rate = DEFAULT_RATES.get(spec.name.lower(), FALLBACK_RATE)
        notes.append(f"Default rate limit: {rate} per second per instance.")
    parameters = [PARTNER_TOKEN] if spec.partner else [ID_INSTANCE, API_TOKEN]
    if spec.extra is not None:
        parameters.append(
            _param("path", spec.extra.name, spec.extra.description, spec.extra.schema())
        )
    parameters += [_docs_param(p) for p in spec.query]
    responses = {"200": _json(spec.answer if spec.answer is not None else {})}
    if spec.partner:
        responses.update(_errors(*([400] if spec.body else []), 401, 500))
    else:
        statuses = [400, 401, 403, *([413] if spec.body else []), 429, 500]
        responses.update(_errors(*statuses, *([502] if spec.needs_upstream else [])))
    operation: dict[str, Any] = {
        "operationId": spec.name if prefix or spec.partner else spec.name + "WithoutV3Prefix",
        "tags": [_tag(spec) if prefix or spec.partner else UNPREFIXED_TAG],
        "summary": summary.removesuffix(".") or spec.name,
        "parameters": parameters,
        "responses": responses,
    }
    if notes:
        operation["description"] = " ".join(notes)
    if spec.body is not None:
        body, headers = _request_body(spec.body)
        operation["requestBody"] = body
        parameters += headers
    return {verb.lower(): operation for verb in sorted(spec.verbs)}


def _tag(spec: MethodSpec) -> str:
    if spec.partner:
        return "Partner"
    return spec.handler.__module__.rsplit(".", 1)[-1].capitalize()


def _request_body(body: Body) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The requestBody object of a method's body, and the header parameters it comes with."""
    if isinstance(body, JsonBody):
        schema = body.schema()
        return {
            "required": bool(schema.get("required") or schema.get("minProperties")),
            "description": "A JSON object (also accepted double-encoded, as a JSON string "
            "holding the object); unknown keys are ignored.",
            "content": {"application/json": {"schema": schema}},
        }, []
    if isinstance(body, MultipartBody):
        return {
            "required": True,
            "content": {"multipart/form-data": {"schema": body.schema()}},
        }, []
    return {
        "required": True,
        "description": body.description,
        "content": {"*/*": {"schema": {"contentMediaType": "*/*"}}},
    }, [_docs_param(p) for p in body.headers]


def _document_json(request: Request) -> bytes:
    """The document of this app, built on first use (the routes and registries are fixed)."""
    cached: bytes | None = getattr(request.app.state, "openapi", None)
    if cached is None:
        document, problems = build_document(
            request.app.routes, server_url=request.app.state.runtime.settings.base_url
        )
        for problem in problems:
            log.warning("OpenAPI document: %s", problem)
        cached = msgspec.json.encode(document)
        request.app.state.openapi = cached
    return cached


async def openapi_endpoint(request: Request) -> Response:
    """``GET /openapi.json``."""
    return Response(_document_json(request), media_type="application/json")


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>maxgate API reference</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script src="docs/assets/docs.js"></script>
</body>
</html>
"""
# Swagger UI styles elements inline; its "try it out" calls the gateway (any origin the
# operator configured as public_url).
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src *; frame-ancestors 'none'"
)


async def docs_page(_request: Request) -> Response:
    """``GET /docs``: Swagger UI on ``openapi.json``, from the package's own files."""
    return HTMLResponse(PAGE, headers={"content-security-policy": PAGE_CSP})


async def docs_asset(request: Request) -> Response:
    """``GET /docs/assets/{name}``: a script or style sheet of the page."""
    name = str(request.path_params["name"])
    media_type = ASSETS.get(name)
    if media_type is None:
        return error_response(404, "Not Found")
    return FileResponse(
        STATIC / name, media_type=media_type, headers={"cache-control": "public, max-age=86400"}
    )
