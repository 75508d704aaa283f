"""Edits, deletions, read marks, voice, logout and the faults a connector must survive, as
PyMax sees them."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest
from pymax import File, Voice, WebClient
from pymax.exceptions import UploadError
from pymax.types import AudioAttachment, MessageDeleteEvent, MessageReadEvent
from pymax.types.domain import Message

from maxgate.fakemax.web import WebFake
from maxgate.fakemax.web.opcodes import Op
from tests.fakemax.web.conftest import ClientFactory, eventually, next_of


async def test_edit_delete_and_read_events(web: WebFake, make_client: ClientFactory) -> None:
    client = make_client()
    edits: asyncio.Queue[Message] = asyncio.Queue()
    deletions: asyncio.Queue[MessageDeleteEvent] = asyncio.Queue()
    reads: asyncio.Queue[MessageReadEvent] = asyncio.Queue()

    @client.on_message_edit()
    async def edited(message: Message, _: WebClient) -> None:
        edits.put_nowait(message)

    @client.on_message_delete()
    async def deleted(event: MessageDeleteEvent, _: WebClient) -> None:
        deletions.put_nowait(event)

    @client.on_message_read()
    async def read(event: MessageReadEvent, _: WebClient) -> None:
        reads.put_nowait(event)

    await client.connect()
    ivan = web.add_user("Ivan")
    sent = await web.user_sends(ivan.user_id, "typo")
    await web.edit_message(sent.chat_id, sent.message_id, "fixed")
    got = await next_of(edits)
    assert (got.id, got.text, got.status) == (sent.message_id, "fixed", "EDITED")

    await web.delete_message(sent.chat_id, sent.message_id)
    gone = await next_of(deletions)
    assert (gone.chat_id, gone.message_ids) == (sent.chat_id, [sent.message_id])
    assert await client.fetch_history(sent.chat_id) == []

    mine = await client.send_message(sent.chat_id, "read me")
    mark = await web.user_reads(ivan.user_id)
    seen = await next_of(reads)
    assert (seen.chat_id, seen.user_id, seen.mark) == (sent.chat_id, ivan.user_id, mark)
    assert mark == mine.time


async def test_voice_both_ways(web: WebFake, make_client: ClientFactory) -> None:
    client = make_client()
    inbox: asyncio.Queue[Message] = asyncio.Queue()

    @client.on_message()
    async def received(message: Message, _: WebClient) -> None:
        inbox.put_nowait(message)

    await client.connect()
    ivan = web.add_user("Ivan")
    await web.user_sends(ivan.user_id, files=[("audio", "voice.ogg", b"OggS voice")])
    [audio] = (await next_of(inbox)).attaches
    assert isinstance(audio, AudioAttachment) and audio.url is not None
    async with httpx.AsyncClient() as http:
        assert (await http.get(audio.url)).content == b"OggS voice"

    # PyMax sends a voice at once; the fake answers attachment.not.ready until processed,
    # PyMax waits for NOTIF_ATTACH {audioId} and sends again (MessageService.send_message).
    web.config = dataclasses.replace(web.config, attach_ready_seconds=0.3)
    chat_id = web.account.user_id ^ ivan.user_id
    sent = await client.send_message(
        chat_id, attachments=[Voice(b"OggS mine", name="v.ogg", duration=1000)]
    )
    [mine] = sent.attaches
    assert isinstance(mine, AudioAttachment)
    assert len(web.sent_by_account(chat_id)) == 1
    [peer] = web.peers
    assert peer.conn.opcodes.count(Op.MSG_SEND) == 2  # refused once, then sent


async def test_a_lost_upload_fails_and_a_retry_sends_once(
    web: WebFake, make_client: ClientFactory
) -> None:
    client = make_client()
    await client.connect()
    ivan = web.add_user("Ivan")
    chat_id = web.account.user_id ^ ivan.user_id
    web.faults.drop_uploads = 1
    with pytest.raises(UploadError):
        await client.send_message(chat_id, attachments=[File(b"x" * 300_000, name="a.bin")])
    assert web.sent_by_account(chat_id) == []
    sent = await client.send_message(chat_id, attachments=[File(b"x" * 300_000, name="a.bin")])
    assert [m.message_id for m in web.sent_by_account(chat_id)] == [sent.id]


async def test_a_socket_lost_mid_request(web: WebFake, make_client: ClientFactory) -> None:
    client = make_client()
    await client.connect()
    ivan = web.add_user("Ivan")
    web.faults.drop_requests[Op.MSG_SEND] = 1
    with pytest.raises(ConnectionError):
        await client.send_message(web.account.user_id ^ ivan.user_id, "lost")
    await eventually(lambda: not client.is_connected)
    assert web.sent_by_account(web.account.user_id ^ ivan.user_id) == []


async def test_logout_ends_the_session(web: WebFake, make_client: ClientFactory) -> None:
    client = make_client()
    await client.connect()
    assert await client.logout() is True
    await eventually(lambda: not client.is_connected)
    assert all(session.revoked for session in web.world.sessions.values())
