"""Bot API updates as the messenger port reports them: chat ids, idMessage from ``seq``, files
and their references, albums, replies — from the official client's fixtures (``stabs``) and
payloads shaped like the fake's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from maxgate.upstream.maxbot.adapter import upload_kind
from maxgate.upstream.maxbot.updates import FileRef, files_of, messages_of, recipient

STABS = Path(__file__).resolve().parents[2] / "fakemax" / "stabs"
BOT = 900000001


def _stab(name: str) -> dict[str, Any]:
    update: dict[str, Any] = json.loads((STABS / name).read_text())["updates"][0]
    return update


def _dialog(sender: int, *, attachments: list[Any] | None = None, text: str | None = "hi") -> Any:
    return {
        "sender": {"user_id": sender, "first_name": "Ivan", "last_name": None, "name": "Ivan"},
        "recipient": {"chat_id": 80000001, "chat_type": "dialog", "user_id": BOT},
        "timestamp": 1796291645181,
        "link": None,
        "body": {"mid": "mid.00ab", "seq": 117721769258582016, "text": text,
                 "attachments": attachments},
    }  # fmt: skip


def test_a_group_message_from_the_official_fixture() -> None:
    message = _stab("update.message_created.json")["message"]
    [found] = messages_of(31, BOT, message, chat_name="Cars")
    assert found.chat_id == "-70801090403050" and found.chat_type == "group"
    assert found.chat_name == "Cars" and found.sender_id == "123456789"
    assert found.sender_name == "John Doe" and found.sender_phone == 0
    assert found.id_message == "116327994376978687"  # body.seq
    assert found.upstream_id == "mid.ffffbdb48e6c3775019d496b34394b84"
    assert found.timestamp == 1775053255  # ms → s
    assert (found.type_message, found.text, found.from_me) == ("textMessage", "...", False)
    assert found.quoted_id is None  # a forward is not a reply


def test_a_dialog_is_named_by_the_person() -> None:
    [found] = messages_of(31, BOT, _dialog(200000001))
    assert (found.chat_id, found.chat_type, found.chat_name) == ("200000001", "user", "Ivan")


def test_the_bots_own_message_is_from_me_in_the_persons_chat() -> None:
    message = _dialog(BOT)
    message["recipient"]["user_id"] = 200000001
    [found] = messages_of(31, BOT, message)
    assert found.from_me and found.chat_id == "200000001"


def test_a_reply_quotes_the_seq_of_its_message() -> None:
    message = _dialog(200000001)
    message["link"] = {"type": "reply", "message": {"mid": "mid.1", "seq": 42, "text": "q"}}
    [found] = messages_of(31, BOT, message)
    assert found.quoted_id == "42"


def _file(kind: str, **extra: Any) -> dict[str, Any]:
    url = f"http://fake/getfile?sig=x&expires=1&id={kind}"
    return {"type": kind, "payload": {"url": url, "token": f"t-{kind}"}, **extra}


def test_every_file_kind_with_its_type_message() -> None:
    attachments = [
        _file("file", filename="report.pdf", size=10),
        _file("image"),
        _file("video", width=1, height=1, duration=1),
        _file("audio"),
        {"type": "sticker", "payload": {"url": "http://fake/getSmile?smileId=1", "code": "c"}},
        {"type": "location", "latitude": 1.0, "longitude": 2.0},
    ]
    found = files_of("mid.7", attachments)
    kinds = [(t, f.file_name, f.mime_type, f.size) for t, f in found]
    assert kinds == [
        ("documentMessage", "report.pdf", "application/pdf", 10),
        ("imageMessage", "image.jpg", "image/jpeg", None),
        ("videoMessage", "video.mp4", "video/mp4", None),
        ("audioMessage", "audio.ogg", "audio/ogg", None),
        ("stickerMessage", "sticker.webp", "image/webp", None),
    ]
    refs = [FileRef.parse(f.ref) for _, f in found]
    assert [(r.mid, r.index, r.kind) for r in refs][:2] == [
        ("mid.7", 0, "file"),
        ("mid.7", 1, "image"),
    ]
    assert refs[2].token == "t-video" and refs[4].index == 4  # the place among all attachments


def test_an_album_is_one_message_per_file() -> None:
    message = _dialog(200000001, attachments=[_file("image"), _file("image")], text="two")
    first, second = messages_of(31, BOT, message)
    assert (first.id_message, first.caption, first.upstream_id) == (
        "117721769258582016", "two", "mid.00ab"
    )  # fmt: skip
    assert (second.id_message, second.caption, second.upstream_id) == (
        "11772176925858201601", "", None
    )  # fmt: skip
    assert first.file is not None and second.file is not None and first.file.ref != second.file.ref


def test_nothing_to_journal_gives_nothing() -> None:
    assert messages_of(31, BOT, _dialog(200000001, text=None)) == []
    location = [{"type": "location", "latitude": 1.0, "longitude": 2.0}]
    assert messages_of(31, BOT, _dialog(200000001, attachments=location, text=None)) == []
    assert messages_of(31, BOT, {"body": {"mid": "m"}}) == []  # no seq


def test_recipient_of_a_chat_id() -> None:
    assert recipient("200000001") == {"user_id": 200000001}
    assert recipient("-70801090403050") == {"chat_id": -70801090403050}
    with pytest.raises(ValueError):
        recipient("79001234567@c.us")


def test_a_reference_survives_its_text_and_refuses_others() -> None:
    ref = FileRef("mid.1", 2, "video", "http://x/?a=1&b=2", "tok")
    assert FileRef.parse(str(ref)) == ref
    for bad in ("", "{}", "not json", '{"mid": 1, "extra": 2}'):
        with pytest.raises(ValueError):
            FileRef.parse(bad)


@pytest.mark.parametrize(
    ("mime", "kind"),
    [
        ("image/png", "image"),
        ("image/svg+xml", "file"),  # not a format MAX takes as an image
        ("video/mp4", "video"),
        ("video/x-msvideo", "file"),
        ("audio/mpeg", "audio"),
        ("application/pdf", "file"),
        ("", "file"),
    ],
)
def test_upload_kind(mime: str, kind: str) -> None:
    assert upload_kind(mime) == kind
