"""One outbound HTTP/1.1 connection: h11 over an asyncio protocol, opened only where allowed.

``sendFileByUrl`` and webhooks reach URLs chosen by API users. Checking a URL's host before the
request is not enough: the name can resolve to a public address for the check and to
``127.0.0.1`` a moment later when the connection is opened (DNS rebinding), and a redirect can
point anywhere. So the check sits where the socket is opened: ``open_connection`` resolves the
host itself, lets ``UrlGuard`` judge every address and connects to exactly those addresses.
TLS still runs against the host name (SNI and certificate checks on the name from the URL);
only the TCP connect uses the checked address.

h11 (httpx's own HTTP/1.1 state machine) does the protocol: request framing, the answer's head,
chunked and read-to-close bodies. A ``Content-Length`` body may instead be read straight from
the connection (``sized_body``): h11 copies every byte twice on its way through, as asyncio's
``StreamReader`` would, which was most of the CPU of receiving a large file (bench/RESULTS.md,
P6); ``Stream`` hands on what each socket read returned. Every failure is an
``OutboundError`` whose message is a short sentence without header values or credentials.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import ipaddress
import logging
import socket
import ssl
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterator, Sequence

import h11

from maxgate.errors import OutboundBlocked, OutboundError
from maxgate.net.deadlines import TransferDeadline, timed_out
from maxgate.net.urlguard import IPAddress, UrlGuard

__all__ = [
    "BROKEN_READ",
    "Connection",
    "Resolver",
    "open_connection",
    "resolve_host",
    "vetted_addresses",
]

logger = logging.getLogger(__name__)

HIGH_WATER = 4 * 1024 * 1024  # bytes received and not yet read at which reading pauses
LOW_WATER = 1024 * 1024  # ... and at which it resumes
BROKEN_READ = "the connection broke while reading the answer"
BROKEN_WRITE = "the connection broke while sending the request"
INVALID_ANSWER = "the server sent an invalid HTTP response"

Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
"""Resolves ``(host, port)`` to addresses; the seam tests use to fake DNS."""

Key = tuple[str, str, int]
"""Where a connection goes: scheme, host (IDNA-encoded, IPv6 without brackets), port."""


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Resolve ``host`` with the system resolver; addresses in its order, without repeats."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
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
        raise OutboundError(f"host {host} could not be resolved") from exc
    if not addresses:
        raise OutboundError(f"host {host} could not be resolved")
    guard.check_resolved(host, addresses)
    return addresses


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def describe_os_error(exc: BaseException) -> str:
    """A few words for why a connection could not be opened (``connection refused`` …)."""
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "the server's TLS certificate could not be verified"
        if isinstance(cause, ssl.SSLError):
            return "the TLS handshake with the server failed"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, OSError) and cause.errno == errno.EHOSTUNREACH:
            return "host unreachable"
        if isinstance(cause, OSError) and cause.errno == errno.ENETUNREACH:
            return "network unreachable"
    return "could not connect"


class Stream(asyncio.Protocol):
    """A connection's bytes as the transport delivers them, handed on without copying.

    asyncio's ``StreamReader`` copies every byte twice (into its buffer, then out of it), which
    for a 1 GiB file was as much CPU as the rest of receiving it. Here each piece the socket
    read returned is kept as it is until it is read; reading pauses while more than
    ``HIGH_WATER`` bytes wait and resumes at ``LOW_WATER``. Writes wait (``drain``) while the
    transport's buffer is full.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._pieces: collections.deque[bytes] = collections.deque()
        self._held = 0
        self._ended = False
        self._error: BaseException | None = None
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._can_write: asyncio.Future[None] | None = None
        self._closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._pieces.append(data)
        self._held += len(data)
        if self._held > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> None:
        self._ended = True
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended = True
        self._error = exc
        self._wake()
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._can_write = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        self._can_write = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def at_eof(self) -> bool:
        """Whether the other side has closed and every byte has been read."""
        return self._ended and not self._pieces

    async def read(self) -> bytes:
        """The next piece received (b"" at the end); raises the connection's error if it
        broke (``OSError``)."""
        if not self._pieces and not self._ended:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._pieces:
            piece = self._pieces.popleft()
            self._held -= len(piece)
            if self._paused and self._held <= LOW_WATER and self.transport is not None:
                self._paused = False
                self.transport.resume_reading()
            return piece
        if self._error is not None:
            raise ConnectionResetError("the connection broke") from self._error
        return b""

    async def write(self, data: bytes) -> None:
        """Write ``data``, waiting while the transport's buffer is full."""
        if self._error is not None:
            raise ConnectionResetError("the connection broke") from self._error
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the connection is closed")
        self.transport.write(data)
        if self._can_write is not None:
            await self._can_write
            if self._error is not None:
                raise ConnectionResetError("the connection broke") from self._error

    def close(self) -> None:
        """Close the connection (without waiting)."""
        if self.transport is not None:
            self.transport.close()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await self._closed


class Connection:
    """One HTTP/1.1 connection: requests one after another (no pipelining).

    ``timeout`` bounds each read and write (a stalled server); None leaves all bounds to the
    caller. A transfer may also set ``deadline``, which then bounds every wait too, with its
    own message.
    """

    def __init__(self, key: Key, stream: Stream, *, timeout: float | None) -> None:
        self.key = key
        self.stream = stream
        self.timeout = timeout
        self.deadline: TransferDeadline | None = None
        self.protocol = h11.Connection(our_role=h11.CLIENT)
        self.reused = False  # it carried an earlier request
        self.answered = False  # a byte of the answer to the current request has arrived

    def _limit(self) -> tuple[float | None, str]:
        """The time a wait may take now, and the sentence for when it runs out."""
        budget = None if self.deadline is None else self.deadline.remaining()
        if budget is not None and (self.timeout is None or budget < self.timeout):
            assert self.deadline is not None
            return budget, self.deadline.message()
        return self.timeout, timed_out(self.timeout)

    async def _read(self) -> bytes:
        seconds, message = self._limit()
        try:
            if seconds is None:  # the caller bounds the whole exchange (webhooks)
                data = await self.stream.read()
            else:
                async with asyncio.timeout(seconds):
                    data = await self.stream.read()
        except TimeoutError:
            raise OutboundError(message) from None
        except OSError as exc:
            raise OutboundError(BROKEN_READ) from exc
        self.answered = self.answered or bool(data)
        return data

    async def send(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterable[bytes] = b"",
    ) -> None:
        """Send one request with a body of ``body`` (``Content-Length`` is the caller's).

        A body given as an async iterable is streamed piece by piece, each write waiting for
        the socket to take it (constant memory however large); h11 refuses a body that does
        not match the announced ``Content-Length``.
        """
        protocol = self.protocol
        self.answered = False
        try:
            out = protocol.send(h11.Request(method=method, target=target, headers=headers)) or b""
        except h11.LocalProtocolError:
            # h11's message quotes the refused value, which may be a webhook's token (a
            # control character in it): the error goes to the log and the database.
            raise OutboundError(
                "a header of the request is not valid HTTP (a control character in a value?)"
            ) from None
        if isinstance(body, bytes):
            if body:
                out += protocol.send(h11.Data(data=body)) or b""
        else:
            await self._write(out)
            out = b""
            try:
                async for piece in body:
                    if piece:
                        await self._write(protocol.send(h11.Data(data=piece)) or b"")
            except h11.LocalProtocolError:
                raise OutboundError("the request body does not match its length") from None
        try:
            out += protocol.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            raise OutboundError("the request body does not match its length") from None
        await self._write(out)

    async def _write(self, out: bytes) -> None:
        seconds, message = self._limit()
        try:
            if seconds is None:
                await self.stream.write(out)
            else:
                async with asyncio.timeout(seconds):
                    await self.stream.write(out)
        except TimeoutError:
            raise OutboundError(message) from None
        except OSError as exc:
            raise OutboundError(BROKEN_WRITE) from exc

    async def head(self) -> h11.Response:
        """Read the answer's head (interim 1xx answers are skipped)."""
        while True:
            event = self._next_event(INVALID_ANSWER)
            if event is h11.NEED_DATA:
                self.protocol.receive_data(await self._read())
            elif isinstance(event, h11.Response):
                return event
            elif not isinstance(event, h11.InformationalResponse):
                raise OutboundError(INVALID_ANSWER)

    def _next_event(self, failure: str) -> object:
        try:
            return self.protocol.next_event()
        except h11.RemoteProtocolError as exc:
            raise OutboundError(failure) from exc

    async def body(self) -> AsyncGenerator[bytes, None]:
        """The answer's body as h11 frames it (any framing), piece by piece."""
        while True:
            event = self._next_event(BROKEN_READ)  # cut short, or broken framing
            if event is h11.NEED_DATA:
                self.protocol.receive_data(await self._read())
            elif isinstance(event, h11.Data):
                if event.data:
                    yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return
            else:
                raise OutboundError(BROKEN_READ)

    async def sized_body(self, length: int) -> AsyncGenerator[bytes, None]:
        """The ``length`` bytes of a ``Content-Length`` body, read from the stream as they
        come, past h11 (which holds what it received after the head, ``trailing_data``). The
        connection cannot carry another request afterwards. Bytes past ``length`` are not the
        body's and are dropped; a connection that ends early raises ``BROKEN_READ``."""
        held = self.protocol.trailing_data[0]
        self.protocol = h11.Connection(our_role=h11.CLIENT)  # out of step now: never reused
        left = length
        chunk = held
        while left > 0:
            if not chunk:
                chunk = await self._read()
                if not chunk:
                    raise OutboundError(BROKEN_READ)
            if len(chunk) > left:
                chunk = chunk[:left]
            left -= len(chunk)
            yield chunk
            chunk = b""

    async def drain_body(self, limit: int) -> None:
        """Read and drop the answer's body; ``OutboundError`` if it is larger than ``limit``."""
        received = 0
        async for piece in self.body():
            received += len(piece)
            if received > limit:
                raise OutboundError(f"the answer is larger than {limit} bytes")

    @property
    def reusable(self) -> bool:
        """Whether both sides finished cleanly and may go on (then starts the next cycle)."""
        protocol = self.protocol
        if protocol.our_state is h11.DONE and protocol.their_state is h11.DONE:
            protocol.start_next_cycle()
            return not self.stream.at_eof()
        return False

    def close(self) -> None:
        """Close the connection (without waiting for the close to complete)."""
        self.stream.close()

    async def aclose(self) -> None:
        """Close the connection and wait until it is closed."""
        self.stream.close()
        await self.stream.wait_closed()


async def open_connection(
    key: Key,
    guard: UrlGuard,
    *,
    timeout: float | None,  # noqa: ASYNC109 - the connection's limit per step, kept by it
    resolver: Resolver = resolve_host,
    ssl_context: ssl.SSLContext | None = None,
) -> Connection:
    """Open a connection to ``key``'s host, to an address resolved once and checked by
    ``guard``: the addresses in order until one answers, all within ``timeout`` seconds.

    ``https`` runs TLS with ``ssl_context``, checking the certificate against the host name.
    Raises ``OutboundBlocked`` for a refused address (logged), ``OutboundError`` otherwise.
    """
    scheme, host, port = key
    secure = scheme == "https"
    loop = asyncio.get_running_loop()
    if secure and ssl_context is None:
        raise ValueError("an https connection needs an ssl_context")
    try:
        async with asyncio.timeout(timeout):
            try:
                addresses = await vetted_addresses(guard, host, port, resolver=resolver)
            except OutboundBlocked as exc:
                logger.warning("refused outbound connection to %s port %d: %s", host, port, exc)
                raise
            failure: OSError | None = None
            for address in addresses:
                try:
                    _transport, stream = await loop.create_connection(
                        Stream,
                        str(address),
                        port,
                        ssl=ssl_context if secure else None,
                        server_hostname=host if secure else None,
                    )
                except ssl.SSLError as exc:
                    raise OutboundError(describe_os_error(exc)) from exc  # the same answer
                except OSError as exc:
                    failure = exc
                    continue
                return Connection(key, stream, timeout=timeout)
            assert failure is not None  # vetted_addresses never returns an empty list
            raise OutboundError(describe_os_error(failure)) from failure
    except TimeoutError:
        raise OutboundError(timed_out(timeout)) from None
