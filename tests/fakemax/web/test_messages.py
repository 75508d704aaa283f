"""Messages and files both ways: what the fake pushes, PyMax parses into its own types."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest
from pymax import File, Photo, Video, WebClient
from pymax.exceptions import ApiError
from pymax.types import FileAttachment, PhotoAttachment, VideoAttachment
from pymax.types.domain import Message

from maxgate.fakemax.web import WebFake
from tests.fakemax.web.conftest import ClientFactory, next_of

PDF = b"%PDF-1.4 fake " * 1000
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 5000


async def logged_in(make_client: ClientFactory) -> tuple[WebClient, asyncio.Queue[Message]]:
    """A logged-in client whose incoming messages land in a queue."""
    client = make_client()
    inbox: asyncio.Queue[Message] = asyncio.Queue()

    @client.on_message()
    async def received(message: Message, _: WebClient) -> None:
        inbox.put_nowait(message)

    await client.connect()
    return client, inbox


async def fetch(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(url)


async def test_a_text_message_is_parsed_by_pymax(web: WebFake, make_client: ClientFactory) -> None:
    _, inbox = await logged_in(make_client)
    ivan = web.add_user("Ivan", "Petrov")
    sent = await web.user_sends(ivan.user_id, "привет")
    got = await next_of(inbox)
    assert isinstance(got, Message)
    assert (got.id, got.text, got.sender) == (sent.message_id, "привет", ivan.user_id)
    assert got.chat_id == web.account.user_id ^ ivan.user_id  # UserService.get_chat_id
    assert got.id >> 16 == got.time  # the id's structure, as MAX's own ids have it
    assert len(str(got.id)) == 18


async def test_a_file_message_and_its_temporary_url(
    web: WebFake, make_client: ClientFactory
) -> None:
    client, inbox = await logged_in(make_client)
    ivan = web.add_user("Ivan")
    await web.user_sends(ivan.user_id, "the report", files=[("file", "report.pdf", PDF)])
    got = await next_of(inbox)
    [attach] = got.attaches
    assert isinstance(attach, FileAttachment)
    assert (attach.name, attach.size) == ("report.pdf", len(PDF))
    assert got.chat_id is not None

    request = await client.get_file_by_id(got.chat_id, got.id, attach.file_id)
    assert request is not None and request.unsafe is False
    first = await fetch(request.url)
    assert first.status_code == 200 and first.content == PDF

    assert web.expire_links(attach.file_id) >= 1
    assert (await fetch(request.url)).status_code == 403  # the URL was temporary
    again = await client.get_file_by_id(got.chat_id, got.id, attach.file_id)
    assert again is not None and again.url != request.url
    assert (await fetch(again.url)).content == PDF  # a fresh URL works

    web.delete_file(attach.file_id)
    assert (await fetch(again.url)).status_code == 404
    with pytest.raises(ApiError) as lost:
        await client.get_file_by_id(got.chat_id, got.id, attach.file_id)
    assert lost.value.error == "file.not.found"


async def test_photo_and_video_messages(web: WebFake, make_client: ClientFactory) -> None:
    client, inbox = await logged_in(make_client)
    ivan = web.add_user("Ivan")
    await web.user_sends(
        ivan.user_id, "", files=[("photo", "cat.png", PNG), ("video", "clip.mp4", MP4)]
    )
    got = await next_of(inbox)
    photo, video = got.attaches
    assert isinstance(photo, PhotoAttachment) and isinstance(video, VideoAttachment)
    assert (await fetch(photo.base_url)).content == PNG
    assert got.chat_id is not None
    request = await client.get_video_by_id(got.chat_id, got.id, video.video_id)
    assert request is not None and request.url is not None
    assert (await fetch(request.url)).content == MP4


async def test_a_message_the_account_sent_from_its_phone(
    web: WebFake, make_client: ClientFactory
) -> None:
    _, inbox = await logged_in(make_client)
    ivan = web.add_user("Ivan")
    await web.user_sends(ivan.user_id, "from my phone", from_account=True)
    got = await next_of(inbox)
    assert got.sender == web.account.user_id and got.text == "from my phone"


async def test_send_text_and_read_it_back_in_history(
    web: WebFake, make_client: ClientFactory
) -> None:
    client, _ = await logged_in(make_client)
    ivan = web.add_user("Ivan", phone=79991234567)
    found = await client.search_by_phone("+7 999 123-45-67")
    assert found.id == ivan.user_id
    chat_id = client.get_chat_id(found.id, web.account.user_id)

    sent = await client.send_message(chat_id, "hello, Ivan")
    assert sent.text == "hello, Ivan" and sent.chat_id == chat_id
    assert [m.text for m in web.sent_by_account(chat_id)] == ["hello, Ivan"]

    await web.user_sends(ivan.user_id, "hi back")
    history = await client.fetch_history(chat_id)
    assert [m.text for m in history] == ["hello, Ivan", "hi back"]
    assert history[0].id == sent.id
    state = await client.read_message(history[-1].id, chat_id)
    assert state.mark > 0 and web.world.chats[chat_id].mark == state.mark


async def test_upload_a_file_a_photo_and_a_video(web: WebFake, make_client: ClientFactory) -> None:
    client, _ = await logged_in(make_client)
    ivan = web.add_user("Ivan")
    chat_id = web.account.user_id ^ ivan.user_id

    sent = await client.send_message(chat_id, "files", attachments=[File(PDF, name="report.pdf")])
    [attach] = sent.attaches
    assert isinstance(attach, FileAttachment) and attach.name == "report.pdf"
    assert web.world.files[attach.file_id].data == PDF

    sent = await client.send_message(chat_id, attachments=[Photo(PNG, name="cat.png")])
    [photo] = sent.attaches
    assert isinstance(photo, PhotoAttachment)
    assert (await fetch(photo.base_url)).content == PNG

    sent = await client.send_message(chat_id, attachments=[Video(MP4, name="clip.mp4")])
    [video] = sent.attaches
    assert isinstance(video, VideoAttachment)
    assert web.world.files[video.video_id].data == MP4


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
async def test_compressed_frames_are_read_by_pymax(
    compression: str, make_client: ClientFactory, web: WebFake
) -> None:
    web.compression = type(web.compression)(compression)
    client, inbox = await logged_in(make_client)
    ivan = web.add_user("Ivan")
    await web.user_sends(ivan.user_id, "x" * 5000)
    assert (await next_of(inbox)).text == "x" * 5000
    assert client.me is not None


async def test_a_slow_ready_event_is_waited_for(make_client: ClientFactory, web: WebFake) -> None:
    web.config = dataclasses.replace(web.config, attach_ready_seconds=0.3)
    client, _ = await logged_in(make_client)
    ivan = web.add_user("Ivan")
    sent = await client.send_message(
        web.account.user_id ^ ivan.user_id, attachments=[File(b"late", name="late.txt")]
    )
    assert isinstance(sent.attaches[0], FileAttachment)
