"""Every v3 method of ``Client`` and ``AsyncClient`` against the app in-process.

Each test runs twice (the ``make_api`` fixture): with the async client, then the sync one.
"""

from __future__ import annotations

import asyncio
import base64
import io
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import maxgate.api.methods  # noqa: F401 - registers the server's methods
from maxgate.api.routing import METHODS
from maxgate.client import (
    AccountCheck,
    AccountSettings,
    AsyncClient,
    Chat,
    Cleared,
    Client,
    Count,
    DownloadLink,
    InstanceSettings,
    JournalItem,
    LoggedOut,
    PasswordResult,
    PasswordStatus,
    QrCode,
    QueuedMessage,
    Rebooted,
    SentFile,
    SentMessage,
    SettingsSaved,
    StateInstance,
    TransportError,
    UploadedFile,
)
from maxgate.runtime import Runtime
from tests.client._support import sha256
from tests.client.conftest import Api, ApiFactory
from tests.conftest import Account
from tests.conftest import contact_sends_file as sandbox_file

CONTACT = "10000777"  # no instance: a simulated contact of the sandbox


async def wait_for(api: Api, chat_id: str, id_message: str, status: str) -> JournalItem:
    """Poll getMessage until the message has ``status``."""
    deadline = time.monotonic() + 10
    item = None
    while time.monotonic() < deadline:
        item = await api.get_message(chat_id, id_message)
        if item.status_message == status:
            return item  # type: ignore[no-any-return]
        await asyncio.sleep(0.02)
    raise AssertionError(f"{id_message} never became {status}: {item}")


async def test_send_message_and_the_journals(
    make_api: ApiFactory, account: Account, other_account: Account
) -> None:
    alice, bob = make_api(account), make_api(other_account)
    sent = await alice.send_message(other_account.chat_id, "hello Bob")
    assert isinstance(sent, SentMessage) and sent.id_message

    item = await wait_for(alice, other_account.chat_id, sent.id_message, "read")
    assert (item.type, item.type_message, item.text_message) == (
        "outgoing",
        "textMessage",
        "hello Bob",
    )
    assert item.send_by_api is True and item.chat_id == other_account.chat_id

    history = await alice.get_chat_history(other_account.chat_id)
    assert [i.id_message for i in history] == [sent.id_message]
    assert await alice.get_chat_history(other_account.chat_id, count=1) == history
    assert [i.id_message for i in await alice.last_outgoing_messages()] == [sent.id_message]
    assert await alice.last_incoming_messages(minutes=5) == []

    incoming = await bob.last_incoming_messages()
    assert [(i.type, i.id_message, i.text_message) for i in incoming] == [
        ("incoming", sent.id_message, "hello Bob")
    ]
    assert incoming[0].sender_contact_name == "" and incoming[0].status_message is None
    chats = await bob.get_chats()
    assert chats == [Chat(chat_id=account.chat_id, phone_number=account.instance.phone)]


async def test_send_message_options_reach_the_journal(api: Api) -> None:
    first = await api.send_message(CONTACT, "first")
    reply = await api.send_message(
        CONTACT, "see https://example.org", quoted_message_id=first.id_message, link_preview=False
    )
    item = await api.get_message(CONTACT, reply.id_message)
    assert item.quoted_message == {"stanzaId": first.id_message}


async def test_send_file_by_upload_from_a_path(api: Api, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(content)
    seen: list[tuple[int, int | None]] = []
    sent = await api.send_file_by_upload(
        CONTACT, path, caption="the report", progress=lambda done, total: seen.append((done, total))
    )
    assert isinstance(sent, SentFile) and sent.url_file
    assert seen[0] == (0, len(content)) and seen[-1] == (len(content), len(content))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    item = await api.get_message(CONTACT, sent.id_message)
    assert (item.type_message, item.file_name, item.caption) == (
        "documentMessage",
        "report.pdf",
        "the report",
    )
    assert item.mime_type == "application/pdf"
    out = tmp_path / "copy.pdf"
    done = await api.download_link(sent.url_file, out)
    assert out.read_bytes() == content and done.verified and done.sha256 == sha256(content)


async def test_send_file_by_upload_from_a_file_object(api: Api, tmp_path: Path) -> None:
    data = b"\x89PNG fake image bytes" * 100
    sent = await api.send_file_by_upload(CONTACT, io.BytesIO(data), file_name='a "quoted" пнг.png')
    item = await api.get_message(CONTACT, sent.id_message)
    assert item.file_name == 'a "quoted" пнг.png'
    assert (item.type_message, item.mime_type, item.caption) == ("imageMessage", "image/png", "")
    link = await api.download_file_link(CONTACT, sent.id_message)
    sink = io.BytesIO()
    await api.download_link(link.download_url, sink)
    assert sink.getvalue() == data


async def test_upload_file_then_send_file_by_url(api: Api, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "table.csv"
    path.write_bytes(content)
    uploaded = await api.upload_file(path)
    assert isinstance(uploaded, UploadedFile) and "table.csv" in uploaded.url_file
    sent = await api.send_file_by_url(CONTACT, uploaded.url_file, "renamed.csv", caption="csv")
    assert isinstance(sent, SentFile)
    item = await api.get_message(CONTACT, sent.id_message)
    assert (item.file_name, item.caption, item.mime_type) == ("renamed.csv", "csv", "text/csv")
    out = tmp_path / "out.csv"
    await api.download_file(CONTACT, sent.id_message, out)
    assert out.read_bytes() == content


async def test_download_file_link_and_download_file(
    api: Api, runtime: Runtime, account: Account, tmp_path: Path, content: bytes
) -> None:
    id_message = await contact_sends_file(runtime, account, content, "photo.bin")
    link = await api.download_file_link("20000001", id_message)
    assert isinstance(link, DownloadLink) and "/files/" in link.download_url
    done = await api.download_file("20000001", id_message, tmp_path)  # a directory
    assert done.path == str(tmp_path / "photo.bin")
    assert (tmp_path / "photo.bin").read_bytes() == content
    assert (done.size, done.verified, done.kept, done.resumes) == (len(content), True, 0, 0)


async def contact_sends_file(runtime: Runtime, account: Account, data: bytes, name: str) -> str:
    """A simulated contact (20000001) sends a file to ``account``; returns its idMessage."""
    return await sandbox_file(
        runtime, account, data, name, contact="20000001", mime_type="application/octet-stream"
    )


async def test_account_methods(api: Api, account: Account, other_account: Account) -> None:
    assert await api.get_state_instance() == StateInstance(state_instance="authorized")
    settings = await api.get_settings()
    assert isinstance(settings, InstanceSettings)
    assert (settings.wid, settings.type_instance) == (account.instance.wid, "v3")
    assert (settings.delay_send_messages_milliseconds, settings.incoming_webhook) == (500, "yes")

    saved = await api.set_settings(
        delay_send_messages_milliseconds=1500,
        incoming_webhook=False,
        outgoing_api_message_webhook="no",
        webhook_url_token="s3cret",
    )
    assert saved == SettingsSaved(save_settings=True)
    changed = await api.get_settings()
    assert changed.delay_send_messages_milliseconds == 1500
    assert (changed.incoming_webhook, changed.outgoing_api_message_webhook) == ("no", "no")
    assert changed.outgoing_webhook == "yes" and changed.webhook_url_token == "********"
    with pytest.raises(ValueError, match="at least one setting"):
        await api.set_settings()

    account_settings = await api.get_account_settings()
    assert isinstance(account_settings, AccountSettings)
    assert account_settings.chat_id == account.chat_id
    assert account_settings.phone == str(account.instance.phone)
    assert account_settings.state_instance == "authorized"

    found = await api.check_account(other_account.instance.phone)
    assert found == AccountCheck(exist=True, chat_id=other_account.chat_id)
    assert await api.check_account(79990009999) == AccountCheck(exist=False, chat_id="")


async def test_queue_methods(api: Api) -> None:
    # A slow pace keeps all but the first message waiting in the outgoing queue.
    await api.set_settings(delay_send_messages_milliseconds=600000)
    sent = [(await api.send_message(CONTACT, f"m{n}")).id_message for n in range(3)]
    file = await api.send_file_by_upload(CONTACT, io.BytesIO(b"%PDF"), file_name="q.pdf")
    sent.append(file.id_message)
    queue = await api.show_messages_queue()
    assert all(isinstance(q, QueuedMessage) for q in queue)
    assert [q.message_id for q in queue] == sent[-len(queue) :] and len(queue) >= 3
    assert [q.type for q in queue[-2:]] == ["sendMessage", "sendFile"]
    assert (queue[-2].body.chat_id, queue[-2].body.message) == (CONTACT, "m2")
    assert (queue[-1].body.file_name, queue[-1].body.caption) == ("q.pdf", "")
    assert queue[-1].body.url_file and "/files/" in queue[-1].body.url_file
    assert await api.get_messages_count() == Count(count=len(queue))
    assert await api.clear_messages_queue() == Cleared(is_cleared=True)
    assert await api.get_messages_count() == Count(count=0)
    assert await api.show_messages_queue() == []


async def test_reboot_logout_and_qr(api: Api) -> None:
    already = await api.qr()
    assert already == QrCode(type="alreadyLogged", message="instance account already authorized")
    assert await api.reboot() == Rebooted(is_reboot=True)
    assert await api.logout() == LoggedOut(is_logout=True)
    code = await api.qr()
    assert code.type == "qrCode" and base64.b64decode(code.message).startswith(b"\x89PNG")
    deadline = time.monotonic() + 10  # the sandbox's phone scans the code a moment later
    while (await api.get_state_instance()).state_instance != "authorized":
        assert time.monotonic() < deadline, "the account never logged in again"
        await asyncio.sleep(0.05)


async def test_send_authorization_password_of_a_logged_in_account(api: Api) -> None:
    done = await api.send_authorization_password("secret")
    assert done == PasswordResult(
        status=True, data=PasswordStatus(status="fail", reason="already_registered")
    )


# Arguments for one call of each client method (what the server answers does not matter here).
SAMPLE_ARGS: dict[str, tuple[Any, ...]] = {
    "send_message": ("1", "x"),
    "send_file_by_upload": ("1", io.BytesIO(b"x")),
    "send_file_by_url": ("1", "http://x/f", "f.txt"),
    "send_location": ("1", 55.75, 37.61),
    "send_contact": ("1", 79001234568),
    "forward_messages": ("1", "2", ["3"]),
    "edit_message": ("1", "2", "x"),
    "delete_message": ("1", "2"),
    "send_typing": ("1",),
    "read_chat": ("1",),
    "get_contact_info": ("1",),
    "get_avatar": ("1",),
    "upload_file": (io.BytesIO(b"x"),),
    "download_file_link": ("1", "2"),
    "delete_notification": (1,),
    "get_chat_history": ("1",),
    "get_message": ("1", "2"),
    "check_account": (79990000001,),
    "send_authorization_password": ("secret",),
}
SAMPLE_KWARGS: dict[str, dict[str, Any]] = {"set_settings": {"incoming_webhook": True}}


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@pytest.mark.parametrize("spec", sorted(METHODS.values(), key=lambda s: s.name), ids=str)
def test_every_method_of_the_server_has_a_client_method(spec: Any) -> None:
    """Keeps the client complete: each registered v3 method has a method on both clients that
    calls it with one of its verbs."""
    name = {"downloadFile": "download_file_link"}.get(spec.name, snake(spec.name))
    assert callable(getattr(AsyncClient, name))
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path.split("/")[2]))
        raise httpx.ConnectError("recorded", request=request)

    with (
        Client(
            api_url="http://g", id_instance=1, api_token="t", transport=httpx.MockTransport(handler)
        ) as client,
        pytest.raises(TransportError),
    ):
        getattr(client, name)(*SAMPLE_ARGS.get(name, ()), **SAMPLE_KWARGS.get(name, {}))
    assert len(seen) == 1
    verb, method = seen[0]
    assert method == spec.name and verb in spec.verbs
