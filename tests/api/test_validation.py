"""Numbers out of every range, through real requests: always a 400 in the error shape, with the
texts of a Joi schema (JSON.parse makes a huge literal Infinity; Joi refuses unsafe numbers)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from maxgate.api.routing import METHODS, PARTNER_METHODS, MethodSpec
from maxgate.api.schemas import JsonBody
from maxgate.api.validation import MAX_SAFE_INTEGER, Field
from maxgate.runtime import Runtime
from tests.api._support import CONTACT, assert_error, invalid, ok
from tests.conftest import Account

HUGE = "9" * 5000  # past Python's 4300 digits for int(): msgspec refuses it, json.loads too
DIGITS_25 = "9" * 25
ABOVE_UINT64 = str(2**64)  # msgspec still decodes it, as a Python int
ABOVE_INT64 = str(2**63)  # what a 64-bit column cannot hold


def _json(*pairs: tuple[str, str]) -> bytes:
    """A JSON object written by hand, so that numbers stay exactly as given."""
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in pairs) + "}").encode()


async def _post(client: httpx.AsyncClient, url: str, body: bytes) -> httpx.Response:
    return await client.post(url, content=body, headers={"content-type": "application/json"})


def _send(typing_time: str) -> bytes:
    return _json(("chatId", f'"{CONTACT}"'), ("message", '"hi"'), ("typingTime", typing_time))


@pytest.mark.parametrize(
    ("typing_time", "details"),
    [
        (HUGE, "'typingTime' cannot be infinity"),
        ("-" + HUGE, "'typingTime' cannot be infinity"),
        ("1e400", "'typingTime' cannot be infinity"),
        (DIGITS_25, "'typingTime' must be a safe number"),
        ("-" + DIGITS_25, "'typingTime' must be a safe number"),
        (ABOVE_UINT64, "'typingTime' must be a safe number"),
        (str(MAX_SAFE_INTEGER + 1), "'typingTime' must be a safe number"),
        ("1e300", "'typingTime' must be a safe number"),
        (str(MAX_SAFE_INTEGER), "'typingTime' must be less than or equal to 20000"),
        ("20001", "'typingTime' must be less than or equal to 20000"),
        ("1.5", "'typingTime' must be an integer"),
    ],
)
async def test_send_message_typing_time(
    client: httpx.AsyncClient, account: Account, typing_time: str, details: str
) -> None:
    response = await _post(client, account.url("sendMessage"), _send(typing_time))
    assert_error(response, 400, invalid(details))


@pytest.mark.parametrize(
    ("delay", "details"),
    [
        (HUGE, "'delaySendMessagesMilliseconds' cannot be infinity"),
        (DIGITS_25, "'delaySendMessagesMilliseconds' must be a safe number"),
        (ABOVE_INT64, "'delaySendMessagesMilliseconds' must be a safe number"),
    ],
)
async def test_set_settings_delay(
    client: httpx.AsyncClient, account: Account, delay: str, details: str
) -> None:
    body = _json(("delaySendMessagesMilliseconds", delay))
    assert_error(await _post(client, account.url("setSettings"), body), 400, invalid(details))
    settings = ok(await client.get(account.url("getSettings")))
    assert settings["delaySendMessagesMilliseconds"] == 500  # unchanged


async def test_limits_are_printed_as_javascript_does(
    client: httpx.AsyncClient, account: Account
) -> None:
    body = _json(("phoneNumber", str(10**15)))
    response = await _post(client, account.url("checkAccount"), body)
    assert_error(
        response, 400, invalid("'phoneNumber' must be less than or equal to 999999999999999")
    )


async def test_a_huge_number_in_an_ignored_key_is_no_error(
    client: httpx.AsyncClient, account: Account
) -> None:
    body = _json(("chatId", f'"{CONTACT}"'), ("message", '"hi"'), ("somethingElse", HUGE))
    assert "idMessage" in ok(await _post(client, account.url("sendMessage"), body))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        # the huge number is fine for the fallback, the rest of the body is not
        (b'{"chatId": "1", "typingTime": ' + HUGE.encode() + b",}", None),
        (b'{"message": "\\ud800", "typingTime": ' + HUGE.encode() + b"}", "Bad Request"),
        (b'{"typingTime": ' + HUGE.encode() + b', "x": NaN}', "Bad Request"),
        (b'{"typingTime": ' + HUGE.encode(), "Unexpected end of JSON input"),
    ],
)
async def test_a_huge_number_in_a_broken_body(
    client: httpx.AsyncClient, account: Account, raw: bytes, message: str | None
) -> None:
    response = await _post(client, account.url("sendMessage"), raw)
    text = assert_error(response, 400, message)
    if message is None:
        assert text == f"Unexpected token }} in JSON at position {len(raw) - 1}"


@pytest.mark.parametrize(
    ("minutes", "details"),
    [
        (HUGE, "'minutes' cannot be infinity"),
        (DIGITS_25, "'minutes' must be a safe number"),
        ("-" + DIGITS_25, "'minutes' must be a safe number"),
        ("525601", "'minutes' must be less than or equal to 525600"),
    ],
)
async def test_query_numbers(
    client: httpx.AsyncClient, account: Account, minutes: str, details: str
) -> None:
    response = await client.get(account.url("lastIncomingMessages"), params={"minutes": minutes})
    assert_error(response, 400, invalid(details))


@pytest.mark.parametrize("id_instance", [ABOVE_INT64, ABOVE_UINT64, DIGITS_25, "1e300"])
async def test_partner_instance_ids_past_a_64_bit_column(
    client: httpx.AsyncClient, runtime: Runtime, id_instance: str
) -> None:
    """``idInstance`` has no maximum: such a number reached the store, and SQLite's
    "Python int too large to convert to SQLite INTEGER" was a 500."""
    token = runtime.settings.partner_token.reveal()
    for method, body in [
        ("deleteInstanceAccount", _json(("idInstance", id_instance))),
        (
            "sandboxSendMessage",
            _json(("idInstance", id_instance), ("chatId", f'"{CONTACT}"'), ("message", '"x"')),
        ),
    ]:
        response = await _post(client, f"/partner/{method}/{token}", body)
        assert_error(response, 400, invalid("'idInstance' must be a safe number"))


def _number_fields() -> list[tuple[MethodSpec, Field]]:
    found = []
    for spec in [*METHODS.values(), *PARTNER_METHODS.values()]:
        if isinstance(spec.body, JsonBody):
            found += [(spec, f) for f in spec.body.fields if f.type in (int, float)]
    return found


def _sample(field: Field) -> str:
    if field.type is bool:
        return "true"
    if field.type in (int, float):
        return str(int(field.minimum or 1))
    return f'"{field.choices[0] if field.choices else CONTACT}"'


@pytest.mark.parametrize(
    ("spec", "field"), _number_fields(), ids=lambda x: x.name if hasattr(x, "name") else ""
)
@pytest.mark.parametrize("number", [HUGE, DIGITS_25])
async def test_every_number_field_refuses_huge_numbers(
    client: httpx.AsyncClient,
    account: Account,
    runtime: Runtime,
    spec: MethodSpec,
    field: Field,
    number: str,
) -> None:
    assert isinstance(spec.body, JsonBody)
    pairs = [(f.name, number if f is field else _sample(f)) for f in spec.body.fields]
    if spec.partner:
        url = f"/partner/{spec.name}/{runtime.settings.partner_token.reveal()}"
    else:
        url = account.url(spec.name)
    response = await _post(client, url, _json(*pairs))
    expected = "cannot be infinity" if number == HUGE else "must be a safe number"
    assert_error(response, 400, invalid(f"'{field.name}' {expected}"))


def test_there_are_number_fields_to_check() -> None:
    names: set[Any] = {(spec.name, field.name) for spec, field in _number_fields()}
    assert ("sendMessage", "typingTime") in names
    assert ("setSettings", "delaySendMessagesMilliseconds") in names
