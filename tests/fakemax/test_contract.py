"""The contract check itself: it reads the vendored schema, corrects the known-wrong places,
and refuses what breaks the schema."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import yaml

from maxgate.fakemax.calls import Exchange
from maxgate.fakemax.contract import KNOWN_WRONG, Contract, load_schema

SCHEMA_DIR = Path(str(resources.files("maxgate.fakemax").joinpath("schema")))
UPDATE = {"$ref": "#/components/schemas/Update"}


def test_the_vendored_schema_is_the_one_the_notice_names() -> None:
    digest = hashlib.sha256((SCHEMA_DIR / "schema.yaml").read_bytes()).hexdigest()
    notice = (SCHEMA_DIR / "NOTICE").read_text()
    assert digest in notice
    assert "Apache License 2.0" in notice
    assert "e36cb5151c59180f39b7dbfafae73877e3031481" in notice


def test_each_known_wrong_place_is_wrong_in_the_file_and_corrected_in_the_check() -> None:
    raw = yaml.safe_load((SCHEMA_DIR / "schema.yaml").read_text())["components"]["schemas"]
    assert "link" in raw["MessageBody"]["required"]
    assert "link" not in raw["MessageBody"]["properties"]
    assert raw["NewMessageBody"]["required"] == ["text", "attachments", "link"]
    assert "user" in raw["BotAddedToChatUpdate"]["allOf"][1]["required"]
    assert "bot_admin_permissions_changed" not in raw["Update"]["discriminator"]["mapping"]
    assert "type" not in raw["UserIdsList"]["properties"]["user_ids"]
    assert len(KNOWN_WRONG) == 5
    fixed = load_schema()["raw"]["components"]["schemas"]
    assert "link" not in fixed["MessageBody"]["required"]
    assert fixed["NewMessageBody"]["required"] == []


def test_updates_are_checked_as_the_subtype_they_name() -> None:
    contract = Contract()
    assert contract.errors(UPDATE, {"update_type": "message_created", "timestamp": 1}) != []
    assert contract.errors(UPDATE, {"update_type": "no_such", "timestamp": 1}) != []
    removed = {
        "update_type": "message_removed",
        "timestamp": 1,
        "message_id": "mid.1",
        "chat_id": 1,
        "user_id": 2,
    }
    assert contract.errors(UPDATE, removed) == []
    assert contract.errors(UPDATE, {**removed, "chat_id": "one"}) != []


def test_attachments_are_checked_by_type() -> None:
    contract = Contract()
    attachment = {"$ref": "#/components/schemas/Attachment"}
    good = {"type": "file", "payload": {"url": "u", "token": "t"}, "filename": "a", "size": 1}
    assert contract.errors(attachment, good) == []
    assert contract.errors(attachment, {**good, "filename": None}) != []
    assert contract.errors(attachment, {"type": "location", "latitude": 1}) != []


def test_a_fake_that_accepts_a_bad_request_or_answers_badly_is_caught() -> None:
    contract = Contract()
    ok = {"success": True}
    contract.record(Exchange("call", "PUT", "/messages", {}, [], {"text": "x"}, 200, ok))
    assert contract.problems and "message_id is required" in contract.problems[0]
    contract = Contract()
    contract.record(Exchange("call", "GET", "/me", {}, [], None, 200, {"user_id": "x"}))
    assert contract.problems
    contract = Contract()
    error = {"code": "attachment.not.ready", "message": ""}
    contract.record(Exchange("call", "POST", "/messages", {}, [("chat_id", "1")], {}, 400, error))
    assert contract.problems == []  # an undeclared error status is held to Error
