"""The link server: ``GET``/``HEAD /files/{instance}/{fileId}/{fileName}?exp=…&sig=…``."""

from __future__ import annotations

import hashlib
import re
import time
from email.utils import formatdate
from urllib.parse import quote

import httpx
import pytest

from maxgate.api.files import SMALL_FILE, http_date
from maxgate.runtime import Runtime
from tests.api._support import CONTACT, assert_error, ok, upload
from tests.conftest import Account

DATA = bytes(range(256)) * 4  # 1024 bytes, each offset recognisable: sent from memory
LARGE = bytes(range(256)) * (SMALL_FILE // 256 + 64)  # past SMALL_FILE: a FileResponse


async def upload_file(
    client: httpx.AsyncClient,
    account: Account,
    data: bytes = DATA,
    *,
    name: str = "data.bin",
    content_type: str = "application/octet-stream",
) -> str:
    """uploadFile; returns the link."""
    response = await client.post(
        account.url("uploadFile"),
        content=data,
        headers={"content-type": content_type, "GA-Filename": name},
    )
    return str(ok(response)["urlFile"])


def parts(link: str) -> tuple[int, str, str, int, str]:
    """(instance, file id, name, exp, sig) of a link."""
    url = httpx.URL(link)
    _, _, instance, file_id, name = url.path.split("/", 4)
    return int(instance), file_id, name, int(url.params["exp"]), url.params["sig"]


def build(instance: int, file_id: str, name: str, exp: int | str, sig: str) -> str:
    return f"/files/{instance}/{file_id}/{quote(name)}?exp={exp}&sig={sig}"


@pytest.fixture(params=["small", "large"])
def data(request: pytest.FixtureRequest) -> bytes:
    """The file's bytes: small ones are read into memory, large ones go out as a file."""
    return DATA if request.param == "small" else LARGE


@pytest.fixture
async def link(client: httpx.AsyncClient, account: Account, data: bytes) -> str:
    return await upload_file(client, account, data)


async def test_get_and_head(client: httpx.AsyncClient, link: str, data: bytes) -> None:
    response = await client.get(link)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["etag"]
    assert response.headers["last-modified"]
    head = await client.head(link)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(data))
    assert head.headers["etag"] == response.headers["etag"]
    assert head.headers["content-type"] == response.headers["content-type"]


async def test_single_range(client: httpx.AsyncClient, link: str, data: bytes) -> None:
    response = await client.get(link, headers={"Range": "bytes=2-5"})
    assert response.status_code == 206
    assert response.content == data[2:6]
    assert response.headers["content-range"] == f"bytes 2-5/{len(data)}"
    assert response.headers["content-length"] == "4"
    response = await client.get(link, headers={"Range": "bytes=1000-"})
    assert response.status_code == 206
    assert response.content == data[1000:]


async def test_suffix_range(client: httpx.AsyncClient, link: str, data: bytes) -> None:
    response = await client.get(link, headers={"Range": "bytes=-10"})
    assert response.status_code == 206
    assert response.content == data[-10:]
    assert (
        response.headers["content-range"] == f"bytes {len(data) - 10}-{len(data) - 1}/{len(data)}"
    )


async def test_unsatisfiable_range(client: httpx.AsyncClient, link: str, data: bytes) -> None:
    past_the_end = f"bytes={len(data)}-{len(data) + 1000}"
    response = await client.get(link, headers={"Range": past_the_end})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(data)}"


async def test_unsatisfiable_range_has_the_error_shape(
    client: httpx.AsyncClient, link: str, data: bytes
) -> None:
    response = await client.get(link, headers={"Range": f"bytes={len(data)}-"})
    assert_error(response, 416)


async def test_unknown_range_unit_is_ignored(
    client: httpx.AsyncClient, link: str, data: bytes
) -> None:
    response = await client.get(link, headers={"Range": "items=0-1"})
    assert response.status_code == 200
    assert response.content == data


async def test_multiple_ranges(client: httpx.AsyncClient, link: str, data: bytes) -> None:
    response = await client.get(link, headers={"Range": "bytes=0-1,10-12"})
    assert response.status_code == 206
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    boundary = content_type.split("boundary=", 1)[1].encode()
    pieces = [p for p in response.content.split(b"--" + boundary) if p.strip(b"-\r\n")]
    assert len(pieces) == 2
    bodies = [p.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n") for p in pieces]
    assert bodies == [data[0:2], data[10:13]]
    assert f"Content-Range: bytes 0-1/{len(data)}".encode() in pieces[0]
    assert f"Content-Range: bytes 10-12/{len(data)}".encode() in pieces[1]


async def test_if_none_match(client: httpx.AsyncClient, link: str, data: bytes) -> None:
    etag = (await client.get(link)).headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = await client.get(link, headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == etag
    response = await client.get(link, headers={"If-None-Match": '"something-else"'})
    assert response.status_code == 200
    assert response.content == data


async def test_non_ascii_name(client: httpx.AsyncClient, account: Account) -> None:
    body = await upload(
        client, account, CONTACT, b"%PDF-1.4", filename="отчёт.pdf", content_type=None
    )
    response = await client.get(body["urlFile"])
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert disposition.isascii()
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''" + quote("отчёт.pdf", safe="") in disposition
    assert re.search(r'filename="[ -~]+\.pdf"', disposition)
    assert response.headers["content-type"] == "application/pdf"


@pytest.mark.parametrize(
    ("name", "content_type", "served_type", "kind"),
    [
        ("report.pdf", "application/octet-stream", "application/pdf", "attachment"),
        ("page.html", "text/html", "text/html", "attachment"),
        ("page.htm", "application/octet-stream", "text/html", "attachment"),
        ("image.svg", "image/svg+xml", "image/svg+xml", "attachment"),
        ("photo.png", "application/octet-stream", "image/png", "inline"),
        ("clip.mp4", "video/mp4", "video/mp4", "inline"),
    ],
)
async def test_content_type_and_disposition(
    client: httpx.AsyncClient,
    account: Account,
    name: str,
    content_type: str,
    served_type: str,
    kind: str,
) -> None:
    link = await upload_file(
        client,
        account,
        b"<html><script>alert(1)</script></html>",
        name=name,
        content_type=content_type,
    )
    response = await client.get(link)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == served_type
    assert response.headers["content-disposition"] == f'{kind}; filename="{name}"'
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_html_is_never_inline(client: httpx.AsyncClient, account: Account) -> None:
    link = await upload_file(
        client,
        account,
        b"<html><script>alert(1)</script></html>",
        name="x.html",
        content_type="text/html",
    )
    response = await client.get(link)
    assert response.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in response.headers["content-security-policy"]


async def test_forged_links_are_forbidden(
    client: httpx.AsyncClient, link: str, other_account: Account
) -> None:
    instance, file_id, name, exp, sig = parts(link)
    assert (await client.get(build(instance, file_id, name, exp, sig))).status_code == 200
    other_sig = "A" * len(sig) if sig[0] != "A" else "B" * len(sig)
    forged = [
        build(instance, file_id, name, exp, other_sig),  # tampered signature
        build(instance, file_id, name, exp, sig[:-1]),
        build(instance, file_id[:-1] + ("A" if file_id[-1] != "A" else "B"), name, exp, sig),
        build(other_account.id, file_id, name, exp, sig),  # another instance's id
        build(instance, file_id, name, exp + 1, sig),  # a later expiry
        build(instance, file_id, name, "soon", sig),
        f"/files/{instance}/{file_id}/{name}?exp={exp}",  # no signature
        f"/files/{instance}/{file_id}/{name}?sig={sig}",  # no expiry
        build(0, file_id, name, exp, sig),
    ]
    for url in forged:
        assert_error(await client.get(url), 403, "Forbidden")
        head = await client.head(url)
        assert head.status_code == 403
    # The name in the path is only a name: changing it does not matter.
    assert (await client.get(build(instance, file_id, "other.txt", exp, sig))).status_code == 200


async def test_expired_link(
    client: httpx.AsyncClient, runtime: Runtime, link: str, data: bytes
) -> None:
    instance, file_id, name, _, _ = parts(link)
    past = int(time.time()) - 1
    expired = runtime.signer.url(instance, file_id, name, past)
    assert_error(await client.get(expired), 403, "Forbidden")
    future = runtime.signer.url(instance, file_id, name, int(time.time()) + 60)
    assert (await client.get(future)).content == data


async def test_unknown_file(client: httpx.AsyncClient, runtime: Runtime, account: Account) -> None:
    url = runtime.signer.url(account.id, "no-such-file-id", "x.bin", int(time.time()) + 60)
    assert_error(await client.get(url), 404, "Not Found")


async def test_link_of_one_instance_never_opens_for_another(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, other_account: Account
) -> None:
    link = await upload_file(client, account, b"Alice's file")
    instance, file_id, name, exp, sig = parts(link)
    assert instance == account.id
    # B's id in A's link: the signature is bound to the instance.
    assert_error(await client.get(build(other_account.id, file_id, name, exp, sig)), 403)
    # Even a correctly signed link for B cannot name A's file.
    signed_for_b = runtime.signer.url(other_account.id, file_id, name, exp)
    assert_error(await client.get(signed_for_b), 404, "Not Found")
    # B's own links do not open A's files either.
    own = await upload_file(client, other_account, b"Bob's file")
    b_instance, _, _, b_exp, b_sig = parts(own)
    assert_error(await client.get(build(b_instance, file_id, name, b_exp, b_sig)), 403)


async def test_link_needs_no_token(
    client: httpx.AsyncClient, account: Account, link: str, data: bytes
) -> None:
    assert account.token not in link
    response = await client.get(link)
    assert response.content == data
    assert account.token not in str(response.headers)


async def test_if_range(client: httpx.AsyncClient, link: str, data: bytes) -> None:
    first = await client.get(link)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for current in (etag, modified):
        response = await client.get(link, headers={"Range": "bytes=3-7", "If-Range": current})
        assert response.status_code == 206, current
        assert response.content == data[3:8]
    for stale in ('"another-version"', f"W/{etag}", "Mon, 01 Jan 2001 00:00:00 GMT"):
        response = await client.get(link, headers={"Range": "bytes=3-7", "If-Range": stale})
        assert response.status_code == 200, stale  # another version: the whole file
        assert response.content == data
    # A stale If-Range also lifts an unsatisfiable Range: the whole file, not 416.
    response = await client.get(
        link, headers={"Range": f"bytes={len(data)}-", "If-Range": '"another-version"'}
    )
    assert response.status_code == 200 and response.content == data


async def test_head_of_a_range(client: httpx.AsyncClient, link: str, data: bytes) -> None:
    response = await client.head(link, headers={"Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response.content == b""
    assert response.headers["content-length"] == "10"
    assert response.headers["content-range"] == f"bytes 10-19/{len(data)}"


async def test_if_none_match_wins_over_range(client: httpx.AsyncClient, link: str) -> None:
    etag = (await client.get(link)).headers["etag"]
    response = await client.get(link, headers={"If-None-Match": etag, "Range": "bytes=0-1"})
    assert response.status_code == 304 and response.content == b""


async def test_etag_is_the_sha256_and_last_modified_the_storage_time(
    client: httpx.AsyncClient, runtime: Runtime, link: str, data: bytes
) -> None:
    response = await client.get(link)
    assert response.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    _, file_id, _, _, _ = parts(link)
    file = await runtime.files.get(file_id)
    assert file is not None and file.stored_at is not None
    assert response.headers["last-modified"] == formatdate(file.stored_at, usegmt=True)


@pytest.mark.parametrize(
    "timestamp", [0, 951782400.5, 1700000000, 1709164800, 4102444799.999, 1e9 + 0.9]
)
def test_http_date_matches_the_standard_library(timestamp: float) -> None:
    assert http_date(timestamp) == formatdate(timestamp, usegmt=True)
