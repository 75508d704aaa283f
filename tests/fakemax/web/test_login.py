"""QR login, 2FA, a stored session, revocation and disconnects, as PyMax's ``WebClient``
lives them against the fake."""

from __future__ import annotations

import asyncio

import pytest
from pymax import WebClient
from pymax.exceptions import ApiError
from pymax.protocol import InboundFrame

from maxgate.fakemax.web import WebFake
from tests.fakemax.web.conftest import (
    ClientFactory,
    MemoryStore,
    Passwords,
    ScanningQr,
    eventually,
)


async def test_qr_login_gives_the_account_and_a_stored_session(
    web: WebFake, make_client: ClientFactory, store: MemoryStore
) -> None:
    qr = ScanningQr(web)
    client = make_client(qr=qr)
    await client.connect()
    assert client.is_connected
    assert qr.shown and qr.shown[0].startswith("https://max.ru/:auth/")
    assert client.me is not None and client.me.contact.id == web.account.user_id
    assert client.me.contact.names[0].first_name == "Fake"
    assert store.session is not None
    session = web.world.sessions[store.session.token]
    assert session.account_id == web.account.user_id and not session.revoked
    assert store.session.user_agent is not None
    assert store.session.user_agent.device_type.value == "WEB"
    [peer] = web.peers
    assert peer.conn.origin == "https://web.max.ru"  # WebSocketTransport's fixed Origin
    assert peer.conn.user_agent is not None and peer.conn.user_agent["deviceType"] == "WEB"


async def test_login_lists_chats_with_their_last_message_and_contacts(
    web: WebFake, make_client: ClientFactory
) -> None:
    ivan = web.add_user("Ivan", "Petrov")
    await web.user_sends(ivan.user_id, "before you logged in", files=[("file", "a.txt", b"a")])
    client = make_client()
    await client.connect()
    [chat] = client.chats or []
    assert chat.id == web.account.user_id ^ ivan.user_id
    assert set(chat.participants) == {web.account.user_id, ivan.user_id}
    assert chat.last_message is not None and chat.last_message.text == "before you logged in"
    assert [c.id for c in client.contacts if c is not None] == [ivan.user_id]


async def test_reconnect_with_the_stored_token_needs_no_qr(
    web: WebFake, make_client: ClientFactory, store: MemoryStore
) -> None:
    await make_client().connect()
    assert await web.disconnect_all() == 1
    token = store.session.token if store.session else None
    again = ScanningQr(web)
    client = make_client(qr=again)
    await client.connect()
    assert again.shown == []  # logged in with the stored token
    assert client.me is not None and client.me.contact.id == web.account.user_id
    assert store.session is not None and store.session.token == token


async def test_two_factor_password_after_the_scan(
    web: WebFake, make_client: ClientFactory, store: MemoryStore
) -> None:
    web.require_password("correct horse", hint="horse")
    passwords = Passwords("wrong", "correct horse")
    client = make_client(passwords=passwords)
    await client.connect()
    assert passwords.hints == ["horse", "horse"]  # the first answer was refused
    assert client.me is not None and store.session is not None
    assert store.session.token in web.world.sessions


async def test_an_unscanned_qr_expires(web: WebFake, make_client: ClientFactory) -> None:
    web.world.qr_ttl_seconds = 0.3
    client = make_client(qr=ScanningQr(web, scan=False))
    with pytest.raises(RuntimeError, match="QR authentication expired"):
        await client.connect()


async def test_a_revoked_session_logs_out_and_is_refused_after(
    web: WebFake, make_client: ClientFactory, store: MemoryStore
) -> None:
    client = make_client()
    raw: list[int] = []

    @client.on_raw()
    async def seen(frame: InboundFrame, _: WebClient) -> None:
        raw.append(frame.opcode)

    await client.connect()
    assert await web.revoke() == 1
    await eventually(lambda: not client.is_connected)
    assert 20 in raw  # LOGOUT pushed before the socket closed

    again = ScanningQr(web)
    with pytest.raises(ApiError) as refused:
        await make_client(qr=again).connect()
    assert refused.value.error == "FAIL_LOGIN_TOKEN"
    assert again.shown == []  # relogin=False: no new QR flow was started
    assert store.deleted == []  # and PyMax did not drop the session by itself


async def test_the_fake_refuses_a_mobile_handshake(web: WebFake) -> None:
    from maxgate.fakemax.web.handlers import Connection, WebError

    conn = Connection(web)
    with pytest.raises(WebError, match="web client only"):
        await conn.handle(6, {"userAgent": {"deviceType": "ANDROID"}, "deviceId": "x"})


async def test_a_dropped_connection_ends_start_with_connection_error(
    web: WebFake, make_client: ClientFactory
) -> None:
    client = make_client()
    seen: list[BaseException] = []

    @client.on_disconnect()
    async def lost(exc: BaseException, reconnect: bool, delay: float) -> None:
        seen.append(exc)

    running = asyncio.create_task(client.start())
    await eventually(lambda: client.is_connected and client.me is not None)
    await web.disconnect_all()
    with pytest.raises(ConnectionError):  # reconnect=False: the caller owns what comes next
        await asyncio.wait_for(running, 5)
    assert [type(exc) for exc in seen] == [ConnectionError]


async def test_a_token_is_refused_from_another_device(
    web: WebFake, make_client: ClientFactory, store: MemoryStore
) -> None:
    await make_client().connect()
    await web.disconnect_all()
    assert store.session is not None
    store.session = store.session.model_copy(update={"device_id": "0123456789abcdef"})
    with pytest.raises(ApiError, match="another device"):
        await make_client().connect()
