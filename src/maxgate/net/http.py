"""The shared outbound HTTP client, with the URL guard enforced at connect time.

``sendFileByUrl`` and webhooks fetch URLs chosen by API users. Checking a URL's host before the
request is not enough: the name can resolve to a public address for the check and to
``127.0.0.1`` a moment later when httpx connects (DNS rebinding), and a redirect can point
anywhere. So the check sits where the socket is opened: ``GuardedNetworkBackend`` is an httpcore
network backend whose ``connect_tcp`` resolves the host itself, lets ``UrlGuard`` judge every
address, and connects to exactly those addresses. Every connection goes through it, including
the ones redirects open; TLS still runs against the host name (SNI and certificate checks are
httpcore's, on the hostname from the URL), only the TCP connect uses the checked address.

Seam: httpx 0.28 has no public way to hand ``AsyncHTTPTransport`` a network backend (proposed
in https://github.com/encode/httpx/pull/3749). The alternative to one private attribute would
be a hand-written transport over ``httpcore.AsyncConnectionPool``, copying httpx's exception
mapping and stream wrapping; that is more of someone else's code to keep in step than one
attribute. ``_use_network_backend`` isolates it and fails loudly if httpx changes.

Proxies are never used: a proxy would open the connection, not us. httpx ignores proxy
environment variables for a client built with an explicit transport, and ``trust_env=False``
says so once more (and keeps ``SSL_CERT_FILE`` and ``.netrc`` out too).
"""

from __future__ import annotations

import contextlib
import email.message
import email.utils
import errno
import ipaddress
import logging
import posixpath
import socket
import ssl
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from dataclasses import dataclass

import anyio
import httpcore
import httpx

from maxgate.errors import OutboundBlocked, OutboundError, SizeLimitExceeded
from maxgate.net.deadlines import MIN_RATE, TransferDeadline, timed_out
from maxgate.net.rawbody import BROKEN_READ, SplitHeadStream, read_body
from maxgate.net.rawbody import READ_SIZE as READ_SIZE
from maxgate.net.urlguard import IPAddress, UrlGuard

__all__ = [
    "FetchedHead",
    "GuardedNetworkBackend",
    "Resolver",
    "fetch",
    "outbound_client",
    "resolve_host",
]

logger = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
"""Resolves ``(host, port)`` to addresses; the seam tests use to fake DNS."""

_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Resolve ``host`` with the system resolver; addresses in its order, without repeats."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def vetted_addresses(
    guard: UrlGuard, host: str, port: int, *, resolver: Resolver = resolve_host
) -> Sequence[IPAddress]:
    """The addresses to connect to for ``host``: resolved once and every one checked by
    ``guard`` (``OutboundBlocked`` if any is refused); connect to these very addresses."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        guard.check_address(host)  # the message shows the address as written
        return [literal]
    try:
        addresses = await resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise _ConnectFailed(f"host {host} could not be resolved") from exc
    if not addresses:
        raise _ConnectFailed(f"host {host} could not be resolved")
    guard.check_resolved(host, addresses)
    return addresses


class _ConnectFailed(httpcore.ConnectError):
    """A connect failure whose message is already a sentence fit for the user."""


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _describe_os_error(exc: BaseException) -> str:
    for cause in _causes(exc):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, OSError) and cause.errno == errno.EHOSTUNREACH:
            return "host unreachable"
        if isinstance(cause, OSError) and cause.errno == errno.ENETUNREACH:
            return "network unreachable"
    return "could not connect"


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that only opens TCP connections the guard allows.

    ``connect_tcp`` resolves the host once (``resolver``), refuses the connection with
    ``OutboundBlocked`` if any resolved address is refused, and otherwise connects to those very
    addresses in order through ``inner`` (httpcore's anyio backend by default), so the address
    checked is the address connected to. Unix sockets are refused.
    """

    def __init__(
        self,
        guard: UrlGuard,
        *,
        resolver: Resolver = resolve_host,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._guard = guard
        self._resolver = resolver
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int) -> Sequence[IPAddress]:
        return await vetted_addresses(self._guard, host, port, resolver=self._resolver)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve, check every address, then connect to the first one that answers."""
        end = None if timeout is None else anyio.current_time() + timeout
        try:
            with anyio.fail_after(timeout):
                addresses = await self._addresses(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except OutboundBlocked as exc:
            logger.warning("refused outbound connection to %s port %d: %s", host, port, exc)
            raise
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            remaining = None if end is None else end - anyio.current_time()
            if remaining is not None and remaining <= 0:
                raise httpcore.ConnectTimeout(f"connecting to {host} timed out")
            try:
                stream = await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
                return SplitHeadStream(stream)
            except httpcore.ConnectTimeout:
                raise
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None  # addresses is never empty
        raise _ConnectFailed(_describe_os_error(failure)) from failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Refused: outbound fetches only ever go over TCP."""
        raise _ConnectFailed("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        """Sleep on the inner backend (httpcore uses it between connect retries)."""
        await self._inner.sleep(seconds)


def _use_network_backend(
    transport: httpx.AsyncHTTPTransport, pool: httpcore.AsyncConnectionPool
) -> None:
    """Make ``transport`` send through ``pool`` (which carries our network backend).

    Private-attribute seam: httpx 0.28 builds its httpcore pool in ``__init__`` and offers no
    ``network_backend=`` argument (https://github.com/encode/httpx/discussions/3180), so we
    replace ``transport._pool``. Raise rather than silently leave connections unguarded if httpx
    stops keeping its pool there; tests/net/test_http.py checks the seam end to end.
    """
    if not isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        raise RuntimeError(
            "httpx.AsyncHTTPTransport no longer keeps its pool in '_pool'; "
            "maxgate.net.http cannot install the outbound URL guard"
        )
    transport._pool = pool


def outbound_client(
    guard: UrlGuard,
    *,
    timeout: float = 30.0,
    max_redirects: int = 5,
    user_agent: str = "maxgate",
    ssl_context: ssl.SSLContext | None = None,
    resolver: Resolver | None = None,
) -> httpx.AsyncClient:
    """Build the httpx client for every outbound request maxgate makes on a user's behalf.

    Every TCP connection it opens, redirects included, is resolved and checked by ``guard``
    at connect time; every request (each redirect hop too) must be ``http`` or ``https``.
    Redirects are followed up to ``max_redirects``; ``timeout`` seconds apply to connecting
    and to each read and write. Proxy and certificate settings from the environment are
    ignored; pass ``ssl_context`` to trust other CAs. ``resolver`` replaces the system DNS
    (tests). Besides httpx's own errors the client raises ``OutboundBlocked``. User and
    password in a URL are sent as basic auth and kept out of httpx's log lines. The caller
    owns the client and must close it (``async with`` or ``aclose()``).
    """
    context = ssl_context if ssl_context is not None else httpx.create_ssl_context(trust_env=False)
    backend = GuardedNetworkBackend(guard, resolver=resolver or resolve_host)
    transport = httpx.AsyncHTTPTransport(verify=context, trust_env=False, limits=_LIMITS)
    pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=_LIMITS.max_connections,
        max_keepalive_connections=_LIMITS.max_keepalive_connections,
        keepalive_expiry=_LIMITS.keepalive_expiry,
        network_backend=backend,
    )
    _use_network_backend(transport, pool)

    async def check_request(request: httpx.Request) -> None:
        guard.check_url(request.url)
        if request.url.userinfo:
            # httpx has already turned them into an Authorization header; drop them from the
            # URL so that its "HTTP Request: GET <url>" log line cannot show them.
            request.url = request.url.copy_with(username=None, password=None)

    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=True,
        max_redirects=max_redirects,
        timeout=httpx.Timeout(timeout),
        trust_env=False,
        headers={"User-Agent": user_agent},
        event_hooks={"request": [check_request]},
    )


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


def _head(response: httpx.Response) -> FetchedHead:
    url = response.url.copy_with(username=None, password=None)
    media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    length: int | None = None
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "identity":
        with contextlib.suppress(ValueError):
            length = int(response.headers.get("content-length", ""))
        if length is not None and length < 0:
            length = None
    disposition = response.headers.get("content-disposition")
    filename = _disposition_filename(disposition) if disposition else None
    if filename is None:
        filename = _clean_filename(posixpath.basename(url.path))
    return FetchedHead(
        url=str(url), content_type=media or None, content_length=length, filename=filename
    )


# h11's words for a body cut short by the server closing the connection (h11/_readers.py).
_CUT_SHORT = "peer closed connection without sending complete message body"


def _translate(exc: httpx.HTTPError, client: httpx.AsyncClient) -> OutboundError:
    """Turn an httpx error into a short sentence for the user."""
    timeouts = client.timeout
    if isinstance(exc, httpx.ConnectTimeout):
        return OutboundError(timed_out(timeouts.connect))
    if isinstance(exc, httpx.ReadTimeout):
        return OutboundError(timed_out(timeouts.read))
    if isinstance(exc, httpx.WriteTimeout):
        return OutboundError(timed_out(timeouts.write))
    if isinstance(exc, httpx.PoolTimeout):
        return OutboundError(timed_out(timeouts.pool))
    if isinstance(exc, httpx.TimeoutException):
        return OutboundError("timed out")
    if isinstance(exc, httpx.TooManyRedirects):
        return OutboundError(f"too many redirects (more than {client.max_redirects})")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return OutboundBlocked("only http and https URLs are allowed")
    if isinstance(exc, httpx.ConnectError):
        for cause in _causes(exc):
            if isinstance(cause, _ConnectFailed):
                return OutboundError(str(cause))
            if isinstance(cause, ssl.SSLCertVerificationError):
                return OutboundError("the server's TLS certificate could not be verified")
            if isinstance(cause, ssl.SSLError):
                return OutboundError("the TLS handshake with the server failed")
        return OutboundError(_describe_os_error(exc))
    if isinstance(exc, httpx.RemoteProtocolError):
        if str(exc).startswith(_CUT_SHORT):
            return OutboundError(BROKEN_READ)  # as rawbody.read_body says for the same cut
        return OutboundError("the server sent an invalid HTTP response")
    if isinstance(exc, httpx.ReadError):
        return OutboundError(BROKEN_READ)
    if isinstance(exc, httpx.WriteError):
        return OutboundError("the connection broke while sending the request")
    if isinstance(exc, httpx.DecodingError):
        return OutboundError("the server sent a body that could not be decoded")
    if isinstance(exc, httpx.InvalidURL):
        return OutboundError("the URL is malformed")
    return OutboundError("the request failed")


async def _body(
    response: httpx.Response,
    *,
    limit: int,
    deadline: TransferDeadline,
    sized: bool,
    client: httpx.AsyncClient,
) -> AsyncGenerator[bytes, None]:
    chunks = response.aiter_bytes()
    received = 0
    try:
        while True:
            try:
                with anyio.fail_after(deadline.remaining()):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except httpx.HTTPError as exc:
                raise _translate(exc, client) from exc
            except TimeoutError as exc:
                raise OutboundError(deadline.message()) from exc
            received += len(chunk)
            if received > limit:
                raise SizeLimitExceeded(received, limit)
            if not sized:
                deadline.grow(received)
            yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def _claimed_stream(response: httpx.Response, head: FetchedHead) -> SplitHeadStream | None:
    """The connection to read ``response``'s body from directly (``maxgate.net.rawbody``), or
    None when httpx must read it: only a plain-``http`` answer with a body of ``Content-Length``
    bytes, not content-encoded, still untouched on its connection."""
    if head.content_length is None or response.url.scheme != "http":
        return None  # no length, content-encoded (_head gives no length then), or TLS
    if response.status_code == 204 or "transfer-encoding" in response.headers:
        return None  # no body whatever the length says, or a chunked one (h11's framing rules)
    stream = response.extensions.get("network_stream")
    if isinstance(stream, SplitHeadStream) and stream.claim_body():
        return stream
    return None


@contextlib.asynccontextmanager
async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    limit: int,
    guard: UrlGuard,
    deadline: float | None = None,
    min_rate: float = MIN_RATE,
) -> AsyncIterator[tuple[FetchedHead, AsyncIterator[bytes]]]:
    """GET ``url`` with ``client`` (from ``outbound_client``) and stream the body.

    Yields the response head and an iterator over the body's bytes; the response is closed on
    exit. ``guard`` checks the URL up front (the client checks every connection again). A body
    larger than ``limit`` bytes raises ``SizeLimitExceeded``, early when ``Content-Length``
    announces it, otherwise while streaming, before the chunk that crosses the limit is
    yielded. Each connect, read and write is bounded by the client's timeout (a stalled server
    is cut after that long). With ``deadline`` (seconds) the whole fetch is bounded too, by
    ``deadline`` plus one second per ``min_rate`` bytes of the body (``maxgate.net.deadlines``):
    a large file may take as long as it needs at that rate. Raises ``OutboundBlocked`` for a
    refused target and ``OutboundError`` (``"server answered 404"``, ``"connection refused"``,
    ``"timed out after 30 s"`` …) for any other failure; messages never contain credentials.
    User and password in the URL are sent as basic auth. Each request (each redirect hop too)
    asks for ``Connection: close``; a plain-``http`` body of ``Content-Length`` bytes is then
    read straight from its connection (``maxgate.net.rawbody``), any other body by httpx.
    """
    target = guard.check_url(url)
    auth: httpx.BasicAuth | None = None
    if target.userinfo:
        # As httpx would, but keeping credentials out of request.url and so out of its logs.
        auth = httpx.BasicAuth(target.username, target.password)
        target = target.copy_with(username=None, password=None)
    budget = TransferDeadline(deadline, min_rate=min_rate)
    # Ask for the bytes as stored: the limit then applies to what is sent, Content-Length
    # is the real size, and there is no decompression bomb to inflate. "Connection: close"
    # (on redirects too): each answer is then the first on its connection, whose body can be
    # read past h11 (maxgate.net.rawbody); a kept connection would leave it to httpx.
    request = client.build_request(
        "GET", target, headers={"Accept-Encoding": "identity", "Connection": "close"}
    )
    try:
        with anyio.fail_after(budget.remaining()):
            response = await client.send(request, auth=auth, stream=True)
    except httpx.HTTPError as exc:
        raise _translate(exc, client) from exc
    except TimeoutError as exc:
        raise OutboundError(budget.message()) from exc
    body: AsyncGenerator[bytes, None] | None = None
    try:
        if not response.is_success:
            raise OutboundError(f"server answered {response.status_code}")
        head = _head(response)
        if head.content_length is not None and head.content_length > limit:
            raise SizeLimitExceeded(head.content_length, limit)
        if head.content_length is not None:
            budget.grow(head.content_length)
        stream = _claimed_stream(response, head)
        if stream is not None and head.content_length is not None:
            body = read_body(
                stream, head.content_length, read_timeout=client.timeout.read, deadline=budget
            )
        else:
            body = _body(
                response,
                limit=limit,
                deadline=budget,
                sized=head.content_length is not None,
                client=client,
            )
        yield head, body
    finally:
        if body is not None:
            await body.aclose()
        await response.aclose()
