"""The journal: atomic outgoing writes, idempotent inbound messages, statuses, history, chats.

The app here runs without background workers, so the outbox rows written by the journal stay
where the journal put them and no status arrives on its own.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from maxgate.app import create_app
from maxgate.blobs import StoredBlob
from maxgate.domain import journal as journal_module
from maxgate.domain.messenger import InboundFile, InboundMessage
from maxgate.domain.records import Location, SharedContact
from maxgate.errors import StoreConflict
from maxgate.runtime import Runtime
from maxgate.settings import Settings
from maxgate.store import tables as t
from tests.conftest import Account

CONTACT = "20000001"


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    """The app with its lifespan running, but no workers (overrides the shared fixture)."""
    application = create_app(settings, workers=False)
    async with application.router.lifespan_context(application):
        yield application


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _blob(runtime: Runtime, data: bytes = b"%PDF-1.4 test") -> StoredBlob:
    return await runtime.blobs.write(_chunks(data))


async def _count(runtime: Runtime, table: sa.Table, *where: Any) -> int:
    async with runtime.db.read() as conn:
        query = sa.select(sa.func.count()).select_from(table)
        if where:
            query = query.where(*where)
        return int((await conn.execute(query)).scalar_one())


def _inbound(account: Account, id_message: str, **changes: Any) -> InboundMessage:
    values: dict[str, Any] = {
        "instance_id": account.id,
        "chat_id": CONTACT,
        "chat_type": "user",
        "chat_name": "Carol",
        "sender_id": CONTACT,
        "sender_name": "Carol",
        "sender_phone": 79001234567,
        "id_message": id_message,
        "timestamp": int(time.time()),
        "type_message": "textMessage",
        "text": "hello",
    }
    values.update(changes)
    return InboundMessage(**values)


async def test_record_outgoing_writes_message_outbox_and_chat(
    runtime: Runtime, account: Account
) -> None:
    notified: list[None] = []
    runtime.journal.on_outbox = lambda: notified.append(None)
    message = await runtime.journal.record_outgoing(account.instance, CONTACT, text="hi there")

    assert message.direction == "outgoing" and message.status == "pending"
    assert message.text == "hi there" and message.send_by_api
    assert message.sender_id == account.chat_id and message.sender_name == "Alice"
    assert message.id_message.isdigit() and message.file is None
    async with runtime.db.read() as conn:
        entry = (await conn.execute(sa.select(t.outbox))).one()
        chat = (await conn.execute(sa.select(t.chats))).one()
    assert entry.message_id == message.pk and entry.instance_id == account.id
    assert entry.state == "pending" and entry.attempts == 0
    assert (chat.instance_id, chat.chat_id, chat.type) == (account.id, CONTACT, "user")
    assert notified == [None]


async def test_record_outgoing_with_a_file(runtime: Runtime, account: Account) -> None:
    blob = await _blob(runtime)
    message = await runtime.journal.record_outgoing(
        account.instance,
        CONTACT,
        blob=blob,
        file_name="report.pdf",
        mime_type="application/pdf",
        type_message="documentMessage",
        caption="the report",
    )
    assert message.file is not None
    assert message.file.state == "stored" and message.file.sha256 == blob.sha256
    assert message.file.size == blob.size and message.file.file_name == "report.pdf"
    assert message.caption == "the report" and message.type_message == "documentMessage"
    assert await _count(runtime, t.blobs, t.blobs.c.sha256 == blob.sha256) == 1
    assert await _count(runtime, t.outbox) == 1


async def test_a_duplicate_inside_record_outgoing_leaves_nothing_behind(
    runtime: Runtime, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module.ids, "new_message_id", lambda: "4242")
    first = await runtime.journal.record_outgoing(account.instance, CONTACT, text="one")
    async with runtime.db.read() as conn:
        chat_before = (await conn.execute(sa.select(t.chats.c.last_at))).scalar_one()

    notified: list[None] = []
    runtime.journal.on_outbox = lambda: notified.append(None)
    blob = await _blob(runtime, b"second file")
    with pytest.raises(StoreConflict):
        await runtime.journal.record_outgoing(
            account.instance, CONTACT, blob=blob, file_name="a.txt", mime_type="text/plain"
        )

    assert await _count(runtime, t.messages) == 1
    assert await _count(runtime, t.outbox) == 1
    assert await _count(runtime, t.files) == 0  # the file row went with the transaction
    assert await _count(runtime, t.blobs) == 0
    async with runtime.db.read() as conn:
        chat_after = (await conn.execute(sa.select(t.chats.c.last_at))).scalar_one()
    assert chat_after == chat_before
    assert notified == []
    assert (await runtime.journal.get(account.id, CONTACT, "4242")) == first


async def test_a_failure_at_the_end_of_record_outgoing_leaves_nothing_behind(
    runtime: Runtime, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_touch_chat(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(runtime.journal, "_touch_chat", broken_touch_chat)
    blob = await _blob(runtime)
    with pytest.raises(RuntimeError, match="disk full"):
        await runtime.journal.record_outgoing(
            account.instance, CONTACT, blob=blob, file_name="r.pdf", mime_type="application/pdf"
        )
    for table in (t.messages, t.outbox, t.files, t.blobs, t.chats):
        assert await _count(runtime, table) == 0, table.name


async def test_on_message_is_idempotent(runtime: Runtime, account: Account) -> None:
    remote: list[None] = []
    runtime.journal.on_remote_file = lambda: remote.append(None)
    inbound = _inbound(
        account,
        "777",
        type_message="documentMessage",
        text=None,
        caption="see this",
        file=InboundFile("ref-1", "doc.pdf", "application/pdf", 1234),
    )
    await runtime.journal.on_message(inbound)
    await runtime.journal.on_message(inbound)
    await runtime.journal.on_message(inbound)

    assert await _count(runtime, t.messages) == 1
    assert await _count(runtime, t.files) == 1
    assert remote == [None]  # the mirror is woken for the new file only
    message = await runtime.journal.get(account.id, CONTACT, "777")
    assert message is not None and message.direction == "incoming" and message.status is None
    assert message.caption == "see this" and message.sender_name == "Carol"
    assert message.file is not None
    assert message.file.state == "remote" and message.file.upstream_ref == "ref-1"
    assert message.file.size == 1234 and message.file.sha256 is None
    assert await _count(runtime, t.outbox) == 0  # incoming messages are not queued


async def test_the_same_id_message_in_another_chat_is_another_message(
    runtime: Runtime, account: Account
) -> None:
    await runtime.journal.on_message(_inbound(account, "900"))
    await runtime.journal.on_message(_inbound(account, "900", chat_id="20000002"))
    assert await _count(runtime, t.messages) == 2


async def test_on_status_never_goes_backwards(runtime: Runtime, account: Account) -> None:
    message = await runtime.journal.record_outgoing(account.instance, CONTACT, text="x")

    async def status_after(status: str) -> str | None:
        await runtime.journal.on_status(account.id, CONTACT, message.id_message, status)
        fresh = await runtime.journal.get(account.id, CONTACT, message.id_message)
        assert fresh is not None
        return fresh.status

    assert await status_after("delivered") == "delivered"  # a skipped step is fine
    assert await status_after("sent") == "delivered"
    assert await status_after("pending") == "delivered"
    assert await status_after("read") == "read"
    assert await status_after("delivered") == "read"
    assert await status_after("bogus") == "read"
    assert await status_after("failed") == "failed"
    assert await status_after("read") == "failed"


async def test_on_status_ignores_unknown_and_incoming_messages(
    runtime: Runtime, account: Account
) -> None:
    await runtime.journal.on_status(account.id, CONTACT, "no-such-id", "read")  # no error
    await runtime.journal.on_message(_inbound(account, "55"))
    await runtime.journal.on_status(account.id, CONTACT, "55", "read")
    incoming = await runtime.journal.get(account.id, CONTACT, "55")
    assert incoming is not None and incoming.status is None


async def test_history_is_newest_first_and_counted(runtime: Runtime, account: Account) -> None:
    now = int(time.time())
    for id_message, age in (("a", 300), ("b", 100), ("c", 200)):
        await runtime.journal.on_message(_inbound(account, id_message, timestamp=now - age))
    sent = [
        await runtime.journal.record_outgoing(account.instance, CONTACT, text=f"out {n}")
        for n in range(3)
    ]
    await runtime.journal.on_message(_inbound(account, "elsewhere", chat_id="20000009"))

    history = await runtime.journal.history(account.id, CONTACT, 100)
    expected = [m.id_message for m in reversed(sent)] + ["b", "c", "a"]
    assert [m.id_message for m in history] == expected
    assert [m.id_message for m in await runtime.journal.history(account.id, CONTACT, 2)] == (
        expected[:2]
    )
    assert await runtime.journal.history(account.id, "20000099", 10) == []

    outgoing = await runtime.journal.last(account.id, "outgoing", 5)
    assert [m.id_message for m in outgoing] == [m.id_message for m in reversed(sent)]
    incoming = await runtime.journal.last(account.id, "incoming", 4)  # "a" is 5 minutes old
    assert {m.id_message for m in incoming} == {"b", "elsewhere", "c"}


async def test_chats_are_listed_most_recent_first(runtime: Runtime, account: Account) -> None:
    await runtime.journal.on_message(_inbound(account, "1", chat_id="20000001", chat_name="Carol"))
    await runtime.journal.on_message(
        _inbound(
            account,
            "2",
            chat_id="-10000000000001",
            chat_type="group",
            chat_name="Team",
            sender_phone=79005554433,
        )
    )
    await runtime.journal.record_outgoing(account.instance, "20000003", text="new chat")
    await runtime.journal.record_outgoing(account.instance, "20000001", text="back to Carol")

    chats = await runtime.journal.chats(account.id)
    assert [c["chat_id"] for c in chats] == ["20000001", "20000003", "-10000000000001"]
    by_id = {c["chat_id"]: c for c in chats}
    assert by_id["20000001"] == {
        "chat_id": "20000001",
        "phone": 79001234567,
        "name": "Carol",  # an outgoing message does not erase the name
        "type": "user",
    }
    assert by_id["-10000000000001"]["type"] == "group"
    assert by_id["-10000000000001"]["phone"] == 0 and by_id["-10000000000001"]["name"] == "Team"
    assert by_id["20000003"]["type"] == "user"


async def test_chats_are_per_instance(
    runtime: Runtime, account: Account, other_account: Account
) -> None:
    await runtime.journal.record_outgoing(account.instance, CONTACT, text="mine")
    assert await runtime.journal.chats(other_account.id) == []
    assert await runtime.journal.history(other_account.id, CONTACT, 10) == []


async def test_file_of_a_message(
    runtime: Runtime, account: Account, other_account: Account
) -> None:
    with_file = _inbound(
        account,
        "901",
        type_message="documentMessage",
        text=None,
        file=InboundFile("ref-9", "doc.pdf", "application/pdf", 99),
    )
    await runtime.journal.on_message(with_file)
    await runtime.journal.on_message(_inbound(account, "902"))  # a text message
    message = await runtime.journal.get(account.id, CONTACT, "901")
    assert message is not None and message.file is not None
    assert await runtime.journal.file_of(account.id, CONTACT, "901") == message.file
    assert await runtime.journal.file_of(account.id, CONTACT, "902") is None  # no file
    assert await runtime.journal.file_of(account.id, CONTACT, "903") is None  # no message
    assert await runtime.journal.file_of(account.id, "20000009", "901") is None  # other chat
    assert await runtime.journal.file_of(other_account.id, CONTACT, "901") is None


# --- what the messenger changes later: edits, removals; what a message carries besides text --


async def _queued(runtime: Runtime, account: Account) -> list[dict[str, Any]]:
    """The instance's queued notification bodies, oldest first (the queue is emptied)."""
    bodies = []
    while (head := await runtime.notifications.head(account.id)) is not None:
        bodies.append(head["body"])
        await runtime.notifications.delete(account.id, head["receiptId"])
    return bodies


async def test_an_edit_changes_the_text_marks_it_and_is_notified_once(
    runtime: Runtime, account: Account
) -> None:
    await runtime.journal.on_message(_inbound(account, "501", upstream_id="mid.501"))
    await _queued(runtime, account)
    edited = _inbound(account, "501", text="hello, edited", upstream_id="mid.501")
    await runtime.journal.on_edit(edited)
    await runtime.journal.on_edit(edited)  # MAX delivers at least once

    message = await runtime.journal.get(account.id, CONTACT, "501")
    assert message is not None and message.is_edited and not message.is_deleted
    assert message.text == "hello, edited"
    [body] = await _queued(runtime, account)
    assert body["typeWebhook"] == "incomingMessageReceived"
    assert body["messageData"] == {
        "typeMessage": "editedMessage",
        "editedMessageData": {"textMessage": "hello, edited", "stanzaId": "501"},
    }
    assert body["idMessage"] != "501"  # the edit's own id; the message keeps its own
    assert body["senderData"]["chatId"] == CONTACT and body["senderData"]["sender"] == CONTACT


async def test_an_edit_found_by_the_messengers_id_changes_a_files_caption(
    runtime: Runtime, account: Account
) -> None:
    document = _inbound(
        account, "502", type_message="documentMessage", text=None, caption="v1",
        file=InboundFile("ref-2", "a.pdf", "application/pdf", 3), upstream_id="mid.502",
    )  # fmt: skip
    await runtime.journal.on_message(document)
    await _queued(runtime, account)
    # Named only by the upstream id: another idMessage, no chat.
    await runtime.journal.on_edit(
        _inbound(account, "0", chat_id="0", text=None, caption="v2", upstream_id="mid.502")
    )
    message = await runtime.journal.get(account.id, CONTACT, "502")
    assert message is not None and (message.caption, message.is_edited) == ("v2", True)
    [body] = await _queued(runtime, account)
    assert body["messageData"]["editedMessageData"] == {"textMessage": "v2", "stanzaId": "502"}


async def test_an_edit_of_an_unknown_message_is_skipped(runtime: Runtime, account: Account) -> None:
    await runtime.journal.on_edit(_inbound(account, "404", upstream_id="mid.404"))
    assert await _count(runtime, t.messages) == 0
    assert await _queued(runtime, account) == []


async def test_a_removal_marks_the_message_deleted_and_is_notified_once(
    runtime: Runtime, account: Account
) -> None:
    await runtime.journal.on_message(_inbound(account, "601", upstream_id="mid.601"))
    await _queued(runtime, account)
    await runtime.journal.on_delete(account.id, upstream_id="mid.601")
    await runtime.journal.on_delete(account.id, upstream_id="mid.601")
    await runtime.journal.on_delete(account.id, upstream_id="mid.unknown")

    message = await runtime.journal.get(account.id, CONTACT, "601")
    assert message is not None and message.is_deleted and message.text == "hello"
    [body] = await _queued(runtime, account)
    assert body["typeWebhook"] == "incomingMessageReceived"
    assert body["messageData"] == {
        "typeMessage": "deletedMessage",
        "deletedMessageData": {"stanzaId": "601"},
    }
    # A removed message is not edited any more.
    await runtime.journal.on_edit(_inbound(account, "601", text="late", upstream_id="mid.601"))
    assert await _queued(runtime, account) == []


async def test_an_own_message_removed_is_an_outgoing_notification(
    runtime: Runtime, account: Account
) -> None:
    sent = await runtime.journal.record_outgoing(account.instance, CONTACT, text="oops")
    await runtime.journal.set_upstream_id(sent, "mid.own")
    await _queued(runtime, account)
    await runtime.journal.on_delete(account.id, chat_id=CONTACT, id_message=sent.id_message)
    [body] = await _queued(runtime, account)
    assert body["typeWebhook"] == "outgoingAPIMessageReceived"
    assert body["messageData"]["deletedMessageData"] == {"stanzaId": sent.id_message}


async def test_edits_and_removals_follow_their_settings(runtime: Runtime, account: Account) -> None:
    await runtime.instances.update_settings(
        account.id, {"editedMessageWebhook": "no", "deletedMessageWebhook": "no"}
    )
    await runtime.journal.on_message(_inbound(account, "701", upstream_id="mid.701"))
    await _queued(runtime, account)
    await runtime.journal.on_edit(_inbound(account, "701", text="x", upstream_id="mid.701"))
    await runtime.journal.on_delete(account.id, upstream_id="mid.701")
    message = await runtime.journal.get(account.id, CONTACT, "701")
    assert message is not None and message.is_edited and message.is_deleted  # journaled
    assert await _queued(runtime, account) == []  # but not notified


async def test_a_location_and_a_contact_are_journaled_and_notified(
    runtime: Runtime, account: Account
) -> None:
    where = Location(latitude=55.75, longitude=37.62)
    card = SharedContact(
        display_name="Anna", vcard="BEGIN:VCARD\nFN:Anna\nEND:VCARD", phone="79991112233"
    )
    await runtime.journal.on_message(
        _inbound(account, "801", type_message="locationMessage", text=None, location=where)
    )
    await runtime.journal.on_message(
        _inbound(account, "802", type_message="contactMessage", text=None, contact=card)
    )
    located = await runtime.journal.get(account.id, CONTACT, "801")
    carded = await runtime.journal.get(account.id, CONTACT, "802")
    assert located is not None and located.location == where and located.contact is None
    assert carded is not None and carded.contact == card
    first, second = await _queued(runtime, account)
    assert first["messageData"] == {
        "typeMessage": "locationMessage",
        "locationMessageData": {
            "latitude": 55.75, "longitude": 37.62, "forwardingScore": 0, "isForwarded": False,
        },
    }  # fmt: skip
    assert second["messageData"]["contactMessageData"] == {
        "chatId": "", "urlAvatar": "", "phoneNumber": "79991112233", "displayName": "Anna",
        "vcard": "BEGIN:VCARD\nFN:Anna\nEND:VCARD", "forwardingScore": 0, "isForwarded": False,
    }  # fmt: skip
