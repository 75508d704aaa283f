"""Request bodies: JSON decoding and field checks with the vendor's exact messages (spec §1.4).

The vendor's texts are those of a Joi schema (``'chatId' is required``, ``'value' must have at
least 2 keys`` …). msgspec decodes JSON; the field checks are a small declarative table here,
because clients match on these exact sentences and msgspec's own messages differ.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from typing import Any

import msgspec

from maxgate.api.errors import bad_request, validation_failed
from maxgate.errors import ApiError

CHAT_ID = re.compile(r"-?[0-9]{1,19}")

_TYPE_NAMES = {str: "a string", int: "a number", float: "a number", bool: "a boolean"}


@dataclasses.dataclass(frozen=True, slots=True)
class Field:
    """One body field: its name, type and constraints."""

    name: str
    type: type = str
    required: bool = True
    pattern: re.Pattern[str] | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    allow_empty: bool = False
    choices: tuple[str, ...] = ()


def decode_json(raw: bytes) -> Any:
    """Decode a JSON body; malformed JSON gets V8's message, as the vendor's Node server says.

    An empty body is an empty object. A JSON string whose content is a JSON object is that
    object (the seed's Python sample double-encodes its body, spec §1.5).
    """
    if not raw.strip():
        return {}
    try:
        value = msgspec.json.decode(raw)
    # msgspec raises UnicodeDecodeError for invalid UTF-8 inside a string and RecursionError
    # for deep nesting: both are bad input, never a 500.
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise _json_error(raw) from None
    if isinstance(value, str):
        try:
            inner = msgspec.json.decode(value)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return value
        if isinstance(inner, dict):
            return inner
    return value


def _json_error(raw: bytes) -> ApiError:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return bad_request()
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            return bad_request("Unexpected end of JSON input")
        return bad_request(f"Unexpected token {text[exc.pos]} in JSON at position {exc.pos}")
    except RecursionError:
        return bad_request()
    return bad_request()  # valid for Python but not for msgspec (e.g. NaN): still unusable


def validate(body: Any, fields: Sequence[Field], *, min_keys: int | None = None) -> dict[str, Any]:
    """Check a decoded body against fields; returns the known fields' values.

    ``min_keys`` defaults to the number of required fields.
    """
    if not isinstance(body, dict):
        raise validation_failed("'value' must be of type object")
    needed = sum(1 for f in fields if f.required) if min_keys is None else min_keys
    if len(body) < needed:
        raise validation_failed(f"'value' must have at least {needed} keys")
    out: dict[str, Any] = {}
    for field in fields:
        if field.name not in body or body[field.name] is None:
            if field.required:
                raise validation_failed(f"'{field.name}' is required")
            continue
        out[field.name] = check_field(field, body[field.name])
    return out


def check_field(field: Field, value: Any) -> Any:
    """Check one value against its field; returns it (numbers as int when integral)."""
    name = field.name
    if field.type is str:
        if not isinstance(value, str):
            raise validation_failed(f"'{name}' must be a string")
        if value == "" and not field.allow_empty:
            raise validation_failed(f"'{name}' is not allowed to be empty")
        if field.max_length is not None and len(value) > field.max_length:
            raise validation_failed(
                f"'{name}' length must be less than or equal to {field.max_length} characters long"
            )
        if field.pattern is not None and value and not field.pattern.fullmatch(value):
            raise validation_failed(
                f"'{name}' with value '{value}' fails to match the required pattern"
            )
        if field.choices and value not in field.choices:
            raise validation_failed(f"'{name}' must be one of [{', '.join(field.choices)}]")
        return value
    if field.type is bool:
        if not isinstance(value, bool):
            raise validation_failed(f"'{name}' must be a boolean")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise validation_failed(f"'{name}' must be {_TYPE_NAMES[field.type]}")
    if field.type is int and value != int(value):
        raise validation_failed(f"'{name}' must be an integer")
    if field.minimum is not None and value < field.minimum:
        raise validation_failed(f"'{name}' must be greater than or equal to {field.minimum:g}")
    if field.maximum is not None and value > field.maximum:
        raise validation_failed(f"'{name}' must be less than or equal to {field.maximum:g}")
    return int(value) if field.type is int else value


def query_int(raw: str | None, name: str, default: int, *, lo: int, hi: int) -> int:
    """A whole-number query parameter within bounds, with the vendor-style message."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation_failed(f"'{name}' must be a number") from None
    if value < lo:
        raise validation_failed(f"'{name}' must be greater than or equal to {lo}")
    if value > hi:
        raise validation_failed(f"'{name}' must be less than or equal to {hi}")
    return value
