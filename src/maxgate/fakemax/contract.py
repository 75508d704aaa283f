"""The contract check: every exchange of the fake (request, answer, webhook update) against the
vendored official schema (``schema/schema.yaml``, see ``schema/NOTICE``).

The schema is OpenAPI 3.0; it is turned into JSON Schema (``nullable`` → ``null`` in the type,
each ``discriminator`` into an if/then dispatch on its property, so an ``Update`` or an
``Attachment`` is checked as the subtype its ``update_type``/``type`` names), after the
corrections in ``KNOWN_WRONG`` below: the places where the schema is known to disagree with the
platform. Needs ``jsonschema`` and ``PyYAML`` (test dependencies; the fake itself does not).

Use: ``contract = Contract(); fake.observers.append(contract.record)``, then
``assert contract.problems == []``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import msgspec
import yaml  # type: ignore[import-untyped]

from maxgate.fakemax.calls import Exchange

SCHEMAS = "#/components/schemas/"
Patch = Callable[[dict[str, Any]], None]


def _schemas(doc: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = doc["components"]["schemas"]
    return found


def _drop_required(name: str, field: str) -> Patch:
    def patch(doc: dict[str, Any]) -> None:
        spec = _schemas(doc)[name]
        for part in [spec, *spec.get("allOf", [])]:
            if field in part.get("required", []):
                part["required"].remove(field)

    return patch


def _user_ids_are_an_array(doc: dict[str, Any]) -> None:
    _schemas(doc)["UserIdsList"]["properties"]["user_ids"]["type"] = "array"


def _new_message_body_fields_are_optional(doc: dict[str, Any]) -> None:
    _schemas(doc)["NewMessageBody"]["required"] = []


def _bot_admin_permissions_changed(doc: dict[str, Any]) -> None:
    schemas = _schemas(doc)
    schemas["BotAdminPermissionsChangedUpdate"] = {
        "allOf": [
            {"$ref": SCHEMAS + "Update"},
            {"properties": {"chat_id": {"type": "integer"}}, "required": ["chat_id"]},
        ]
    }
    mapping = schemas["Update"]["discriminator"]["mapping"]
    mapping["bot_admin_permissions_changed"] = SCHEMAS + "BotAdminPermissionsChangedUpdate"


# Where schema.yaml (Go client, e36cb51, v0.0.30) is known to be wrong, and what the check
# does instead. Places that need no correction for the check are listed as comments.
KNOWN_WRONG: list[tuple[str, Patch]] = [
    # MessageBody lists `link` as required but has no such property; no real body has it.
    (
        "MessageBody.required names a field it does not define",
        _drop_required("MessageBody", "link"),
    ),
    # NewMessageBody requires text, attachments and link, all nullable; real clients (the
    # official TS client) send {"text": ...} alone, and the platform accepts it.
    ("NewMessageBody requires every field", _new_message_body_fields_are_optional),
    # Since November 2026 bot_added carries no `user` (dev.max.ru changelog).
    ("bot_added requires user", _drop_required("BotAddedToChatUpdate", "user")),
    # October 2026 added the update type bot_admin_permissions_changed (changelog).
    ("Update lacks bot_admin_permissions_changed", _bot_admin_permissions_changed),
    # UserIdsList.user_ids has `items` but no `type: array`, so an object would pass.
    ("UserIdsList.user_ids has no type", _user_ids_are_an_array),
]
# Not corrected, because the check handles them structurally or they are prose:
# * Update is a oneOf of subtypes that each allOf Update itself: circular, and the subtypes
#   overlap, so oneOf could never hold. Every discriminator is checked as a dispatch instead.
# * Operations declare few error statuses (POST /messages: 401, 500), yet the platform answers
#   400 attachment.not.ready, 403, 404, 429 and 503: any undeclared status >= 400 is checked
#   against Error.
# * securitySchemes.access_token is `in: query`; the token goes in the Authorization header
#   (no Bearer) and the query parameter is no longer accepted (dev.max.ru, 2026).
# * servers names botapi.max.ru; the host is platform-api2.max.ru since July 2026.
# * GET /updates says that without a marker you get every uncommitted update; the 2026 docs
#   say only the last one, which is what the fake does.
# * GET /chats is still described; it is gone since June 2026 (the fake answers 404).
# * User requires last_name, username and last_activity_time, Recipient user_id, and real
#   payloads (the Go client's own stabs) omit them; the fake sends them (null when unknown),
#   so the check keeps them required.
# * GET /chats/{chatId}/members: `count` has the default '20', a string.


def _to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects as JSON Schema 2020-12 (discriminators left for later)."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        key: _to_json_schema(value)
        for key, value in node.items()
        if key not in ("nullable", "readOnly", "deprecated", "example", "discriminator")
        and not key.startswith("x-")
    }
    if node.get("nullable") is True:
        if "type" in out:
            kind = out["type"]
            out["type"] = [*kind, "null"] if isinstance(kind, list) else [kind, "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


def _dispatch(schemas: dict[str, Any], raw: dict[str, Any]) -> None:
    """Each discriminated schema checks its subtype by the discriminating property."""
    for name, spec in raw.items():
        discriminator = spec.get("discriminator") if isinstance(spec, dict) else None
        if not discriminator or "mapping" not in discriminator:
            continue
        prop, mapping = discriminator["propertyName"], discriminator["mapping"]
        base = f"{name}.base"
        schemas[base] = {k: v for k, v in schemas[name].items() if k != "oneOf"}
        for target in mapping.values():
            child = schemas[target.removeprefix(SCHEMAS)]
            for part in child.get("allOf", []):
                if part.get("$ref") == SCHEMAS + name:
                    part["$ref"] = SCHEMAS + base
        rules: list[dict[str, Any]] = [
            {"$ref": SCHEMAS + base},
            {"properties": {prop: {"enum": sorted(mapping)}}, "required": [prop]},
        ]
        for key, target in mapping.items():
            when = {"properties": {prop: {"const": key}}, "required": [prop]}
            rules.append({"if": when, "then": {"$ref": target}})
        schemas[name] = {"allOf": rules}


@cache
def load_schema() -> dict[str, Any]:
    """The vendored schema, corrected by ``KNOWN_WRONG``, as a JSON Schema document whose
    ``components.schemas`` hold every definition, and the OpenAPI ``paths``."""
    text = resources.files("maxgate.fakemax").joinpath("schema/schema.yaml").read_text("utf-8")
    doc: dict[str, Any] = yaml.safe_load(text)
    for _why, patch in KNOWN_WRONG:
        patch(doc)
    raw = _schemas(doc)
    schemas = {name: _to_json_schema(spec) for name, spec in raw.items()}
    _dispatch(schemas, raw)
    return {"components": {"schemas": schemas}, "paths": doc["paths"], "raw": doc}


class Contract:
    """Collects the problems of every exchange it is handed."""

    def __init__(self) -> None:
        self.doc = load_schema()
        self._validators: dict[str, jsonschema.protocols.Validator] = {}
        self.problems: list[str] = []
        self.request_problems: list[str] = []
        self.checked = 0

    def validator(self, schema: dict[str, Any]) -> jsonschema.protocols.Validator:
        """A validator of ``schema`` (which may ``$ref`` the components)."""
        key = repr(schema)
        if key not in self._validators:
            root = {"components": self.doc["components"], **_to_json_schema(schema)}
            self._validators[key] = jsonschema.Draft202012Validator(root)
        return self._validators[key]

    def errors(self, schema: dict[str, Any], value: Any) -> list[str]:
        """Why ``value`` breaks ``schema`` (empty: it does not)."""
        found = self.validator(schema).iter_errors(value)
        return [f"{'/'.join(map(str, e.absolute_path)) or '.'}: {e.message}" for e in found]

    def check_log(self, path: Path) -> None:
        """Check every exchange of a server's ``exchange_log`` file."""
        for line in path.read_bytes().splitlines():
            self.record(msgspec.json.decode(line, type=Exchange))

    def record(self, exchange: Exchange) -> None:
        """Check one exchange (an observer of ``FakeMax``)."""
        self.checked += 1
        where = f"{exchange.method} {exchange.path} -> {exchange.status}"
        if exchange.kind == "webhook":
            for error in self.errors({"$ref": SCHEMAS + "Update"}, exchange.body):
                self.problems.append(f"webhook update {where}: {error}")
            return
        operation = self.doc["paths"].get(exchange.path, {}).get(exchange.method.lower())
        if operation is None:
            self.problems.append(f"{where}: no such operation in the schema")
            return
        request = self._request_errors(operation, exchange)
        self.request_problems += [f"request {where}: {e}" for e in request]
        if request and 200 <= exchange.status < 300:
            self.problems += [
                f"accepted a request the schema refuses, {where}: {e}" for e in request
            ]
        for error in self._response_errors(operation, exchange):
            self.problems.append(f"response {where}: {error}")

    def _coerce(self, schema: dict[str, Any], raw: str) -> Any:
        if "$ref" in schema:
            schema = self.doc["raw"]["components"]["schemas"][schema["$ref"].removeprefix(SCHEMAS)]
        kind = schema.get("type")
        if kind == "array":
            return [self._coerce(schema.get("items", {}), part) for part in raw.split(",") if part]
        if kind == "integer":
            try:
                return int(raw)
            except ValueError:
                return raw
        if kind == "boolean":
            return {"true": True, "false": False}.get(raw, raw)
        return raw

    def _request_errors(self, operation: dict[str, Any], exchange: Exchange) -> list[str]:
        errors: list[str] = []
        query = dict(exchange.query)
        for spec in operation.get("parameters", []):
            name, place, schema = spec["name"], spec["in"], spec.get("schema", {})
            source = query if place == "query" else exchange.path_params
            if name not in source:
                if spec.get("required"):
                    errors.append(f"{place} parameter {name} is required")
                continue
            value = self._coerce(schema, source[name])
            errors += [f"{place} {name}: {e}" for e in self.errors(schema, value)]
        body_spec = operation.get("requestBody")
        if body_spec is not None:
            schema = body_spec["content"]["application/json"]["schema"]
            if exchange.body is None:
                if body_spec.get("required"):
                    errors.append("a JSON body is required")
            else:
                errors += [f"body {e}" for e in self.errors(schema, exchange.body)]
        return errors

    def _response_errors(self, operation: dict[str, Any], exchange: Exchange) -> list[str]:
        responses = operation["responses"]
        spec = responses.get(str(exchange.status)) or responses.get(exchange.status)
        if spec is None:
            if exchange.status >= 400:
                return self.errors({"$ref": SCHEMAS + "Error"}, exchange.response)
            return [f"status {exchange.status} is not declared"]
        if "$ref" in spec:
            name = spec["$ref"].rsplit("/", 1)[-1]
            spec = self.doc["raw"]["components"]["responses"][name]
        schema = spec.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            return []
        return self.errors(schema, exchange.response)
