"""``fetch``: the guarded, streamed GET of sendFileByUrl, with redirects checked hop by hop.

It runs on the one outbound client (``maxgate.net.client``): every connection, each redirect's
too, goes to an address the URL guard allowed at connect time, and every hop's URL must pass
``UrlGuard.check_url`` first. A body is limited in size while it streams and in time by a
deadline that grows with its size (``maxgate.net.deadlines``). Failures are ``OutboundError``
(``OutboundBlocked`` for a refused target) with short sentences that never contain credentials.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.message
import email.utils
import logging
import posixpath
import zlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

import h11
import httpx

from maxgate.errors import OutboundError, OutboundStatus, SizeLimitExceeded
from maxgate.net.client import OutboundClient, outbound_client, split_url
from maxgate.net.connection import Connection
from maxgate.net.deadlines import MIN_RATE, TransferDeadline
from maxgate.net.urlguard import UrlGuard

__all__ = ["FetchedHead", "fetch", "outbound_client"]

logger = logging.getLogger(__name__)

DECODED_PIECE = 1024 * 1024  # bytes of decoded body handed on at most at once
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


@dataclass(frozen=True)
class FetchedHead:
    """What is known about a fetched body before reading it.

    ``url`` is the final URL after redirects, without user and password. ``content_type`` is
    the media type, lower-cased, without parameters. ``content_length`` is the announced body
    size (``None`` when absent or when the body is content-encoded). ``filename`` comes from
    ``Content-Disposition`` (``filename*`` preferred, RFC 6266), else from the URL's last path
    segment, reduced to a bare name; it is for display only, never a storage path.
    """

    url: str
    content_type: str | None
    content_length: int | None
    filename: str | None


def _clean_filename(name: str) -> str | None:
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return None if name in ("", ".", "..") else name


def _disposition_filename(value: str) -> str | None:
    message = email.message.Message()
    message["content-disposition"] = value
    plain: str | None = None
    for name, param in message.get_params(header="content-disposition", failobj=[])[1:]:
        if name.lower() != "filename":
            continue
        if isinstance(param, tuple):  # filename*=charset'lang'pct-encoded, preferred (RFC 6266)
            return _clean_filename(email.utils.collapse_rfc2231_value(param))
        if plain is None:
            plain = param
    if plain is None:
        return None
    with contextlib.suppress(UnicodeError):
        # httpx decodes headers as latin-1; many servers send raw UTF-8 names.
        plain = plain.encode("latin-1").decode("utf-8")
    return _clean_filename(plain)


def _headers(response: h11.Response) -> dict[str, str]:
    """The answer's headers by lower-case name (repeated ones joined with ", ", as httpx does;
    values decoded as latin-1, byte for byte)."""
    found: dict[str, str] = {}
    for name, value in response.headers:
        key = name.decode("ascii").lower()
        text = value.decode("latin-1")
        found[key] = f"{found[key]}, {text}" if key in found else text
    return found


def _head(url: httpx.URL, headers: dict[str, str]) -> FetchedHead:
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    length: int | None = None
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding == "identity":
        with contextlib.suppress(ValueError):
            length = int(headers.get("content-length", ""))
        if length is not None and length < 0:
            length = None
    disposition = headers.get("content-disposition")
    filename = _disposition_filename(disposition) if disposition else None
    if filename is None:
        filename = _clean_filename(posixpath.basename(url.path))
    return FetchedHead(
        url=str(url), content_type=media or None, content_length=length, filename=filename
    )


def _same_origin(url: httpx.URL, other: httpx.URL) -> bool:
    """Whether credentials for ``url`` may go to ``other``: the same scheme, host and port, or
    the same host upgraded from http to https on the default ports (httpx's rule)."""
    if (url.scheme, url.host, url.port) == (other.scheme, other.host, other.port):
        return True
    return url.host == other.host and (url.scheme, url.port, other.scheme, other.port) == (
        "http",
        None,
        "https",
        None,
    )


async def _decoded(
    chunks: AsyncGenerator[bytes, None], encoding: str
) -> AsyncGenerator[bytes, None]:
    """The body decoded from gzip or deflate, in pieces of at most DECODED_PIECE bytes (so the
    size limit is checked before a small body can inflate into a large one)."""
    wbits = _DECODERS[encoding]
    decoder = zlib.decompressobj(wbits)
    first = True
    try:
        async for chunk in chunks:
            data = chunk
            while data:
                try:
                    out = decoder.decompress(data, DECODED_PIECE)
                except zlib.error as exc:
                    if not (first and encoding == "deflate"):
                        raise OutboundError(
                            "the server sent a body that could not be decoded"
                        ) from exc
                    # "deflate" is often raw deflate without the zlib header (as httpx allows)
                    decoder, first = zlib.decompressobj(-zlib.MAX_WBITS), False
                    continue
                first = False
                data = decoder.unconsumed_tail
                if out:
                    yield out
        rest = decoder.flush()
        if rest:
            yield rest
    finally:
        await chunks.aclose()


async def _limited(
    chunks: AsyncGenerator[bytes, None], *, limit: int, deadline: TransferDeadline, sized: bool
) -> AsyncGenerator[bytes, None]:
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > limit:
                raise SizeLimitExceeded(received, limit)
            if not sized:
                deadline.grow(received)
            yield chunk
    finally:
        await chunks.aclose()


async def _request(
    client: OutboundClient,
    target: httpx.URL,
    *,
    guard: UrlGuard,
    auth: bytes | None,
    budget: TransferDeadline,
) -> tuple[Connection, httpx.URL, h11.Response]:
    """GET ``target``, following redirects; the connection, the final URL and its head."""
    origin = target
    for hop in range(client.max_redirects + 1):
        key, authority, path = split_url(target)
        headers = [
            (b"Host", authority),
            (b"User-Agent", client.user_agent),
            (b"Accept", b"*/*"),
            # The bytes as stored: the limit then applies to what is sent, Content-Length is
            # the real size, and there is no decompression bomb to inflate.
            (b"Accept-Encoding", b"identity"),
            # Each answer is then the first on its connection, and its body can be read
            # straight from the stream (Connection.sized_body).
            (b"Connection", b"close"),
        ]
        if auth is not None and _same_origin(origin, target):
            headers.append((b"Authorization", auth))
        try:
            async with asyncio.timeout(budget.remaining()):
                connection = await client.connect(key)
        except TimeoutError:
            raise OutboundError(budget.message()) from None
        try:
            connection.deadline = budget
            await connection.send(b"GET", path, headers)
            response = await connection.head()
        except BaseException:
            connection.close()
            raise
        # Neither userinfo nor query: a presigned URL's signature is a secret, and logs keep none.
        shown = target.copy_with(username=None, password=None, query=None, fragment=None)
        logger.debug("GET %s: %d", shown, response.status_code)
        location = _headers(response).get("location")
        if response.status_code not in _REDIRECTS or location is None:
            return connection, target, response
        connection.close()
        if hop == client.max_redirects:
            break
        try:
            hop_url = target.join(location)
        except (httpx.InvalidURL, UnicodeError) as exc:
            raise OutboundError("the server sent an invalid redirect") from exc
        target = guard.check_url(hop_url).copy_with(username=None, password=None, fragment=None)
    raise OutboundError(f"too many redirects (more than {client.max_redirects})")


@contextlib.asynccontextmanager
async def fetch(
    client: OutboundClient,
    url: str,
    *,
    limit: int,
    guard: UrlGuard,
    deadline: float | None = None,
    min_rate: float = MIN_RATE,
) -> AsyncIterator[tuple[FetchedHead, AsyncIterator[bytes]]]:
    """GET ``url`` with ``client`` and stream the body.

    Yields the response head and an iterator over the body's bytes; the connection is closed
    on exit. ``guard`` checks the URL and each redirect's before any traffic (every
    connection is checked again). Redirects are followed up to the client's
    ``max_redirects``. A body larger than ``limit`` bytes raises ``SizeLimitExceeded``, early
    when ``Content-Length`` announces it, otherwise while streaming, before the chunk that
    crosses the limit is yielded. Each connect, read and write is bounded by the client's
    timeout (a stalled server is cut after that long). With ``deadline`` (seconds) the whole
    fetch is bounded too, by ``deadline`` plus one second per ``min_rate`` bytes of the body
    (``maxgate.net.deadlines``): a large file may take as long as it needs at that rate.
    Raises ``OutboundBlocked`` for a refused target, ``OutboundStatus`` for an answer other
    than 2xx (``"server answered 404"``), and ``OutboundError`` (``"connection refused"``,
    ``"timed out after 30 s"`` …) for any other failure;
    messages never contain credentials. User and password in the URL are sent as basic auth,
    to that origin only. A gzip or deflate body (sent although we ask for ``identity``) is
    decoded, and the limit applies to the decoded bytes.
    """
    target = guard.check_url(url)
    auth: bytes | None = None
    if target.userinfo:
        auth = b"Basic " + base64.b64encode(target.userinfo)
        target = target.copy_with(username=None, password=None)
    budget = TransferDeadline(deadline, min_rate=min_rate)
    connection: Connection | None = None
    body: AsyncGenerator[bytes, None] | None = None
    try:
        connection, final, response = await _request(
            client, target, guard=guard, auth=auth, budget=budget
        )
        status = response.status_code
        if not 200 <= status < 300:
            raise OutboundStatus(status)
        headers = _headers(response)
        head = _head(final, headers)
        if head.content_length is not None and head.content_length > limit:
            raise SizeLimitExceeded(head.content_length, limit)
        if head.content_length is not None:
            budget.grow(head.content_length)
        encoding = headers.get("content-encoding", "identity").strip().lower()
        chunks: AsyncGenerator[bytes, None]
        if head.content_length is not None and status != 204 and "transfer-encoding" not in headers:
            chunks = connection.sized_body(head.content_length)
        elif encoding in _DECODERS:
            chunks = _decoded(connection.body(), encoding)
        else:
            chunks = connection.body()  # chunked, read to the close, or an unknown encoding
        body = _limited(chunks, limit=limit, deadline=budget, sized=head.content_length is not None)
        yield head, body
    finally:
        if body is not None:
            await body.aclose()
        if connection is not None:
            connection.close()
