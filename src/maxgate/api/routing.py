"""v3 routing: method registry, path parsing and the checking order of spec §1.4.

Checking order: route → verb → instance (403) → token (401) → rate limit (429) → body (400) →
work. Methods register themselves with ``@method(...)`` in ``maxgate.api.methods.*``.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from maxgate.api.errors import error_response
from maxgate.api.schemas import Body, JsonSchema, Param, as_body
from maxgate.api.validation import Field, decode_json, validate
from maxgate.domain.records import Instance
from maxgate.errors import ApiError
from maxgate.runtime import Runtime

Handler = Callable[["Call"], Awaitable[Any]]


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
            name, frozenset({verb}), handler, partner=True, body=as_body(body), answer=answer
        )
        return handler

    return register


@dataclasses.dataclass(slots=True)
class Call:
    """One authenticated call of a method: the request, the runtime and the instance."""

    request: Request
    runtime: Runtime
    instance: Instance
    extra: str | None = None

    async def body_bytes(self) -> bytes:
        """The raw body, refusing more than the JSON body limit while reading it."""
        limit = self.runtime.settings.max_json_body
        declared = self.request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, "Payload Too Large")
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "Payload Too Large")
            chunks.append(chunk)
        return b"".join(chunks)

    async def json(self, fields: Sequence[Field], *, min_keys: int | None = None) -> dict[str, Any]:
        """The body decoded and checked against ``fields`` (spec §1.4 messages)."""
        return validate(decode_json(await self.body_bytes()), fields, min_keys=min_keys)


def json_response(data: Any) -> Response:
    """A 200 JSON answer (``None`` becomes the literal ``null``, spec §1.6)."""
    return Response(msgspec.json.encode(data), media_type="application/json")


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _find(table: dict[str, MethodSpec], request: Request) -> MethodSpec:
    spec = table.get(str(request.path_params["method"]).lower())
    if spec is None or ("extra" in request.path_params and not spec.takes_extra):
        raise ApiError(404, "Not Found")
    if request.method not in spec.verbs:
        raise ApiError(405, "Method Not Allowed", headers={"Allow": ", ".join(sorted(spec.verbs))})
    return spec


async def v3_endpoint(request: Request) -> Response:
    """Every ``/[v3/]waInstance{id}/{method}/{token}[/{extra}]`` request comes here."""
    try:
        spec = _find(METHODS, request)
        runtime = _runtime(request)
        raw_id = str(request.path_params["id_instance"])
        if not (raw_id.isdigit() and len(raw_id) == 10):
            raise ApiError(403, "Forbidden")
        instance, token_ok = await runtime.instances.authenticate(
            int(raw_id), str(request.path_params["token"])
        )
        if instance is None:
            raise ApiError(403, "Forbidden")
        if not token_ok:
            raise ApiError(401, "Unauthorized")
        if instance.deleted:
            raise ApiError(400, "Instance is deleted")
        if runtime.limiter is not None:
            await runtime.limiter.check(instance.id, spec.name.lower())
        if spec.needs_upstream and instance.state != "authorized":
            raise ApiError(400, "instance is starting or not authorized")
        call = Call(request, runtime, instance, request.path_params.get("extra"))
        result = await spec.handler(call)
    except ApiError as exc:
        return error_response(exc.status, exc.message, exc.headers)
    return result if isinstance(result, Response) else json_response(result)


async def partner_endpoint(request: Request) -> Response:
    """``/partner/{method}/{partnerToken}``: instance management for the operator."""
    try:
        spec = _find(PARTNER_METHODS, request)
        runtime = _runtime(request)
        expected = runtime.settings.partner_token.reveal()
        presented = str(request.path_params["token"])
        if not expected or not hmac.compare_digest(presented.encode(), expected.encode()):
            raise ApiError(401, "Unauthorized")
        partner = Instance(0, "", "", 0, "authorized", {}, 0.0, False)
        result = await spec.handler(Call(request, runtime, partner))
    except ApiError as exc:
        return error_response(exc.status, exc.message, exc.headers)
    return result if isinstance(result, Response) else json_response(result)
