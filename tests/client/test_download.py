"""Downloads of file links: resume after a drop or from a partial file, If-Range, hash checks."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from maxgate.client import (
    DownloadError,
    ForbiddenError,
    HashMismatchError,
    TransportError,
    content_hash,
    link_file_name,
)
from tests.client._support import Recorder, sha256
from tests.client.conftest import Api, ApiFactory
from tests.conftest import Account

CREDENTIALS = {"api_url": "http://gateway.test", "id_instance": 3100000001, "api_token": "a" * 50}


async def link_to(api: Api, data: bytes, name: str = "data.bin") -> str:
    """Store ``data`` with uploadFile; returns its link."""
    return str((await api.upload_file(io.BytesIO(data), file_name=name)).url_file)


def recording(**options: object) -> tuple[list[Recorder], Callable[..., httpx.AsyncBaseTransport]]:
    made: list[Recorder] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        made.append(Recorder(inner, **options))  # type: ignore[arg-type]
        return made[-1]

    return made, wrap


@pytest.mark.parametrize("silent", [False, True], ids=["connection-drops", "body-ends-early"])
async def test_a_transfer_cut_mid_way_resumes_with_range(
    make_api: ApiFactory, account: Account, tmp_path: Path, content: bytes, silent: bool
) -> None:
    made, wrap = recording(cut_after=200_000, cuts=1, silent=silent)
    api = make_api(account, wrap=wrap)
    url = await link_to(api, content)
    seen: list[int] = []
    out = tmp_path / "out.bin"
    done = await api.download_link(url, out, progress=lambda d, _t: seen.append(d))

    assert out.read_bytes() == content
    assert (done.size, done.sha256, done.verified) == (len(content), sha256(content), True)
    assert (done.resumes, done.kept) == (1, 0)
    first, second = made[0].links()
    assert "range" not in first.headers
    assert second.headers["range"] == "bytes=200000-"
    assert second.headers["if-range"] == f'"{sha256(content)}"'
    assert second.headers["accept-encoding"] == "identity"
    assert 200_000 in seen and seen[-1] == len(content) and seen == sorted(seen)


async def test_a_file_object_target_resumes_too(
    make_api: ApiFactory, account: Account, content: bytes
) -> None:
    _, wrap = recording(cut_after=100_000, cuts=2)
    api = make_api(account, wrap=wrap)
    url = await link_to(api, content)
    sink = io.BytesIO(b"header:")
    sink.seek(0, io.SEEK_END)
    done = await api.download_link(url, sink)
    assert sink.getvalue() == b"header:" + content
    assert (done.path, done.resumes, done.verified) == (None, 2, True)


@pytest.mark.parametrize("size", [200_000, 512 * 1024], ids=["small", "large"])
async def test_a_partial_file_from_an_earlier_run_is_continued(
    make_api: ApiFactory, account: Account, tmp_path: Path, content: bytes, size: int
) -> None:
    # The server sends small files from memory and large ones as file responses: both ranged.
    content = content[:size]
    made, wrap = recording()
    api = make_api(account, wrap=wrap)
    url = await link_to(api, content)
    out = tmp_path / "out.bin"
    out.write_bytes(content[:123_456])
    done = await api.download_link(url, out)
    assert out.read_bytes() == content
    assert (done.kept, done.resumes, done.verified) == (123_456, 1, True)
    # From the last byte held (dropped again): a complete file still answers 206 with its ETag.
    assert [r.headers.get("range") for r in made[0].links()] == ["bytes=123455-"]


async def test_a_partial_file_of_another_file_is_detected_and_replaced(
    make_api: ApiFactory, account: Account, tmp_path: Path, content: bytes
) -> None:
    made, wrap = recording()
    api = make_api(account, wrap=wrap)
    url = await link_to(api, content)
    out = tmp_path / "out.bin"
    out.write_bytes(b"not the same prefix" * 100)
    done = await api.download_link(url, out)
    assert out.read_bytes() == content
    assert (done.kept, done.verified, done.sha256) == (0, True, sha256(content))
    assert [r.headers.get("range") for r in made[0].links()] == ["bytes=1899-", None]


@pytest.mark.parametrize("same", [True, False], ids=["same-file", "another-longer-file"])
async def test_a_complete_or_longer_file_at_the_target(
    make_api: ApiFactory, account: Account, tmp_path: Path, content: bytes, same: bool
) -> None:
    made, wrap = recording()
    api = make_api(account, wrap=wrap)
    url = await link_to(api, content)
    out = tmp_path / "out.bin"
    out.write_bytes(content if same else content[::-1] + b"tail")
    done = await api.download_link(url, out)
    assert out.read_bytes() == content and done.verified
    requests = zip(made[0].requests, made[0].statuses, strict=True)
    statuses = [status for request, status in requests if "/files/" in request.url.path]
    assert statuses == ([206] if same else [416, 200])
    assert done.kept == (len(content) if same else 0)


async def test_resume_false_starts_over(
    make_api: ApiFactory, account: Account, tmp_path: Path, content: bytes
) -> None:
    made, wrap = recording()
    api = make_api(account, wrap=wrap)
    url = await link_to(api, content)
    out = tmp_path / "out.bin"
    out.write_bytes(content[:1000])
    done = await api.download_link(url, out, resume=False)
    assert out.read_bytes() == content and done.kept == 0
    assert "range" not in made[0].links()[0].headers


async def test_corrupted_bytes_are_a_hash_mismatch(
    make_api: ApiFactory, account: Account, tmp_path: Path, content: bytes
) -> None:
    def flip(body: bytes) -> bytes:
        return body[:1000] + bytes([body[1000] ^ 1]) + body[1001:]

    _, wrap = recording(tamper=flip)
    api = make_api(account, wrap=wrap)
    url = await link_to(api, content)
    with pytest.raises(HashMismatchError) as caught:
        await api.download_link(url, tmp_path / "out.bin")
    assert caught.value.expected == sha256(content)
    assert caught.value.actual == sha256(flip(content))
    assert isinstance(caught.value, DownloadError)


@pytest.mark.parametrize(("silent", "error"), [(False, TransportError), (True, DownloadError)])
async def test_a_transfer_that_never_progresses_gives_up(
    make_api: ApiFactory,
    account: Account,
    tmp_path: Path,
    content: bytes,
    silent: bool,
    error: type[Exception],
) -> None:
    made, wrap = recording(cut_after=0, cuts=100, silent=silent)
    api = make_api(account, wrap=wrap, retries=2)
    url = await link_to(api, content)
    with pytest.raises(error) as caught:
        await api.download_link(url, tmp_path / "out.bin")
    assert "a" * 50 not in str(caught.value)
    # The first attempt and two retries, none of which got a byte.
    assert len(made[0].links()) == 3


class VersionedFile:
    """A fake link server whose file changes between requests; ETag and If-Range as RFC 9110."""

    def __init__(self, versions: list[bytes], *, etag: Callable[[bytes], str]) -> None:
        self.versions = versions
        self.etag = etag
        self.requests: list[dict[str, str]] = []
        self.app = Starlette(routes=[Route("/files/f/report.bin", self.serve)])

    async def serve(self, request: Request) -> Response:
        self.requests.append(dict(request.headers))
        data = self.versions[min(len(self.requests), len(self.versions)) - 1]
        etag = self.etag(data)
        ranged = request.headers.get("range", "")
        if_range = request.headers.get("if-range")
        if ranged.startswith("bytes=") and (if_range is None or if_range == etag):
            start = int(ranged[6:].rstrip("-"))
            return Response(
                data[start:],
                status_code=206,
                headers={
                    "etag": etag,
                    "content-range": f"bytes {start}-{len(data) - 1}/{len(data)}",
                },
            )
        cut = len(data) // 2 if len(self.requests) == 1 else len(data)
        # The first answer breaks off half-way (its declared length is the whole file).
        return Response(data[:cut], headers={"etag": etag, "content-length": str(len(data))})


async def test_a_file_that_changed_between_requests_is_fetched_whole(
    build_api: Callable[..., Api], tmp_path: Path
) -> None:
    old, new = b"old version " * 5000, b"new version!" * 6000
    server = VersionedFile([old, new], etag=lambda d: f'"{sha256(d)}"')
    api = build_api(server.app, **CREDENTIALS)
    out = tmp_path / "report.bin"
    done = await api.download_link("http://files.test/files/f/report.bin", out)
    assert out.read_bytes() == new and done.verified and done.sha256 == sha256(new)
    assert server.requests[1]["if-range"] == f'"{sha256(old)}"'
    assert server.requests[1]["range"] == f"bytes={len(old) // 2}-"


async def test_without_a_content_hash_a_partial_file_is_not_trusted(
    build_api: Callable[..., Api], tmp_path: Path
) -> None:
    data = b"opaque etag " * 4000
    server = VersionedFile([data, data], etag=lambda d: '"v1"')
    server.requests.append({})  # no first-request cut
    api = build_api(server.app, **CREDENTIALS)
    out = tmp_path / "report.bin"
    out.write_bytes(b"X" * 100)
    done = await api.download_link("http://files.test/files/f/report.bin", out)
    assert out.read_bytes() == data
    assert (done.verified, done.kept) == (False, 0)
    assert [r.get("range") for r in server.requests[1:]] == ["bytes=99-", None]


def test_content_hash_and_link_names() -> None:
    digest = "ab" * 32
    assert content_hash(f'"{digest}"') == digest
    assert content_hash(f'W/"{digest}"') is None and content_hash('"v1"') is None
    assert (
        link_file_name("http://h/files/1/abc/report%20final.pdf?exp=1&sig=x") == "report final.pdf"
    )
    assert link_file_name("http://h/files/1/abc/..%2F..%2Fetc%2Fpasswd") == ".._.._etc_passwd"
    assert link_file_name("http://h/files/1/abc/..") == "download"
    assert link_file_name("http://h/") == "download"


async def test_a_refused_link_leaves_no_file_behind(
    api: Api, tmp_path: Path, content: bytes
) -> None:
    url = await link_to(api, content)
    forged = url.replace("sig=", "sig=x")
    out = tmp_path / "out.bin"
    with pytest.raises(ForbiddenError) as caught:
        await api.download_link(forged, out)
    assert (caught.value.status_code, caught.value.method) == (403, "file link")
    assert not out.exists()
    out.write_bytes(content[:10])  # a partial file of ours is kept, though
    with pytest.raises(ForbiddenError):
        await api.download_link(forged, out)
    assert out.read_bytes() == content[:10]
