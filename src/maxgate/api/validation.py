"""Request bodies: JSON decoding and field checks with the vendor's exact messages (spec §1.4).

The vendor's texts are those of a Joi schema (``'chatId' is required``, ``'value' must have at
least 2 keys`` …). msgspec decodes JSON; the field checks are a small declarative table here,
because clients match on these exact sentences and msgspec's own messages differ.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Sequence
from typing import Any

import msgspec

from maxgate.api.errors import bad_request, validation_failed
from maxgate.errors import ApiError

CHAT_ID = re.compile(r"-?[0-9]{1,19}")
_INTEGER = re.compile(r"[-+]?[0-9]+")

_TYPE_NAMES = {str: "a string", int: "a number", float: "a number", bool: "a boolean"}
MAX_SAFE_INTEGER = 2**53 - 1
"""JavaScript's ``Number.MAX_SAFE_INTEGER``: Joi refuses a number beyond ±this (``must be a
safe number``), and so do we — which also keeps every number a 64-bit column can hold."""


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
    except msgspec.ValidationError:
        # A number msgspec cannot hold (more than 4300 digits, 1e400): JSON.parse makes it
        # Infinity, which the field check then refuses by name.
        value = _decode_out_of_range(raw)
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


def _decode_out_of_range(raw: bytes) -> Any:
    """Decode a body that msgspec refused for a number out of its range, as JSON.parse does:
    such numbers become ±Infinity. Anything else wrong with the body is the usual 400."""
    try:
        value = json.loads(
            raw.decode("utf-8"), parse_int=_int_or_infinity, parse_constant=_no_constant
        )
        # msgspec would have refused more (lone surrogates in strings, …): it must accept the
        # rest of the body, once the numbers are in its range.
        msgspec.json.decode(msgspec.json.encode(value))
    except (ValueError, RecursionError, TypeError, msgspec.MsgspecError):
        raise _json_error(raw) from None
    return value


def _int_or_infinity(digits: str) -> int | float:
    """An integer literal, or ±Infinity past Python's limit of digits for ``int()`` (4300)."""
    try:
        return int(digits)
    except ValueError:
        return -math.inf if digits.startswith("-") else math.inf


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_error(raw: bytes) -> ApiError:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return bad_request()
    try:
        # Integers past int()'s 4300 digits would raise a ValueError before the syntax error.
        json.loads(text, parse_int=_int_or_infinity)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            return bad_request("Unexpected end of JSON input")
        return bad_request(f"Unexpected token {text[exc.pos]} in JSON at position {exc.pos}")
    except (RecursionError, ValueError):
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
    check_number(name, value, field.minimum, field.maximum, integer=field.type is int)
    return int(value) if field.type is int else value


def check_number(
    name: str, value: float, minimum: float | None, maximum: float | None, *, integer: bool
) -> None:
    """Joi's number checks, in its order: infinity, safe range, integer, minimum, maximum."""
    if isinstance(value, float) and math.isinf(value):
        raise validation_failed(f"'{name}' cannot be infinity")
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise validation_failed(f"'{name}' must be a safe number")
    if integer and value != int(value):
        raise validation_failed(f"'{name}' must be an integer")
    if minimum is not None and value < minimum:
        raise validation_failed(f"'{name}' must be greater than or equal to {_js(minimum)}")
    if maximum is not None and value > maximum:
        raise validation_failed(f"'{name}' must be less than or equal to {_js(maximum)}")


def _js(number: float) -> str:
    """A limit as JavaScript prints it: ``999999999999999``, not ``1e+15``; ``0.5``."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def query_int(raw: str | None, name: str, default: int, *, lo: int, hi: int) -> int:
    """A whole-number query parameter within bounds, with the vendor-style message."""
    if raw is None or raw == "":
        return default
    value: float
    try:
        value = int(raw)
    except ValueError:
        if not _INTEGER.fullmatch(raw):
            raise validation_failed(f"'{name}' must be a number") from None
        value = -math.inf if raw.startswith("-") else math.inf  # past int()'s 4300 digits
    check_number(name, value, lo, hi, integer=True)
    return int(value)
