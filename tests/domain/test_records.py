"""The domain's records: no secret in a repr or a str, whatever the record type.

Every class defined in ``maxgate.domain.records`` is found by looking at the module, built with
plain values and with secret-looking ones (``S3CRET…``) in every field that can hold a secret,
and its repr and str are searched for them. A new record type fails here until ``SECRETS``
says what secrets it can hold (``{}`` for none).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import pytest

from maxgate.domain import records
from maxgate.domain.records import (
    SECRET_SETTINGS,
    FileRecord,
    Instance,
    LinkPreview,
    Location,
    Message,
    SharedContact,
    masked_settings,
)

MARK = "S3CRET"

# What each record type holds that is a secret, as field values full of MARK.
SECRETS: dict[type, dict[str, Any]] = {
    Instance: {
        "settings": {
            "webhookUrl": f"https://alice:{MARK}-password@hooks.example.com/in?kind=all",
            "webhookUrlToken": f"{MARK}-webhook-url-token",
            "webhookSecret": f"{MARK}-webhook-hmac-secret",
            "delaySendMessagesMilliseconds": 500,
            "incomingWebhook": "yes",
        }
    },
    FileRecord: {},  # a file's hash, names and upstream reference are no secrets
    Message: {},  # a message's text is the user's content, no secret of the gateway
    Location: {},  # what a message carries is the user's content too
    SharedContact: {},
    LinkPreview: {},
}


def record_types() -> list[type]:
    """Every class the records module defines (not what it imports)."""
    return [
        value
        for value in vars(records).values()
        if isinstance(value, type) and value.__module__ == records.__name__
    ]


def sample(kind: Any) -> Any:
    """A plain value of an annotated type: records are built from these."""
    if kind in (str, int, float, bool):
        return {str: "plain", int: 7, float: 1.5, bool: True}[kind]
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        return sample(next(arg for arg in typing.get_args(kind) if arg is not type(None)))
    if typing.get_origin(kind) is dict:
        return {}
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return build(kind)
    raise AssertionError(f"no sample for {kind!r}: teach sample() this type")


def build(kind: type, *, secrets: bool = True) -> Any:
    """An instance of a record type, its secret fields set from ``SECRETS``."""
    hints = typing.get_type_hints(kind)
    values = {field.name: sample(hints[field.name]) for field in dataclasses.fields(kind)}
    if secrets:
        values.update(SECRETS[kind])
    return kind(**values)


def test_every_record_type_says_what_secrets_it_holds() -> None:
    found = record_types()
    assert {Instance, FileRecord, Message} <= set(found)
    for kind in found:
        assert dataclasses.is_dataclass(kind), f"{kind.__name__}: records are dataclasses"
        assert kind in SECRETS, f"{kind.__name__}: add it to SECRETS (an empty dict if none)"


@pytest.mark.parametrize("kind", record_types(), ids=lambda kind: kind.__name__)
def test_no_secret_in_a_repr_or_str(kind: type) -> None:
    record = build(kind)
    for shown in (repr(record), str(record), f"{record}", f"{[record]}"):
        assert MARK not in shown, shown
    assert kind.__name__ in repr(record)


def test_the_secrets_are_kept_in_the_record() -> None:
    instance = build(Instance)
    assert instance.settings == SECRETS[Instance]["settings"]  # only its repr masks them
    assert instance == build(Instance)
    assert instance != dataclasses.replace(instance, settings={"webhookSecret": "other"})


def test_an_instance_repr_still_tells_what_is_set() -> None:
    shown = repr(build(Instance))
    assert "'webhookUrlToken': '***'" in shown and "'webhookSecret': '***'" in shown
    assert "hooks.example.com/in?kind=all" in shown  # the URL, without its user and password
    assert "alice" not in shown
    assert "'delaySendMessagesMilliseconds': 500" in shown
    assert "id=7" in shown and "name='plain'" in shown


def test_a_message_with_an_instance_file_shows_no_secret() -> None:
    # Nested records use their own reprs.
    message = build(Message)
    assert isinstance(message.file, FileRecord)
    assert MARK not in repr([message, build(Instance)])


@pytest.mark.parametrize(
    ("settings", "shown"),
    [
        (
            {"webhookUrlToken": "", "webhookSecret": ""},
            {"webhookUrlToken": "", "webhookSecret": ""},
        ),
        ({"webhookUrl": "https://h.example/x"}, {"webhookUrl": "https://h.example/x"}),
        ({"webhookUrl": "https://tok@h.example/x"}, {"webhookUrl": "https://***@h.example/x"}),
        ({"webhookUrl": "http://u:p@[::1"}, {"webhookUrl": "***"}),  # unparsable: all of it
        ({"webhookUrl": ""}, {"webhookUrl": ""}),
    ],
)
def test_masked_settings(settings: dict[str, Any], shown: dict[str, Any]) -> None:
    assert masked_settings(settings) == shown


def test_the_secret_settings_are_the_webhook_token_and_secret() -> None:
    assert frozenset({"webhookUrlToken", "webhookSecret"}) == SECRET_SETTINGS
