"""Sending: sendMessage, sendFileByUpload, uploadFile, sendFileByUrl (spec §3 "Sending")."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from maxgate.api.methods.sending import too_large
from maxgate.runtime import Runtime
from maxgate.store import tables as t
from tests.api._support import (
    BOUNDARY,
    CONTACT,
    MB,
    MULTIPART_TYPE,
    assert_error,
    chunks,
    committed_blobs,
    count_rows,
    invalid,
    multipart,
    ok,
    send_text,
    temp_objects,
    upload,
    wait_for_message,
)
from tests.api.conftest import FileServer, GatewayFactory
from tests.conftest import Account

UUID_NAME = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


async def download(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """Open a file link (no token: the link is signed)."""
    response = await client.get(url)
    assert response.status_code == 200, response.text
    return response


# --- sendMessage ------------------------------------------------------------------------------


async def test_send_message(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(
        account.url("sendMessage"), json={"chatId": CONTACT, "message": "Hello"}
    )
    body = ok(response)
    assert set(body) == {"idMessage"}
    assert isinstance(body["idMessage"], str) and body["idMessage"].isdigit()
    item = await wait_for_message(client, account, CONTACT, body["idMessage"], status="read")
    assert item["type"] == "outgoing"
    assert item["textMessage"] == "Hello"
    assert item["typeMessage"] == "textMessage"
    assert item["sendByApi"] is True
    assert item["chatId"] == CONTACT


async def test_send_message_length(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(
        account.url("sendMessage"), json={"chatId": CONTACT, "message": "я" * 4001}
    )
    assert_error(
        response,
        400,
        invalid("'message' length must be less than or equal to 4000 characters long"),
    )
    response = await client.post(
        account.url("sendMessage"), json={"chatId": CONTACT, "message": "я" * 4000}
    )
    id_message = ok(response)["idMessage"]
    item = await wait_for_message(client, account, CONTACT, id_message)
    assert item["textMessage"] == "я" * 4000


async def test_send_message_optional_fields(client: httpx.AsyncClient, account: Account) -> None:
    first = await send_text(client, account, CONTACT, "first")
    response = await client.post(
        account.url("sendMessage"),
        json={
            "chatId": CONTACT,
            "message": "reply https://example.com",
            "quotedMessageId": first,
            "linkPreview": False,
            "typingTime": 0,
        },
    )
    item = await wait_for_message(client, account, CONTACT, ok(response)["idMessage"])
    assert item["quotedMessage"]["stanzaId"] == first


# --- sendFileByUpload -------------------------------------------------------------------------


@pytest.mark.parametrize("file_first", [True, False])
async def test_send_file_by_upload(
    client: httpx.AsyncClient, account: Account, file_first: bool
) -> None:
    data = os.urandom(10_000)
    file_part = ("file", data, "report.pdf", "application/pdf")
    fields = [("chatId", CONTACT, None, None), ("caption", "The report", None, None)]
    parts = [file_part, *fields] if file_first else [*fields, file_part]
    response = await client.post(
        account.url("sendFileByUpload"),
        content=multipart(parts),
        headers={"content-type": MULTIPART_TYPE},
    )
    body = ok(response)
    assert set(body) == {"idMessage", "urlFile"}
    assert (await download(client, body["urlFile"])).content == data
    item = await wait_for_message(client, account, CONTACT, body["idMessage"], status="read")
    assert item["typeMessage"] == "documentMessage"
    assert item["fileName"] == "report.pdf"
    assert item["mimeType"] == "application/pdf"
    assert item["caption"] == "The report"
    assert (await download(client, item["downloadUrl"])).content == data


async def test_file_name_field_overrides_the_part(
    client: httpx.AsyncClient, account: Account
) -> None:
    body = await upload(
        client,
        account,
        CONTACT,
        b"col1,col2\n",
        filename="upload.bin",
        fields={"fileName": "table.csv"},
    )
    item = await wait_for_message(client, account, CONTACT, body["idMessage"])
    assert item["fileName"] == "table.csv"
    assert item["mimeType"] == "text/csv"
    assert "/table.csv?" in body["urlFile"]


@pytest.mark.parametrize(
    ("content_type", "ext", "type_message"),
    [
        ("image/png", ".png", "imageMessage"),
        ("audio/mpeg", ".mp3", "audioMessage"),
        (None, ".bin", "documentMessage"),
    ],
)
async def test_no_name_makes_one_up(
    client: httpx.AsyncClient,
    account: Account,
    content_type: str | None,
    ext: str,
    type_message: str,
) -> None:
    body = await upload(
        client, account, CONTACT, b"\x89PNG...", filename=None, content_type=content_type
    )
    item = await wait_for_message(client, account, CONTACT, body["idMessage"])
    assert re.fullmatch(UUID_NAME + re.escape(ext), item["fileName"]), item["fileName"]
    assert item["typeMessage"] == type_message


@pytest.mark.parametrize(
    ("name", "declared", "mime", "type_message"),
    [
        ("photo.jpg", "application/octet-stream", "image/jpeg", "imageMessage"),
        ("clip.mp4", None, "video/mp4", "videoMessage"),
        ("voice.ogg", None, "audio/ogg", "audioMessage"),
        ("notes", "text/plain; charset=utf-8", "text/plain", "documentMessage"),
        ("data.unknownext", None, "application/octet-stream", "documentMessage"),
    ],
)
async def test_mime_guessing(
    client: httpx.AsyncClient,
    account: Account,
    name: str,
    declared: str | None,
    mime: str,
    type_message: str,
) -> None:
    body = await upload(client, account, CONTACT, b"bytes", filename=name, content_type=declared)
    item = await wait_for_message(client, account, CONTACT, body["idMessage"])
    assert item["mimeType"] == mime
    assert item["typeMessage"] == type_message
    assert item["fileName"] == name
    link = await download(client, body["urlFile"])
    assert link.headers["content-type"].split(";")[0] == mime


async def test_large_upload_is_streamed(client: httpx.AsyncClient, account: Account) -> None:
    data = os.urandom(3 * MB)
    body = multipart([("chatId", CONTACT, None, None), ("file", data, "big.bin", None)])
    response = await client.post(
        account.url("sendFileByUpload"),
        content=chunks(body, 32 * 1024),
        headers={"content-type": MULTIPART_TYPE},
    )
    answer = ok(response)
    got = await download(client, answer["urlFile"])
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
    item = await wait_for_message(client, account, CONTACT, answer["idMessage"], status="read")
    assert item["fileName"] == "big.bin"


async def test_file_name_field_is_cleaned(client: httpx.AsyncClient, account: Account) -> None:
    body = await upload(
        client, account, CONTACT, b"data", fields={"fileName": "../dir/evil\r\nname.txt"}
    )
    item = await wait_for_message(client, account, CONTACT, body["idMessage"])
    assert item["fileName"] == "evilname.txt"  # what sendFileByUrl makes of the same name
    assert (await client.get(body["urlFile"])).status_code == 200


# --- uploadFile -------------------------------------------------------------------------------


async def test_upload_file(client: httpx.AsyncClient, account: Account) -> None:
    data = os.urandom(5000)
    response = await client.post(
        account.url("uploadFile"),
        content=data,
        headers={"content-type": "application/pdf", "GA-Filename": "contract.pdf"},
    )
    body = ok(response)
    assert set(body) == {"urlFile"}
    assert "/contract.pdf?" in body["urlFile"]
    got = await download(client, body["urlFile"])
    assert got.content == data
    assert got.headers["content-type"] == "application/pdf"
    assert 'filename="contract.pdf"' in got.headers["content-disposition"]


async def test_upload_file_without_a_name(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(
        account.url("uploadFile"), content=b"GIF89a...", headers={"content-type": "image/gif"}
    )
    url = ok(response)["urlFile"]
    assert re.search(rf"/{UUID_NAME}\.gif\?", url), url
    assert (await download(client, url)).headers["content-type"] == "image/gif"


# --- sendFileByUrl ----------------------------------------------------------------------------


async def test_send_file_by_url_with_our_own_link(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    data = os.urandom(20_000)
    link = ok(
        await client.post(
            account.url("uploadFile"),
            content=data,
            headers={"content-type": "image/png", "GA-Filename": "chart.png"},
        )
    )["urlFile"]
    blobs_before = await count_rows(runtime, t.blobs)
    response = await client.post(
        account.url("sendFileByUrl"),
        json={"chatId": CONTACT, "urlFile": link, "fileName": "renamed.png", "caption": "see"},
    )
    body = ok(response)
    assert set(body) == {"idMessage", "urlFile"}
    assert await count_rows(runtime, t.blobs) == blobs_before  # the bytes were not fetched again
    item = await wait_for_message(client, account, CONTACT, body["idMessage"], status="read")
    assert item["fileName"] == "renamed.png"
    assert item["mimeType"] == "image/png"
    assert item["typeMessage"] == "imageMessage"
    assert item["caption"] == "see"
    assert (await download(client, item["downloadUrl"])).content == data
    assert await count_rows(runtime, t.blobs) == blobs_before


async def test_send_file_by_url_with_a_bad_own_link(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    link = ok(await client.post(account.url("uploadFile"), content=b"abc"))["urlFile"]
    tampered = re.sub(r"sig=[^&]+", "sig=AAAAAAAAAAAAAAAAAAAAAAAA", link)
    file_id = httpx.URL(link).path.split("/")[3]
    expired = runtime.signer.url(account.id, file_id, "a.txt", int(time.time()) - 1)
    for url in (tampered, expired):
        response = await client.post(
            account.url("sendFileByUrl"),
            json={"chatId": CONTACT, "urlFile": url, "fileName": "a.txt"},
        )
        assert_error(
            response, 400, "File from url could not be downloaded: the link is expired or invalid"
        )


async def test_send_file_by_url_refuses_loopback(
    client: httpx.AsyncClient, account: Account, file_server: FileServer
) -> None:
    url = file_server.serve("/secret.txt", b"internal")
    response = await client.post(
        account.url("sendFileByUrl"), json={"chatId": CONTACT, "urlFile": url, "fileName": "s.txt"}
    )
    message = assert_error(response, 400)
    assert message == (
        "File from url could not be downloaded: address 127.0.0.1 is not allowed (loopback)"
        "; allow it with the setting outbound_allow (MAXGATE_OUTBOUND_ALLOW)"
    )
    assert file_server.hits == []


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("http://127.0.0.1:1/x", "address 127.0.0.1 is not allowed (loopback)"),
        ("http://[::1]:1/x", "address ::1 is not allowed (loopback)"),
        ("http://10.1.2.3/x", "address 10.1.2.3 is not allowed (private)"),
        ("http://localhost:1/x", "host localhost resolves to a blocked address (loopback)"),
    ],
)
async def test_a_refused_address_names_the_setting_after_the_old_text(
    client: httpx.AsyncClient, account: Account, url: str, refusal: str
) -> None:
    response = await client.post(
        account.url("sendFileByUrl"), json={"chatId": CONTACT, "urlFile": url, "fileName": "x.txt"}
    )
    message = assert_error(response, 400)
    old = f"File from url could not be downloaded: {refusal}"
    assert message.startswith(old)  # clients matching on the start still match
    assert message == old + "; allow it with the setting outbound_allow (MAXGATE_OUTBOUND_ALLOW)"


@pytest.mark.parametrize(
    ("host", "address", "reason"),
    [
        ("127.1", "127.0.0.1", "loopback"),
        ("2130706433", "127.0.0.1", "loopback"),
        ("0x7f000001", "127.0.0.1", "loopback"),
        ("017700000001", "127.0.0.1", "loopback"),
        ("127.0.0.1.", "127.0.0.1", "loopback"),
        ("0", "0.0.0.0", "unspecified"),
    ],
)
async def test_send_file_by_url_refuses_shorthand_address_literals(
    client: httpx.AsyncClient,
    account: Account,
    file_server: FileServer,
    host: str,
    address: str,
    reason: str,
) -> None:
    """The same up-front refusal as setSettings' webhookUrl (one guard), before any connection."""
    file_server.serve("/secret.txt", b"internal")
    url = f"http://{host}:{file_server.port}/secret.txt"
    response = await client.post(
        account.url("sendFileByUrl"), json={"chatId": CONTACT, "urlFile": url, "fileName": "s.txt"}
    )
    assert_error(
        response,
        400,
        f"File from url could not be downloaded: address {host} ({address}) is not allowed"
        f" ({reason}); allow it with the setting outbound_allow (MAXGATE_OUTBOUND_ALLOW)",
    )
    assert file_server.hits == []


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("ftp://example.com/x", "scheme ftp is not allowed, only http and https"),
        (
            "http://169.254.169.254/latest",
            "address 169.254.169.254 is not allowed (cloud metadata)",
        ),
    ],
)
async def test_refusals_no_setting_should_lift_get_no_hint(
    client: httpx.AsyncClient, account: Account, url: str, refusal: str
) -> None:
    response = await client.post(
        account.url("sendFileByUrl"), json={"chatId": CONTACT, "urlFile": url, "fileName": "x.txt"}
    )
    message = assert_error(response, 400, f"File from url could not be downloaded: {refusal}")
    assert "outbound_allow" not in message


async def test_a_redirect_to_loopback_names_the_setting_too(
    make_gateway: GatewayFactory, file_server: FileServer
) -> None:
    """The refusal comes from the connect-time check of a redirect's target, not the up-front
    one: an allow-listed server redirects to a loopback address outside the allow-list."""
    gateway = await make_gateway(outbound_allow="127.0.0.1/32")
    account = await gateway.account()
    response = await gateway.client.post(
        account.url("sendFileByUrl"),
        json={
            "chatId": CONTACT,
            "urlFile": file_server.redirect("/hop", "http://127.0.0.2:1/x"),
            "fileName": "x.txt",
        },
    )
    assert_error(
        response,
        400,
        "File from url could not be downloaded: address 127.0.0.2 is not allowed (loopback)"
        "; allow it with the setting outbound_allow (MAXGATE_OUTBOUND_ALLOW)",
    )


async def test_send_file_by_url_from_an_allowed_server(
    make_gateway: GatewayFactory, file_server: FileServer
) -> None:
    gateway = await make_gateway(outbound_allow="127.0.0.0/8")
    account = await gateway.account()
    client = gateway.client
    data = os.urandom(300_000)
    url = file_server.serve("/files/photo", data, content_type="image/jpeg")
    response = await client.post(
        account.url("sendFileByUrl"),
        json={"chatId": CONTACT, "urlFile": url, "fileName": "photo.jpg", "caption": "from url"},
    )
    body = ok(response)
    assert file_server.hits == ["/files/photo"]
    assert (await download(client, body["urlFile"])).content == data
    item = await wait_for_message(client, account, CONTACT, body["idMessage"], status="read")
    assert (item["fileName"], item["mimeType"], item["caption"]) == (
        "photo.jpg",
        "image/jpeg",
        "from url",
    )
    # Without a length announced (read until the server closes), and the declared type used
    # when the name says nothing.
    url = file_server.serve("/stream", data, content_type="application/pdf", send_length=False)
    response = await client.post(
        account.url("sendFileByUrl"),
        json={"chatId": CONTACT, "urlFile": url, "fileName": "doc"},
    )
    body = ok(response)
    assert (await download(client, body["urlFile"])).content == data
    item = await wait_for_message(client, account, CONTACT, body["idMessage"])
    assert item["mimeType"] == "application/pdf"


async def test_send_file_by_url_failures(
    make_gateway: GatewayFactory, file_server: FileServer
) -> None:
    gateway = await make_gateway(outbound_allow="127.0.0.0/8", max_file_size="1MB")
    account = await gateway.account()

    async def send(url: str) -> httpx.Response:
        return await gateway.client.post(
            account.url("sendFileByUrl"),
            json={"chatId": CONTACT, "urlFile": url, "fileName": "big.bin"},
        )

    too_big = os.urandom(2 * MB)
    streamed = file_server.serve("/streamed", too_big, send_length=False)
    assert_error(await send(streamed), 413)
    message = assert_error(await send(streamed), 413)
    assert re.fullmatch(r"File exceeded max upload size\. Size: \d+mb Limit: 1mb", message)
    announced = file_server.serve("/announced", too_big)
    assert_error(await send(announced), 413, "File exceeded max upload size. Size: 2mb Limit: 1mb")
    assert_error(
        await send(file_server.url("/missing")),
        400,
        "File from url could not be downloaded: server answered 404",
    )
    history = await gateway.client.post(account.url("getChatHistory"), json={"chatId": CONTACT})
    assert ok(history) == []
    assert await count_rows(gateway.runtime, t.files) == 0
    assert committed_blobs(gateway.runtime) == []
    assert temp_objects(gateway.runtime) == []


@pytest.mark.parametrize(
    ("size", "limit", "text"),
    [
        (120 * MB, 100 * MB, "Size: 120mb Limit: 100mb"),
        (120 * MB + 300, 100 * MB, "Size: 120mb Limit: 100mb"),  # a multipart body's length
        (120 * MB + MB // 2, 100 * MB, "Size: 121mb Limit: 100mb"),  # halves round up
        (120 * MB + MB // 2 - 1, 100 * MB, "Size: 120mb Limit: 100mb"),
        (100 * MB + 64 * 1024, 100 * MB, "Size: 101mb Limit: 100mb"),  # a stream cut past it
        (MB + 1, MB, "Size: 2mb Limit: 1mb"),  # over the limit never reads as the limit
        (5 * 1024**3, 4 * 1024**3, "Size: 5120mb Limit: 4096mb"),
    ],
)
def test_the_size_message_counts_whole_mib_to_the_nearest(size: int, limit: int, text: str) -> None:
    error = too_large(size, limit)
    assert (error.status, error.message) == (413, f"File exceeded max upload size. {text}")


async def test_a_120_mib_upload_reads_120mb(make_gateway: GatewayFactory) -> None:
    """The case that read ``Size: 121mb``: the multipart body is the file plus part headers.
    Refused on its Content-Length, before a byte of the body is read."""
    gateway = await make_gateway(max_file_size="100MB")
    account = await gateway.account()
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="chatId"\r\n\r\n{CONTACT}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    read = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal read
        for piece in (head, *([bytes(MB)] * 120), tail):
            read += len(piece)
            yield piece

    response = await gateway.client.post(
        account.url("sendFileByUpload"),
        content=body(),
        headers={
            "content-type": MULTIPART_TYPE,
            "content-length": str(len(head) + 120 * MB + len(tail)),
        },
    )
    assert_error(response, 413, "File exceeded max upload size. Size: 120mb Limit: 100mb")
    assert read <= len(head) + MB  # refused up front, not after streaming 100 MiB


# --- a file between two instances -------------------------------------------------------------


async def test_file_arrives_at_the_other_instance(
    client: httpx.AsyncClient, account: Account, other_account: Account
) -> None:
    data = os.urandom(50_000)
    body = await upload(
        client,
        account,
        other_account.chat_id,
        data,
        filename="отчёт.pdf",
        content_type="application/pdf",
        fields={"caption": "Отчёт за май"},
    )
    sent = await wait_for_message(
        client, account, other_account.chat_id, body["idMessage"], status="read"
    )
    received = await wait_for_message(client, other_account, account.chat_id, body["idMessage"])
    assert received["type"] == "incoming"
    assert received["idMessage"] == sent["idMessage"]
    assert received["chatId"] == account.chat_id
    assert received["senderId"] == account.chat_id
    assert received["senderName"] == "Alice"
    for key in ("typeMessage", "fileName", "mimeType", "caption"):
        assert received[key] == sent[key], key
    assert received["fileName"] == "отчёт.pdf"
    assert received["caption"] == "Отчёт за май"
    assert received["downloadUrl"] != sent["downloadUrl"]  # the recipient's own link
    assert (await download(client, received["downloadUrl"])).content == data
