"""Bot API updates as the messenger port reports them: chat ids, idMessage from ``seq``, files
and their references, albums, replies, locations, contact cards, link previews, and what the
connector does with edits, removals and member changes — from the official client's fixtures
(``stabs``) and payloads shaped like the fake's, each checked against the vendored schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from maxgate.domain.messenger import InboundMessage
from maxgate.domain.records import LinkPreview, Location
from maxgate.fakemax.contract import Contract
from maxgate.upstream.maxbot.adapter import MaxBot, _Bot, upload_kind
from maxgate.upstream.maxbot.updates import (
    FileRef,
    contact_of,
    files_of,
    messages_of,
    recipient,
)

STABS = Path(__file__).resolve().parents[2] / "fakemax" / "stabs"
BOT = 900000001


def _stab(name: str) -> dict[str, Any]:
    update: dict[str, Any] = json.loads((STABS / name).read_text())["updates"][0]
    return update


def _dialog(sender: int, *, attachments: list[Any] | None = None, text: str | None = "hi") -> Any:
    return {
        "sender": {"user_id": sender, "first_name": "Ivan", "last_name": None, "name": "Ivan",
                   "username": None, "is_bot": False, "last_activity_time": 1796291645000},
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
    keyboard = [{"type": "inline_keyboard", "payload": {"buttons": []}}]
    assert messages_of(31, BOT, _dialog(200000001, attachments=keyboard, text=None)) == []
    assert messages_of(31, BOT, {"body": {"mid": "m"}}) == []  # no seq


CONTRACT = Contract()
UPDATE = {"$ref": "#/components/schemas/Update"}


def _created(message: dict[str, Any]) -> dict[str, Any]:
    """A ``message_created`` update of ``message``, which must be valid by the schema."""
    update = {"update_type": "message_created", "timestamp": 1796291645181, "message": message}
    assert CONTRACT.errors(UPDATE, update) == []
    return update


def test_a_location_is_a_location_message() -> None:
    location = {"type": "location", "latitude": 55.75, "longitude": 37}
    message = _created(_dialog(200000001, attachments=[location], text=None))["message"]
    [found] = messages_of(31, BOT, message)
    assert (found.type_message, found.id_message, found.upstream_id) == (
        "locationMessage", "117721769258582016", "mid.00ab"
    )  # fmt: skip
    assert found.location == Location(latitude=55.75, longitude=37.0)
    assert found.text is None and found.file is None


def test_text_with_a_location_and_a_contact_is_three_messages() -> None:
    attachments = [
        {"type": "location", "latitude": 1.5, "longitude": 2.5},
        {"type": "contact", "payload": {"vcf_info": VCARD, "max_info": None}},
    ]
    message = _created(_dialog(200000001, attachments=attachments, text="here"))["message"]
    text, location, contact = messages_of(31, BOT, message)
    assert (text.type_message, text.text, text.id_message) == (
        "textMessage", "here", "117721769258582016"
    )  # fmt: skip
    assert (location.type_message, location.id_message, location.upstream_id) == (
        "locationMessage", "11772176925858201601", None
    )  # fmt: skip
    assert (contact.type_message, contact.id_message) == (
        "contactMessage", "11772176925858201602"
    )  # fmt: skip
    assert contact.contact is not None and contact.contact.vcard == VCARD


VCARD = "BEGIN:VCARD\nVERSION:3.0\nFN:Anna Smit\nTEL;TYPE=cell:+7 999 111-22-33\nEND:VCARD"


def test_a_contact_card_from_its_vcard_or_its_max_user() -> None:
    card = contact_of({"vcf_info": VCARD, "max_info": None})
    assert (card.display_name, card.phone, card.chat_id) == ("Anna Smit", "79991112233", "")
    user = {"user_id": 300000001, "first_name": "Oleg", "last_name": "K", "name": "Oleg K",
            "username": None, "is_bot": False, "last_activity_time": 1,
            "avatar_url": "http://fake/a.png"}  # fmt: skip
    attachment = {"type": "contact", "payload": {"vcf_info": None, "max_info": user}}
    message = _created(_dialog(200000001, attachments=[attachment], text=None))["message"]
    [found] = messages_of(31, BOT, message)
    assert found.contact is not None
    assert (found.contact.display_name, found.contact.chat_id) == ("Oleg K", "300000001")
    assert found.contact.avatar_url == "http://fake/a.png"
    assert found.contact.vcard == "BEGIN:VCARD\nVERSION:3.0\nFN:Oleg K\nEND:VCARD"


def test_a_share_makes_the_text_an_extended_text_message() -> None:
    share = {"type": "share", "payload": {"url": "https://max.ru/", "token": None},
             "title": "MAX", "description": "Messenger", "image_url": None}  # fmt: skip
    message = _created(_dialog(200000001, attachments=[share], text="look"))["message"]
    [found] = messages_of(31, BOT, message)
    assert (found.type_message, found.text) == ("extendedTextMessage", "look")
    assert found.preview == LinkPreview(url="https://max.ru/", title="MAX", description="Messenger")
    message["body"]["text"] = None
    [bare] = messages_of(31, BOT, message)
    assert bare.text == "https://max.ru/"  # a preview alone: its link is the text


def test_a_sticker_is_a_sticker_file() -> None:
    sticker = {"type": "sticker", "payload": {"url": "http://fake/getSmile?smileId=1",
               "code": "c"}, "width": 128, "height": 128}  # fmt: skip
    message = _created(_dialog(200000001, attachments=[sticker], text=None))["message"]
    [found] = messages_of(31, BOT, message)
    assert found.type_message == "stickerMessage" and found.file is not None


class _Sink:
    """Records what the connector reports."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def on_message(self, message: InboundMessage) -> None:
        self.calls.append(("message", message))

    async def on_edit(self, message: InboundMessage) -> None:
        self.calls.append(("edit", message))

    async def on_delete(self, instance_id: int, **named: Any) -> None:
        self.calls.append(("delete", (instance_id, named)))

    async def on_chat(self, instance_id: int, chat_id: str, *, name: str, phone: int) -> None:
        self.calls.append(("chat", (chat_id, name)))

    async def on_status(self, instance_id: int, chat_id: str, id_message: str, status: str) -> None:
        self.calls.append(("status", id_message))

    async def on_state(self, instance_id: int, state: str) -> None:
        self.calls.append(("state", state))


async def _handled(update: dict[str, Any], *, checked: bool = True) -> list[tuple[str, Any]]:
    """What the connector reports of ``update``: checked against the schema unless it is one of
    the official client's fixtures (which omit fields the schema requires, contract.py)."""
    if checked:
        assert CONTRACT.errors(UPDATE, update) == []
    sink = _Sink()
    owner = MaxBot(None, lambda: None)  # type: ignore[arg-type]  # handle needs neither
    await owner.start(sink)  # type: ignore[arg-type]
    bot = _Bot.__new__(_Bot)
    bot.owner, bot.instance_id, bot.bot_user_id, bot.group_names = owner, 31, BOT, {}
    await bot.handle(update)
    return sink.calls


async def test_an_edit_reports_the_new_state_of_the_message() -> None:
    [(call, edited)] = await _handled(_stab("update.message_edited.json"), checked=False)
    assert call == "edit" and isinstance(edited, InboundMessage)
    assert (edited.id_message, edited.text) == ("116327994376978687", "hi bot")
    assert edited.upstream_id == "mid.000000000adf429c019d47b1ce4600ff"


async def test_an_edited_caption_is_the_first_files_caption() -> None:
    photos = [_file("image"), _file("image")]
    for n, photo in enumerate(photos):
        photo["payload"]["photo_id"] = n + 1
    message = _dialog(200000001, attachments=photos, text="new")
    update = {"update_type": "message_edited", "timestamp": 1796291645999, "message": message}
    [(call, edited)] = await _handled(update)
    assert call == "edit" and (edited.id_message, edited.caption) == ("117721769258582016", "new")
    assert edited.file is not None and edited.upstream_id == "mid.00ab"


async def test_a_removal_names_the_message_by_its_mid() -> None:
    calls = await _handled(_stab("update.message_removed.json"))
    assert calls == [("delete", (31, {"upstream_id": "mid.000000000adf429c019d47b1ce4600ff"}))]


@pytest.mark.parametrize("name", ["user_added", "bot_stopped"])
async def test_member_changes_and_a_stop_are_skipped(name: str) -> None:
    assert await _handled(_stab(f"update.{name}.json"), checked=False) == []


async def test_a_user_removed_is_skipped() -> None:
    update = {"update_type": "user_removed", "timestamp": 1, "chat_id": -70801090403050,
              "user": {"user_id": 5, "first_name": "A", "last_name": None, "is_bot": False,
                       "last_activity_time": 1, "name": "A", "username": None},
              "admin_id": 6, "is_channel": False}  # fmt: skip
    assert await _handled(update) == []


async def test_a_new_title_renames_the_group() -> None:
    calls = await _handled(_stab("update.chat_title_changed.json"), checked=False)
    assert calls == [("chat", ("-70801090403050", "Look at me"))]


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
