"""A lean HTTP/1.1 POST client for webhook deliveries: h11 over asyncio streams, keep-alive.

Every other outbound request goes through the httpx client of ``maxgate.net.http``; webhooks do
not, because P5 (bench/RESULTS.md) found httpx's request path — its models, connection pool and
anyio cancel scopes around every read and write — to be two thirds of a worker's CPU when it
delivers hundreds of notifications a second. A webhook needs little: POST a small JSON body, read
the status, drop the answer, keep the connection for the next one. That is what this does, with
h11 (httpx's own HTTP/1.1 state machine) doing the protocol.

Safety is the same as httpx's path: the URL passes ``UrlGuard.check_url``; every connection goes
to addresses resolved once and all checked by the guard (``vetted_addresses``), so a name cannot
change its answer between the check and the connect; TLS verifies the certificate and the host
name (system CAs unless a context is given); redirects are not followed; proxies and
environment settings are ignored; a whole delivery — connect, send, answer — has one deadline.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import time
from collections.abc import Mapping

import h11

from maxgate.net.http import Resolver, resolve_host, vetted_addresses
from maxgate.net.urlguard import UrlGuard

MAX_ANSWER = 64 * 1024  # bytes of a receiver's answer body read before giving up the connection
IDLE_SECONDS = 5.0  # a kept connection unused this long is closed rather than reused
READ_SIZE = 64 * 1024

_Key = tuple[str, str, int]
_Target = tuple[_Key, bool, list[tuple[bytes, bytes]], bytes]  # key, TLS, fixed headers, path


class AnswerTooLarge(Exception):
    """The receiver's answer body was larger than MAX_ANSWER."""


class _Connection:
    """One HTTP/1.1 connection: requests one after another (no pipelining)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = h11.Connection(our_role=h11.CLIENT)
        self.used_at = time.monotonic()
        self.reused = False

    async def post(self, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
        """Send one POST and read its answer; returns the status. Raises on any failure."""
        protocol = self.protocol
        try:
            request = h11.Request(method=b"POST", target=target, headers=headers)
        except h11.LocalProtocolError:
            # h11's message quotes the refused value, which may be the webhook's token (a
            # control character in it): the error goes to the log and the database.
            raise h11.LocalProtocolError(
                "a header of the request is not valid HTTP (a control character in a value?)"
            ) from None
        out = protocol.send(request)
        out = (out or b"") + (protocol.send(h11.Data(data=body)) or b"")
        out += protocol.send(h11.EndOfMessage()) or b""
        self.writer.write(out)
        await self.writer.drain()
        status = 0
        received = 0
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                protocol.receive_data(await self.reader.read(READ_SIZE))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                received += len(event.data)
                if received > MAX_ANSWER:
                    raise AnswerTooLarge(f"the answer is larger than {MAX_ANSWER} bytes")
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionResetError("the receiver closed the connection")
            # InformationalResponse (100 Continue …): keep reading
        self.used_at = time.monotonic()
        return status

    @property
    def reusable(self) -> bool:
        """Whether both sides finished cleanly and may go on (then starts the next cycle)."""
        if self.protocol.our_state is h11.DONE and self.protocol.their_state is h11.DONE:
            self.protocol.start_next_cycle()
            return True
        return False

    def close(self) -> None:
        self.writer.close()


class WebhookPoster:
    """POSTs bodies to URLs the guard allows, keeping connections per (scheme, host, port)."""

    def __init__(
        self,
        guard: UrlGuard,
        *,
        resolver: Resolver = resolve_host,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = "maxgate",
    ) -> None:
        self.guard = guard
        self._resolver = resolver
        self._ssl = ssl_context
        self._user_agent = user_agent.encode()
        self._idle: dict[_Key, list[_Connection]] = {}
        self._targets: dict[str, _Target] = {}

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, deadline: float
    ) -> int:
        """POST ``body`` to ``url`` within ``deadline`` seconds in all; returns the status.

        Raises ``OutboundBlocked``/``OutboundError`` (guard), ``TimeoutError``, ``OSError``,
        ``h11.ProtocolError`` or ``AnswerTooLarge``. A kept connection the receiver had
        meanwhile closed is replaced once, transparently.
        """
        target_of = self._targets.get(url)
        if target_of is None:
            target_of = self._target(url)
        key, secure, fixed, target = target_of
        fields = [(b"Content-Length", str(len(body)).encode())]
        fields += [(name.encode(), value.encode()) for name, value in headers.items()]
        own_auth = any(name == b"Authorization" for name, _ in fixed)
        if own_auth and any(name.lower() == "authorization" for name in headers):
            fixed = [field for field in fixed if field[0] != b"Authorization"]  # the token wins
        fields = fixed + fields
        async with asyncio.timeout(deadline):
            while True:
                connection = self._take(key)
                if connection is None:
                    connection = await self._connect(key, secure)
                try:
                    status = await connection.post(target, fields, body)
                except (ConnectionError, h11.RemoteProtocolError):
                    connection.close()
                    if connection.reused:
                        continue  # the receiver dropped a kept connection: once more, fresh
                    raise
                except BaseException:
                    connection.close()
                    raise
                if connection.reusable:
                    connection.reused = True
                    self._idle.setdefault(key, []).append(connection)
                else:
                    connection.close()
                return status

    def _target(self, url: str) -> _Target:
        """Check and take apart a URL once (kept: the guard's rules do not change; every new
        connection is still checked against what the host resolves to then)."""
        parsed = self.guard.check_url(url)
        secure = parsed.scheme == "https"
        port = parsed.port or (443 if secure else 80)
        host = parsed.raw_host.decode("ascii")  # IDNA-encoded already
        authority = f"[{host}]" if ":" in host else host
        if port != (443 if secure else 80):
            authority += f":{port}"
        fields = [(b"Host", authority.encode("ascii")), (b"User-Agent", self._user_agent)]
        if parsed.userinfo:
            fields.append((b"Authorization", b"Basic " + base64.b64encode(parsed.userinfo)))
        found: _Target = ((parsed.scheme, host, port), secure, fields, parsed.raw_path or b"/")
        if len(self._targets) >= 1024:
            self._targets.clear()
        self._targets[url] = found
        return found

    def _take(self, key: _Key) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if now - connection.used_at < IDLE_SECONDS and not connection.reader.at_eof():
                return connection
            connection.close()
        return None

    async def _connect(self, key: _Key, secure: bool) -> _Connection:
        _scheme, host, port = key
        addresses = await vetted_addresses(self.guard, host, port, resolver=self._resolver)
        failure: OSError | None = None
        for address in addresses:
            try:
                reader, writer = await asyncio.open_connection(
                    str(address),
                    port,
                    ssl=self._tls() if secure else None,
                    server_hostname=host if secure else None,
                )
            except OSError as exc:
                failure = exc
                continue
            return _Connection(reader, writer)
        assert failure is not None  # vetted_addresses never returns an empty list
        raise failure

    async def close(self) -> None:
        """Close every kept connection."""
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await connection.writer.wait_closed()
