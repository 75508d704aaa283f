"""v3 routing: method registry, path parsing and the checking order of every call.

Checking order: route → verb → instance (403) → token (401) → rate limit (429) → body (400) →
work. Methods register themselves with ``@method(...)`` in ``maxgate.api.methods.*``. ``OPTIONS``
on a known method is a CORS preflight, answered right after the route check
(``maxgate.api.cors``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from maxgate.api.cors import ALLOW_ORIGIN, EXPOSE, preflight
from maxgate.api.errors import error_response, fault_error
from maxgate.api.ratelimit import RateLimiter
from maxgate.api.schemas import Body, JsonSchema, Param, as_body
from maxgate.api.services import NAMES as SERVICE_NAMES
from maxgate.api.services import Services
from maxgate.api.validation import Field, decode_json, validate
from maxgate.domain.messenger import MESSENGER_METHODS, require_method
from maxgate.domain.records import Instance
from maxgate.errors import ApiError, StorageFull

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Any]]  # (call, *, <the services it takes>)


@dataclasses.dataclass(frozen=True, slots=True)
class MethodSpec:
    """A v3 method: its canonical name, verbs and handler, and its schema info (``schemas``)."""

    name: str
    verbs: frozenset[str]
    handler: Handler
    takes_extra: bool = False
    needs_upstream: bool = False
    partner: bool = False
    body: Body | None = None
    query: tuple[Param, ...] = ()
    extra: Param | None = None
    answer: JsonSchema | None = None
    uses: tuple[str, ...] = ()  # the services the handler takes (keyword-only parameters)
    messenger: bool = False  # needs the messenger: refused for a kind that cannot do it


METHODS: dict[str, MethodSpec] = {}
PARTNER_METHODS: dict[str, MethodSpec] = {}


def method(
    name: str,
    verb: str,
    *,
    takes_extra: bool = False,
    needs_upstream: bool = False,
    body: Sequence[Field] | Body | None = None,
    query: Sequence[Param] = (),
    extra: Param | None = None,
    answer: JsonSchema | None = None,
) -> Callable[[Handler], Handler]:
    """Register a v3 instance method (matched case-insensitively).

    ``body``, ``query``, ``extra`` (the ``{extra}`` segment) and ``answer`` (the 200 body) are
    its schema info for the OpenAPI document; the handler's docstring is its summary.
    """

    def register(handler: Handler) -> Handler:
        METHODS[name.lower()] = MethodSpec(
            name,
            frozenset({verb}),
            handler,
            takes_extra,
            needs_upstream,
            body=as_body(body),
            query=tuple(query),
            extra=extra,
            answer=answer,
            uses=uses_of(handler),
            messenger=name in MESSENGER_METHODS,
        )
        return handler

    return register


def partner_method(
    name: str,
    verb: str,
    *,
    body: Sequence[Field] | Body | None = None,
    answer: JsonSchema | None = None,
) -> Callable[[Handler], Handler]:
    """Register a partner method (``/partner/{method}/{partnerToken}``), with schema info."""

    def register(handler: Handler) -> Handler:
        PARTNER_METHODS[name.lower()] = MethodSpec(
            name,
            frozenset({verb}),
            handler,
            partner=True,
            body=as_body(body),
            answer=answer,
            uses=uses_of(handler),
        )
        return handler

    return register


def uses_of(handler: Handler) -> tuple[str, ...]:
    """The services a handler takes: its keyword-only parameters, each a field of
    ``Services``. A name that is none is refused when the method registers."""
    names = tuple(
        name
        for name, parameter in inspect.signature(handler).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    )
    unknown = set(names) - SERVICE_NAMES
    if unknown:
        raise TypeError(f"{handler.__qualname__} takes {sorted(unknown)}: no such service")
    return names


def handing(spec: MethodSpec, services: Services) -> dict[str, Any]:
    """The services ``spec``'s handler takes, by name (made once per set of names: the
    services of an app never change)."""
    handed = services.handed.get(spec.uses)
    if handed is None:
        handed = services.handed[spec.uses] = {name: getattr(services, name) for name in spec.uses}
    return handed


class Call:
    """One authenticated call of a method: the raw ASGI request and the instance. What the
    handler uses besides comes as its keyword-only parameters (``maxgate.api.services``).

    ``request`` (a Starlette ``Request``) is built only for the handlers that ask for headers,
    query parameters or a streamed body; JSON bodies are read from ``receive`` directly.
    """

    __slots__ = ("_request", "body_limit", "extra", "instance", "receive", "scope")

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        instance: Instance,
        extra: str | None = None,
        *,
        body_limit: int,
    ) -> None:
        self.scope = scope
        self.receive = receive
        self.instance = instance
        self.extra = extra
        self.body_limit = body_limit  # the JSON body limit (max_json_body)
        self._request: Request | None = None

    @property
    def request(self) -> Request:
        """The request as Starlette sees it (headers, query parameters, ``stream()``)."""
        if self._request is None:
            self._request = Request(self.scope, self.receive)
        return self._request

    async def body_bytes(self) -> bytes:
        """The raw body, refusing more than the JSON body limit while reading it."""
        limit = self.body_limit
        declared = _header(self.scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, "Payload Too Large")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "Payload Too Large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def json(self, fields: Sequence[Field], *, min_keys: int | None = None) -> dict[str, Any]:
        """The body decoded and checked against ``fields`` (GREEN-API's messages)."""
        return validate(decode_json(await self.body_bytes()), fields, min_keys=min_keys)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def json_response(data: Any) -> Response:
    """A 200 JSON answer (``None`` becomes the literal ``null``: an empty queue)."""
    return Response(msgspec.json.encode(data), media_type="application/json")


def _find(table: dict[str, MethodSpec], request: Request) -> MethodSpec:
    spec = table.get(str(request.path_params["method"]).lower())
    if spec is None or ("extra" in request.path_params and not spec.takes_extra):
        raise ApiError(404, "Not Found")
    if request.method not in spec.verbs and request.method != "OPTIONS":
        raise ApiError(405, "Method Not Allowed", headers={"Allow": ", ".join(sorted(spec.verbs))})
    return spec


_CORS_ERROR_HEADERS = dict([ALLOW_ORIGIN, EXPOSE])


def cors_error(exc: ApiError) -> Response:
    """The error answer of a method, with the CORS headers that let a page read it."""
    return error_response(exc.status, exc.message, {**_CORS_ERROR_HEADERS, **exc.headers})


async def v3_call(scope: Scope, receive: Receive, params: dict[str, str]) -> Any:
    """Check a v3 request in the checking order and run its method.

    ``params`` are the route's path parameters (``id_instance``, ``method``, ``token`` and
    maybe ``extra``). Returns the handler's result, or a ``Response``: the preflight's for
    ``OPTIONS``, an error for an ``ApiError``.
    """
    spec = METHODS.get(params["method"].lower())
    extra = params.get("extra")
    try:
        if spec is None or (extra is not None and not spec.takes_extra):
            raise ApiError(404, "Not Found")
        verb = scope["method"]
        if verb not in spec.verbs:
            if verb == "OPTIONS":
                return preflight(spec.verbs, scope)  # no credentials to check in a preflight
            allow = ", ".join(sorted(spec.verbs))
            raise ApiError(405, "Method Not Allowed", headers={"Allow": allow})
        raw_id = params["id_instance"]
        if not (raw_id.isdigit() and len(raw_id) == 10):
            raise ApiError(403, "Forbidden")
        state = scope["app"].state
        services: Services = state.services
        instance, token_ok = await services.instances.authenticate(int(raw_id), params["token"])
        if instance is None:
            raise ApiError(403, "Forbidden")
        if not token_ok:
            raise ApiError(401, "Unauthorized")
        if instance.deleted:
            raise ApiError(400, "Instance is deleted")
        limiter: RateLimiter | None = state.limiter
        if limiter is not None:
            await limiter.check(instance.id, spec.name.lower())
        if spec.messenger:
            capabilities = services.upstreams.capabilities_of(instance.upstream)
            require_method(instance.upstream, capabilities, spec.name)
        if spec.needs_upstream and instance.state != "authorized":
            raise ApiError(400, "instance is starting or not authorized")
        call = Call(scope, receive, instance, extra, body_limit=services.settings.max_json_body)
        return await spec.handler(call, **handing(spec, services))
    except ApiError as exc:
        return cors_error(exc)


def _cors_json(data: Any) -> Response:
    response = json_response(data)
    response.headers[ALLOW_ORIGIN[0]] = ALLOW_ORIGIN[1]
    return response


_JSON_HEADERS = (b"content-type", b"application/json")
_CORS_HEADER = (ALLOW_ORIGIN[0].lower().encode(), ALLOW_ORIGIN[1].encode())
CLIENT_GONE = 499
"""The status counted for a request whose client left before its body was read (nginx's)."""
CLIENT_GONE_KEY = "maxgate.client_gone"
"""Set in the scope when the body never arrived whole: the metrics count such a request as
``CLIENT_GONE`` whatever was answered to whoever still listens."""


def method_name(raw: str) -> str:
    """The canonical name of the v3 method ``raw`` names, ``unknown`` for none: what the
    metrics and the log call a v3 request (never its path, which holds the token)."""
    spec = METHODS.get(raw.lower())
    return "unknown" if spec is None else spec.name


class V3Endpoint:
    """The v3 routes' endpoint, a raw ASGI app inside Starlette's router.

    This is the hot path of every method (``downloadFile`` at thousands per second): no
    request object unless the handler asks for one, a 200 JSON answer sent as two ASGI
    messages. The router, every middleware and the exception handlers see it as any other
    route; it answers its own errors with the CORS headers a page needs to read them. A body
    that never arrived whole is a 400 (``fault_error``; the request counts as a client gone),
    a full store a 507, and a bug in a handler a 500 in the error shape, logged with its
    traceback.
    """

    __name__ = "v3_endpoint"  # the route's name, and what Starlette shows of it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = scope["path_params"]
        try:
            result = await v3_call(scope, receive, params)
        except ClientDisconnect as exc:
            # The client left, or granian could not read the body's framing (a malformed
            # chunked body reaches us as http.disconnect, and granian would answer a plain-text
            # 500 for an app that sends nothing): answer 400 for whoever still listens.
            scope[CLIENT_GONE_KEY] = True
            with contextlib.suppress(OSError):  # ASGI: sending on a closed connection may raise
                await cors_error(fault_error(exc))(scope, receive, send)
            return
        except StorageFull as exc:  # no traceback: not a bug
            log.warning("%s %s: %s", scope["method"], method_name(params["method"]), exc)
            await cors_error(fault_error(exc))(scope, receive, send)
            return
        except Exception as exc:
            log.exception("%s %s failed", scope["method"], method_name(params["method"]))
            await cors_error(fault_error(exc))(scope, receive, send)  # 500, or 507
            return
        if isinstance(result, Response):
            await result(scope, receive, send)
            return
        body = msgspec.json.encode(result)
        headers = [(b"content-length", str(len(body)).encode()), _JSON_HEADERS, _CORS_HEADER]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


v3_endpoint = V3Endpoint()

V3_PATH = re.compile(r"(?:/v3)?/waInstance([^/]+)/([^/]+)/([^/]+)(?:/([^/]+))?")
ALL_VERBS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
"""The verbs the v3 routes take (a method answers 405 for those it does not); any other verb
gets the router's 405."""


class V3Route(Route):
    """The v3 routes, ``/[v3/]waInstance{idInstance}/{method}/{token}[/{extra}]``, as one route
    of Starlette's router: one regular expression for the four forms (the router would
    otherwise try up to four routes for the most frequent requests). ``path`` is the plain
    form; the OpenAPI document expands all four."""

    PREFIXES = ("/v3", "")

    def __init__(self) -> None:
        super().__init__(
            "/waInstance{id_instance}/{method}/{token}", v3_endpoint, methods=ALL_VERBS
        )

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):  # as Starlette's routes read a mounted app's path
            path = path[len(root) :]
        found = V3_PATH.fullmatch(path)
        if found is None:
            return Match.NONE, {}
        id_instance, method, token, extra = found.groups()
        params = {"id_instance": id_instance, "method": method, "token": token}
        if extra is not None:
            params["extra"] = extra
        child = {"endpoint": self.endpoint, "path_params": params}
        return (Match.FULL if scope["method"] in ALL_VERBS else Match.PARTIAL), child

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A verb of ALL_VERBS matched in full: the endpoint answers it (405 for a method that
        # takes another); any other verb gets Route's 405.
        if scope["method"] in ALL_VERBS:
            await v3_endpoint(scope, receive, send)
        else:
            await super().handle(scope, receive, send)


async def partner_endpoint(request: Request) -> Response:
    """``/partner/{method}/{partnerToken}``: instance management for the operator."""
    try:
        spec = _find(PARTNER_METHODS, request)
        if request.method == "OPTIONS":
            return preflight(spec.verbs, request.scope)  # the token is checked on the real call
        services: Services = request.app.state.services
        expected = services.settings.partner_token.reveal()
        presented = str(request.path_params["token"])
        if not expected or not hmac.compare_digest(presented.encode(), expected.encode()):
            raise ApiError(401, "Unauthorized")
        partner = Instance(0, "", "", 0, "authorized", {}, 0.0, False)
        call = Call(
            request.scope, request.receive, partner, body_limit=services.settings.max_json_body
        )
        result = await spec.handler(call, **handing(spec, services))
    except ApiError as exc:
        return cors_error(exc)
    return result if isinstance(result, Response) else _cors_json(result)
