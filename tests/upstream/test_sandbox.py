"""The sandbox messenger, for real, inside a running app: delivery, groups, statuses, files,
and the rest of the port: state, QR and 2FA login, phones, contacts, chats, history."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from PIL import Image

from maxgate.blobs import BlobStore, StoredBlob
from maxgate.domain.messenger import (
    MESSENGER_METHODS,
    ChatInfo,
    Contact,
    InboundFile,
    InboundMessage,
)
from maxgate.domain.records import FileRecord, Instance, Location, Message, SharedContact
from maxgate.errors import StoreError, UpstreamError, UpstreamFileGone
from maxgate.runtime import Runtime
from maxgate.settings import Settings
from maxgate.store import sandbox as sandbox_store
from maxgate.upstream import sandboxlogin
from maxgate.upstream.references import Reference
from maxgate.upstream.sandbox import CAPABILITIES, Sandbox
from tests.conftest import Account, contact_sends_file

CONTACT = "20000001"


async def eventually(check: Callable[[], Any], *, timeout: float = 10.0) -> Any:
    """Poll ``check`` (sync or async) until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 1000):
        yield data[start : start + 1000]


async def _blob(store: BlobStore, data: bytes) -> StoredBlob:
    return await store.write(_chunks(data))


async def _read(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def _status(runtime: Runtime, message: Message) -> str | None:
    fresh = await runtime.journal.get(message.instance_id, message.chat_id, message.id_message)
    assert fresh is not None
    return fresh.status


async def _reaches_read(runtime: Runtime, message: Message) -> None:
    async def read() -> bool:
        return await _status(runtime, message) == "read"

    await eventually(read)


async def test_direct_delivery_by_chat_id(
    runtime: Runtime, account: Account, other_account: Account
) -> None:
    sent = await runtime.journal.record_outgoing(
        account.instance, other_account.chat_id, text="hi Bob"
    )

    async def delivered() -> list[Message]:
        return await runtime.journal.history(other_account.id, account.chat_id, 10)

    [received] = await eventually(delivered)
    assert received.direction == "incoming"
    assert received.id_message == sent.id_message
    assert received.text == "hi Bob" and received.type_message == "textMessage"
    assert received.sender_id == account.chat_id and received.sender_name == "Alice"
    assert await runtime.journal.chats(other_account.id) == [
        {
            "chat_id": account.chat_id,
            "phone": account.instance.phone,
            "name": "Alice",
            "type": "user",
        }
    ]
    await _reaches_read(runtime, sent)
    # the sender has only its outgoing copy
    [own] = await runtime.journal.history(account.id, other_account.chat_id, 10)
    assert own.direction == "outgoing"


async def test_group_delivery_reaches_every_member_but_the_sender(
    runtime: Runtime, account: Account, other_account: Account
) -> None:
    carol, _ = await runtime.instances.create(name="Carol")
    outsider, _ = await runtime.instances.create(name="Dave")
    group = await runtime.sandbox.create_group("Team", [account.id, other_account.id, carol.id])
    assert group.startswith("-") and group[1:].isdigit() and int(group) < 0

    sent = await runtime.journal.record_outgoing(account.instance, group, text="hello team")
    for member in (other_account.id, carol.id):

        async def arrived(member: int = member) -> list[Message]:
            return await runtime.journal.history(member, group, 10)

        [received] = await eventually(arrived)
        assert received.direction == "incoming" and received.text == "hello team"
        assert received.sender_id == account.chat_id and received.sender_name == "Alice"
        [chat] = await runtime.journal.chats(member)
        assert chat == {"chat_id": group, "phone": 0, "name": "Team", "type": "group"}
    await _reaches_read(runtime, sent)
    [own] = await runtime.journal.history(account.id, group, 10)
    assert own.direction == "outgoing"  # no echo to the sender
    assert await runtime.journal.chats(outsider.id) == []


async def test_a_chat_id_that_is_no_instance_delivers_nowhere_but_is_read(
    runtime: Runtime, account: Account, other_account: Account
) -> None:
    sent = await runtime.journal.record_outgoing(account.instance, CONTACT, text="to a contact")
    await _reaches_read(runtime, sent)
    assert await runtime.journal.last(account.id, "incoming", 5) == []
    assert await runtime.journal.last(other_account.id, "incoming", 5) == []
    assert await runtime.journal.chats(other_account.id) == []


async def test_statuses_go_sent_delivered_read(
    runtime: Runtime, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    reported: list[str] = []
    apply_status = runtime.journal.on_status

    async def recording(instance_id: int, chat_id: str, id_message: str, status: str) -> None:
        reported.append(status)  # what the outbox ("sent") and the sandbox report, in order
        await apply_status(instance_id, chat_id, id_message, status)

    monkeypatch.setattr(runtime.journal, "on_status", recording)
    sent = await runtime.journal.record_outgoing(account.instance, CONTACT, text="watch me")
    seen: list[str | None] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = await _status(runtime, sent)
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "read":
            break
        await asyncio.sleep(0.005)
    assert reported == ["sent", "delivered", "read"]
    order = ["pending", "sent", "delivered", "read"]
    assert seen[-1] == "read", seen
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)  # no going back


async def test_a_repeated_send_is_delivered_once(
    runtime: Runtime, account: Account, other_account: Account
) -> None:
    """At-least-once sending after a crash: the recipient drops the repeated idMessage."""
    message = Message(
        pk=0,
        instance_id=account.id,
        chat_id=other_account.chat_id,
        id_message="1700000000000123",
        direction="outgoing",
        type_message="textMessage",
        timestamp=int(time.time()),
        sender_id=account.chat_id,
        sender_name="Alice",
        text="twice",
        caption="",
        status="pending",
        status_description=None,
        send_by_api=True,
        quoted_id=None,
        file=None,
    )
    assert await runtime.sandbox.send(account.instance, message, None) == message.id_message
    await runtime.sandbox.send(account.instance, message, None)
    history = await runtime.journal.history(other_account.id, account.chat_id, 10)
    assert [m.id_message for m in history] == [message.id_message]


async def test_a_sent_file_arrives_and_fetch_file_returns_its_bytes(
    runtime: Runtime, account: Account, other_account: Account
) -> None:
    data = b"%PDF-1.4\n" + bytes(range(256)) * 100
    blob = await _blob(runtime.blobs, data)
    await runtime.journal.record_outgoing(
        account.instance,
        other_account.chat_id,
        blob=blob,
        file_name="report.pdf",
        mime_type="application/pdf",
        type_message="documentMessage",
        caption="the report",
    )

    async def delivered() -> list[Message]:
        return await runtime.journal.history(other_account.id, account.chat_id, 10)

    [received] = await eventually(delivered)
    assert received.type_message == "documentMessage" and received.caption == "the report"
    assert received.file is not None and received.file.upstream_ref
    assert received.file.file_name == "report.pdf"
    assert received.file.mime_type == "application/pdf"
    assert await _read(runtime.sandbox.fetch_file(other_account.id, received.file)) == data

    async def mirrored() -> bool:  # eager mirroring brings the bytes into our storage
        assert received.file is not None
        fresh = await runtime.files.get(received.file.id)
        return fresh is not None and fresh.state == "stored"

    await eventually(mirrored)
    fresh = await runtime.files.get(received.file.id)
    assert fresh is not None and fresh.sha256 == blob.sha256


async def test_a_file_message_without_bytes_is_refused(runtime: Runtime, account: Account) -> None:
    blob = await _blob(runtime.blobs, b"bytes")
    queued = await runtime.journal.record_outgoing(
        account.instance, CONTACT, blob=blob, file_name="a.bin", mime_type="a/b"
    )
    with pytest.raises(UpstreamError):
        await runtime.sandbox.send(account.instance, queued, None)


@pytest.fixture
async def forgetful(settings: Settings) -> AsyncIterator[Runtime]:
    """A runtime (no workers) whose sandbox forgets files after 0.3 s."""
    runtime = Runtime(dataclasses.replace(settings, sandbox_retention=0.3))
    await runtime.open()
    try:
        yield runtime
    finally:
        await runtime.close()


async def test_the_sandbox_forgets_files_after_its_retention(forgetful: Runtime) -> None:
    alice, _ = await forgetful.instances.create(name="Alice")
    ref = await forgetful.sandbox.keep_file(_chunks(b"short-lived"))
    id_message = await forgetful.sandbox.contact_send(
        alice.id,
        CONTACT,
        file=InboundFile(ref, "note.txt", "text/plain", 11),
        type_message="documentMessage",
    )
    message = await forgetful.journal.get(alice.id, CONTACT, id_message)
    assert message is not None and message.file is not None
    assert await _read(forgetful.sandbox.fetch_file(alice.id, message.file)) == b"short-lived"

    await asyncio.sleep(0.4)
    with pytest.raises(UpstreamFileGone):
        await _read(forgetful.sandbox.fetch_file(alice.id, message.file))
    with pytest.raises(UpstreamFileGone):
        await forgetful.files.materialize(message.file)
    fresh = await forgetful.files.get(message.file.id)
    assert fresh is not None and fresh.state == "remote"


async def test_fetching_an_unknown_reference_is_gone(runtime: Runtime, account: Account) -> None:
    ref = await runtime.sandbox.keep_file(_chunks(b"known"))
    await runtime.sandbox.contact_send(
        account.id, CONTACT, file=InboundFile(ref, "k.txt", "text/plain"), type_message="x"
    )
    [message] = await runtime.journal.history(account.id, CONTACT, 1)
    assert message.file is not None
    bogus = dataclasses.replace(message.file, upstream_ref="0" * 32)
    with pytest.raises(UpstreamFileGone):
        await _read(runtime.sandbox.fetch_file(account.id, bogus))
    with pytest.raises(UpstreamFileGone):
        await _read(
            runtime.sandbox.fetch_file(account.id, dataclasses.replace(bogus, upstream_ref=None))
        )


async def test_check_account(runtime: Runtime, account: Account, other_account: Account) -> None:
    assert await runtime.sandbox.check_account(account.instance.phone) == account.chat_id
    assert await runtime.sandbox.check_account(other_account.instance.phone) == (
        other_account.chat_id
    )
    assert await runtime.sandbox.check_account(79000000000) is None
    await runtime.instances.delete(other_account.id)
    assert await runtime.sandbox.check_account(other_account.instance.phone) is None


async def test_contact_send_creates_an_incoming_message(runtime: Runtime, account: Account) -> None:
    id_message = await runtime.sandbox.contact_send(
        account.id, CONTACT, text="hello from a contact", sender_name="Carol"
    )
    assert id_message.isdigit()
    message = await runtime.journal.get(account.id, CONTACT, id_message)
    assert message is not None
    assert message.direction == "incoming" and message.text == "hello from a contact"
    assert message.sender_id == CONTACT and message.sender_name == "Carol"
    assert message.type_message == "textMessage" and message.status is None
    [chat] = await runtime.journal.chats(account.id)
    assert chat["chat_id"] == CONTACT and chat["name"] == "Carol" and chat["type"] == "user"


async def test_a_contact_sends_a_location_and_a_contact_card(
    runtime: Runtime, account: Account
) -> None:
    where = Location(latitude=59.94, longitude=30.31)
    card = SharedContact(display_name="Dan", vcard="BEGIN:VCARD\nFN:Dan\nEND:VCARD")
    sandbox = runtime.sandbox
    located = await sandbox.contact_send(account.id, CONTACT, location=where)
    carded = await sandbox.contact_send(account.id, CONTACT, contact=card)
    first = await runtime.journal.get(account.id, CONTACT, located)
    second = await runtime.journal.get(account.id, CONTACT, carded)
    assert first is not None and (first.type_message, first.location) == ("locationMessage", where)
    assert second is not None and (second.type_message, second.contact) == ("contactMessage", card)
    history = await sandbox.history(account.instance, CONTACT, 0)  # the carried copy keeps them
    assert [(m.location, m.contact) for m in history] == [(where, None), (None, card)]


async def test_contact_send_with_a_file_is_mirrored(runtime: Runtime, account: Account) -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"pixels" * 500
    ref = await runtime.sandbox.keep_file(_chunks(data))
    id_message = await runtime.sandbox.contact_send(
        account.id,
        CONTACT,
        file=InboundFile(ref, "pic.png", "image/png", len(data)),
        caption="look",
        type_message="imageMessage",
    )
    message = await runtime.journal.get(account.id, CONTACT, id_message)
    assert message is not None and message.file is not None
    assert message.caption == "look" and message.type_message == "imageMessage"

    async def stored() -> bool:
        assert message.file is not None
        fresh = await runtime.files.get(message.file.id)
        return fresh is not None and fresh.state == "stored"

    await eventually(stored)
    fresh = await runtime.files.get(message.file.id)
    assert fresh is not None
    assert await _read(await runtime.files.open(fresh)) == data


async def test_an_unstarted_sandbox_refuses_to_deliver(runtime: Runtime) -> None:
    idle = Sandbox(runtime.db, runtime.blobs)
    with pytest.raises(UpstreamError):
        await idle.contact_send(3100000001, CONTACT, text="nobody listens")


# -- the port's account, directory and history operations ------------------------------------


async def _state(runtime: Runtime, instance_id: int) -> str:
    instance = await runtime.instances.get(instance_id)
    assert instance is not None
    return await runtime.sandbox.state(instance)


async def _fresh(runtime: Runtime, instance_id: int) -> Instance:
    instance = await runtime.instances.get(instance_id)
    assert instance is not None
    return instance


def test_the_sandbox_can_do_every_messenger_method_served_today() -> None:
    served = {"sendMessage", "sendFileByUpload", "sendFileByUrl", "checkAccount"}
    served |= {"reboot", "logout", "qr"}
    assert served <= CAPABILITIES
    assert CAPABILITIES <= MESSENGER_METHODS


async def test_state_follows_logout_and_the_scanned_qr_code(
    runtime: Runtime, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandboxlogin, "QR_SCAN_SECONDS", 0.01)
    assert await _state(runtime, account.id) == "authorized"
    assert await runtime.sandbox.qr(account.instance) is None  # already authorised
    await runtime.sandbox.logout(account.instance)
    assert await _state(runtime, account.id) == "notAuthorized"
    png = await runtime.sandbox.qr(await _fresh(runtime, account.id))
    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n")
    assert Image.open(io.BytesIO(png)).size[0] > 50  # a real image, as Pillow reads it

    async def authorized() -> bool:
        return await _state(runtime, account.id) == "authorized"

    await eventually(authorized)
    assert (await _fresh(runtime, account.id)).state == "authorized"  # reported to the sink


async def test_a_qr_login_with_two_factor_waits_for_the_password(
    runtime: Runtime, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandboxlogin, "QR_SCAN_SECONDS", 0.01)
    sandbox = runtime.sandbox
    with pytest.raises(UpstreamError, match=r"no login .* is waiting for a password"):
        await sandbox.send_password(account.instance, "anything")
    sandbox.set_password(account.id, "correct horse")
    await sandbox.logout(account.instance)
    assert await sandbox.qr(await _fresh(runtime, account.id)) is not None
    await eventually(lambda: sandbox.awaits_password(account.id))
    assert await _state(runtime, account.id) == "notAuthorized"  # scanned, not yet in
    assert await sandbox.send_password(account.instance, "wrong") is False
    assert await _state(runtime, account.id) == "notAuthorized"
    assert await sandbox.send_password(account.instance, "correct horse") is True
    assert await _state(runtime, account.id) == "authorized"
    with pytest.raises(UpstreamError):  # the login is over
        await sandbox.send_password(account.instance, "correct horse")


async def test_resolve_phone_finds_sandbox_accounts_only(
    runtime: Runtime, account: Account, other_account: Account
) -> None:
    resolve = runtime.sandbox.resolve_phone
    assert await resolve(account.instance, other_account.instance.phone) == other_account.chat_id
    assert await resolve(account.instance, 79000000000) is None
    bot, _ = await runtime.instances.create(name="Bot", upstream="maxbot")
    assert bot.upstream == "maxbot"
    assert await resolve(account.instance, bot.phone) is None  # not on the sandbox
    assert await runtime.sandbox.state(bot) == "notAuthorized"


async def test_a_send_to_an_instance_of_another_kind_reaches_nobody(
    runtime: Runtime, account: Account
) -> None:
    bot, _ = await runtime.instances.create(name="Bot", upstream="maxbot")
    await runtime.sandbox.own_send(account.instance, bot.chat_id, text="hello bot")
    assert await runtime.journal.last(bot.id, "incoming", 5) == []


async def test_contacts_and_chats_come_from_what_the_sandbox_carried(
    runtime: Runtime, account: Account, other_account: Account
) -> None:
    sandbox = runtime.sandbox
    assert await sandbox.contacts(account.instance) == []
    assert await sandbox.chats(account.instance) == []
    group = await sandbox.create_group("Team", [account.id, other_account.id])
    await sandbox.contact_send(account.id, CONTACT, text="hi", sender_name="Carol")
    await sandbox.own_send(account.instance, other_account.chat_id, text="hi Bob")

    assert await sandbox.contacts(account.instance) == [
        Contact(other_account.chat_id, "Bob", other_account.instance.phone),
        Contact(CONTACT, "Carol", 0),
    ]
    assert await sandbox.chats(account.instance) == [
        ChatInfo(other_account.chat_id, "user", "Bob", other_account.instance.phone),
        ChatInfo(CONTACT, "user", "Carol", 0),
        ChatInfo(group, "group", "Team"),  # a member, though nobody wrote there yet
    ]
    # Bob's side: Alice wrote to him, with her number
    assert await sandbox.contacts(other_account.instance) == [
        Contact(account.chat_id, "Alice", account.instance.phone)
    ]
    await sandbox.own_send(other_account.instance, group, text="team!")
    assert (await sandbox.chats(account.instance))[0] == ChatInfo(group, "group", "Team")


async def test_history_since_is_what_a_backfill_replays_without_duplicates(
    runtime: Runtime, account: Account, other_account: Account
) -> None:
    sandbox = runtime.sandbox
    first = await sandbox.contact_send(account.id, CONTACT, text="one", sender_name="Carol")
    ref = await sandbox.keep_file(_chunks(b"file bytes"))
    second = await sandbox.contact_send(
        account.id,
        CONTACT,
        file=InboundFile(ref, "f.txt", "text/plain", 10),
        type_message="documentMessage",
    )
    mine = await sandbox.own_send(account.instance, CONTACT, text="three")
    history = await sandbox.history(account.instance, CONTACT, 0)
    assert [m.id_message for m in history] == [first, second, mine]
    assert [m.from_me for m in history] == [False, False, True]
    assert all(m.instance_id == account.id and m.chat_id == CONTACT for m in history)
    assert history[0].text == "one" and history[0].sender_name == "Carol"
    assert history[1].file is not None and history[1].file.file_name == "f.txt"
    assert await _read(sandbox.fetch_file(account.id, _as_record(history[1]))) == b"file bytes"

    assert await sandbox.history(account.instance, CONTACT, int(time.time()) + 5) == []
    assert await sandbox.history(account.instance, other_account.chat_id, 0) == []

    # A backfill after a reconnect: the sink takes the history again, the journal keeps one each
    for message in history:
        await runtime.journal.on_message(message)
    journaled = await runtime.journal.history(account.id, CONTACT, 10)
    assert sorted(m.id_message for m in journaled) == sorted([first, second, mine])


async def test_an_api_send_is_in_both_histories(
    runtime: Runtime, account: Account, other_account: Account
) -> None:
    sent = await runtime.journal.record_outgoing(
        account.instance, other_account.chat_id, text="via the API"
    )
    await _reaches_read(runtime, sent)
    [own] = await runtime.sandbox.history(account.instance, other_account.chat_id, 0)
    assert own.id_message == sent.id_message and own.from_me and own.chat_name == "Bob"
    [theirs] = await runtime.sandbox.history(other_account.instance, account.chat_id, 0)
    assert theirs.id_message == sent.id_message and not theirs.from_me
    assert theirs.sender_phone == account.instance.phone


def _as_record(message: InboundMessage) -> FileRecord:
    assert message.file is not None
    return FileRecord(
        id="f" * 32,
        instance_id=message.instance_id,
        state="remote",
        sha256=None,
        size=message.file.size,
        file_name=message.file.file_name,
        mime_type=message.file.mime_type,
        upstream_ref=message.file.ref,
        thumbnail="",
        created_at=0.0,
        stored_at=None,
        expires_at=0.0,
    )


def _expired(file: FileRecord) -> FileRecord:
    assert file.upstream_ref is not None
    ref = Reference.parse(file.upstream_ref)
    old = Reference(ref.file_ref, int(time.time()) - 10, ref.id_message)
    return dataclasses.replace(file, upstream_ref=str(old))


async def test_an_expired_reference_is_resolved_again_through_its_message(
    runtime: Runtime, account: Account
) -> None:
    await contact_sends_file(runtime, account, b"still here", "a.txt", contact=CONTACT)
    [message] = await runtime.journal.history(account.id, CONTACT, 1)
    assert message.file is not None and message.file.upstream_ref is not None
    ref = Reference.parse(message.file.upstream_ref)
    assert ref.expires is not None and ref.expires > time.time()  # handed out with an expiry
    assert ref.id_message == message.id_message

    expired = _expired(message.file)
    assert await _read(runtime.sandbox.fetch_file(account.id, expired)) == b"still here"
    # The resolution goes through the message: once the messenger dropped it, the file is gone
    assert await runtime.sandbox.forget_message(account.id, message.id_message)
    with pytest.raises(UpstreamFileGone, match="message"):
        await _read(runtime.sandbox.fetch_file(account.id, expired))
    # while a reference still good is served as before
    assert await _read(runtime.sandbox.fetch_file(account.id, message.file)) == b"still here"
    # and the message of another account is no way in
    bob, _ = await runtime.instances.create(name="Bob")
    with pytest.raises(UpstreamFileGone):
        await _read(runtime.sandbox.fetch_file(bob.id, _expired(message.file)))


async def test_references_round_trip() -> None:
    ref = Reference("ab" * 16, 1700000000, "123")
    assert Reference.parse(str(ref)) == ref
    assert Reference.parse("ab" * 16) == Reference("ab" * 16)  # a bare one never expires
    assert str(Reference("cd" * 16)) == "cd" * 16


async def test_without_a_url_lifetime_references_are_bare(runtime: Runtime) -> None:
    sandbox = Sandbox(runtime.db, runtime.blobs, url_lifetime=0)
    await sandbox.start(runtime.journal)
    alice, _ = await runtime.instances.create(name="Alice")
    ref = await sandbox.keep_file(_chunks(b"bare"))
    id_message = await sandbox.contact_send(
        alice.id, CONTACT, file=InboundFile(ref, "b.txt", "text/plain"), type_message="x"
    )
    message = await runtime.journal.get(alice.id, CONTACT, id_message)
    assert message is not None and message.file is not None
    assert message.file.upstream_ref == ref


async def test_concurrent_messages_are_all_kept_in_one_go(
    runtime: Runtime, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    record = sandbox_store.record

    async def counting(db: Any, carried: list[Any]) -> None:
        batches.append(len(carried))
        await record(db, carried)

    monkeypatch.setattr(sandbox_store, "record", counting)
    sent = await asyncio.gather(
        *[runtime.sandbox.contact_send(account.id, CONTACT, text=str(n)) for n in range(40)]
    )
    history = await runtime.sandbox.history(account.instance, CONTACT, 0)
    assert sorted(m.id_message for m in history) == sorted(sent)
    assert sum(batches) == 40 and len(batches) < 40  # group-committed
    assert len(await runtime.journal.history(account.id, CONTACT, 100)) == 40


async def test_a_message_the_sandbox_could_not_keep_is_not_reported(
    runtime: Runtime, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing(db: Any, carried: list[Any]) -> None:
        raise StoreError("the database is gone")

    monkeypatch.setattr(sandbox_store, "record", failing)
    with pytest.raises(StoreError):
        await runtime.sandbox.contact_send(account.id, CONTACT, text="lost")
    assert await runtime.journal.history(account.id, CONTACT, 10) == []
