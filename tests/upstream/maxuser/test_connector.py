"""The maxuser connector end to end in one process: the v3 API in-process, the connector's
real worker process with the real PyMax ``WebClient``, the in-process web fake of MAX."""

from __future__ import annotations

import base64
import os
import signal

import httpx

from maxgate.errors import UpstreamError
from maxgate.fakemax.web import WebFake
from maxgate.runtime import Runtime
from maxgate.store import maxuser as store
from maxgate.upstream.maxuser import MaxUser
from tests.upstream.maxuser.conftest import UserAccount, eventually, logged_in, qr_of


async def test_qr_login_through_v3_qr(user: UserAccount, web: WebFake) -> None:
    assert await user.state() == "notAuthorized"
    answer = await qr_of(user)
    assert answer["type"] == "qrCode"
    assert base64.b64decode(answer["message"]).startswith(b"\x89PNG\r\n\x1a\n")
    [link] = web.shown_qr
    assert link.startswith("https://max.ru/:auth/")
    again = await user.call("qr")  # polled while pending: the same login, no new QR
    assert again.json()["type"] == "qrCode" and web.shown_qr == [link]

    web.scan_qr(link)
    assert await user.states("authorized") == ["notAuthorized", "starting", "authorized"]
    assert await user.state() == "authorized"
    assert (await user.call("qr")).json()["type"] == "alreadyLogged"

    kept = await store.get(user.runtime.db, user.instance_id)
    assert kept is not None and kept.session is not None
    assert kept.account_id == web.account.user_id
    assert kept.session not in repr(kept)  # the token never shows in a repr
    assert len(web.world.sessions) == 1


async def test_an_expired_qr_gives_a_new_one(user: UserAccount, web: WebFake) -> None:
    web.world.qr_ttl_seconds = 0.5
    first = await qr_of(user)
    assert first["type"] == "qrCode" and len(web.shown_qr) == 1

    async def renewed() -> bool:
        answer = await user.call("qr")
        return answer.status_code == 200 and len(web.shown_qr) == 2

    await eventually(renewed, every=0.3)
    web.world.qr_ttl_seconds = 60
    await eventually(renewed)
    web.scan_qr()  # the newest

    async def authorized() -> bool:
        return await user.state() == "authorized"

    await eventually(authorized)


async def test_receive_a_text(user: UserAccount, web: WebFake) -> None:
    await logged_in(user, web)
    ivan = web.add_user("Ivan", "Petrov")
    sent = await web.user_sends(ivan.user_id, "привет")
    body = await user.next_of("incomingMessageReceived")
    assert body["senderData"]["chatId"] == str(ivan.user_id)
    assert body["senderData"]["senderName"] == "Ivan Petrov"
    assert body["idMessage"] == str(sent.message_id)
    assert body["messageData"]["textMessageData"]["textMessage"] == "привет"

    await web.user_sends(ivan.user_id, "from my phone", from_account=True)
    mine = await user.next_of("outgoingMessageReceived")
    assert mine["senderData"]["chatId"] == str(ivan.user_id)
    assert mine["messageData"]["textMessageData"]["textMessage"] == "from my phone"


async def test_send_a_text(user: UserAccount, web: WebFake) -> None:
    await logged_in(user, web)
    ivan = web.add_user("Ivan")
    answer = await user.call("sendMessage", {"chatId": str(ivan.user_id), "message": "hello"})
    assert answer.status_code == 200, answer.text
    chat_id = web.account.user_id ^ ivan.user_id

    async def arrived() -> list[str]:
        return [m.text for m in web.sent_by_account(chat_id)]

    assert await eventually(arrived) == ["hello"]
    status = await user.next_of("outgoingMessageStatus")
    assert status["idMessage"] == answer.json()["idMessage"] and status["status"] == "sent"


async def test_a_revoked_session_is_not_logged_in_again(user: UserAccount, web: WebFake) -> None:
    await logged_in(user, web)
    await user.states("authorized")
    assert await web.revoke() == 1
    assert await user.states("notAuthorized") == ["notAuthorized"]
    qrs, sessions = len(web.shown_qr), len(web.world.sessions)

    async def forgotten() -> bool:
        kept = await store.get(user.runtime.db, user.instance_id)
        return kept is not None and kept.session is None

    await eventually(forgotten)
    async for body in user.notifications(timeout=5):  # a while: nothing tries again
        assert body["typeWebhook"] != "stateInstanceChanged", body
    assert (len(web.shown_qr), len(web.world.sessions)) == (qrs, sessions)
    assert await user.state() == "notAuthorized"


async def test_logout_and_reboot(user: UserAccount, web: WebFake) -> None:
    await logged_in(user, web)
    await user.states("authorized")
    assert (await user.call("reboot")).json() == {"isReboot": True}
    assert await user.states("authorized") == ["starting", "authorized"]
    assert (await user.call("logout")).json() == {"isLogout": True}
    assert await user.states("notAuthorized") == ["notAuthorized"]
    assert all(s.revoked for s in web.world.sessions.values())
    assert (await user.call("qr")).json()["type"] == "qrCode"  # log in again by QR


async def test_a_killed_worker_comes_back_authorised(
    gateway: tuple[Runtime, httpx.AsyncClient], user: UserAccount, web: WebFake
) -> None:
    runtime, _ = gateway
    await logged_in(user, web)
    await user.states("authorized")
    pid = runtime.maxuser.worker_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    async def restarted() -> bool:
        return runtime.maxuser.worker_pid not in (None, pid)

    await eventually(restarted)
    assert await user.states("authorized") == ["starting", "authorized"]
    assert len(web.shown_qr) == 1  # from the stored session: no new QR
    ivan = web.add_user("Ivan")
    await web.user_sends(ivan.user_id, "still there?")
    body = await user.next_of("incomingMessageReceived")
    assert body["messageData"]["textMessageData"]["textMessage"] == "still there?"


async def test_check_account_by_phone(user: UserAccount, web: WebFake) -> None:
    await logged_in(user, web)
    ivan = web.add_user("Ivan", phone=79991234567)
    found = await user.call("checkAccount", {"phoneNumber": 79991234567})
    assert found.json() == {"exist": True, "chatId": str(ivan.user_id)}
    missing = await user.call("checkAccount", {"phoneNumber": 79990009999})
    assert missing.json() == {"exist": False, "chatId": ""}


async def test_methods_a_user_account_lacks_are_refused(user: UserAccount) -> None:
    answer = await user.call("sendFileByUrl", {"chatId": "1", "urlFile": "https://x/a.pdf"})
    assert answer.status_code == 400
    assert "not available for this instance kind: maxuser" in answer.json()["message"]


async def test_two_factor_password(user: UserAccount, web: WebFake) -> None:
    web.require_password("correct horse", hint="horse")
    assert (await qr_of(user))["type"] == "qrCode"
    web.scan_qr()
    runtime = user.runtime
    instance = await runtime.instances.get(user.instance_id)
    assert instance is not None

    async def refused() -> bool:
        try:
            return not await runtime.maxuser.send_password(instance, "wrong")
        except UpstreamError:  # not asked for yet
            return False

    assert await eventually(refused, every=0.2)
    assert await eventually(lambda: runtime.maxuser.send_password(instance, "correct horse"))
    assert await user.states("authorized") == ["notAuthorized", "starting", "authorized"]


async def test_the_watchdog_reboots_a_stuck_session(
    gateway: tuple[Runtime, httpx.AsyncClient], user: UserAccount, web: WebFake
) -> None:
    runtime, client = gateway
    await logged_in(user, web)
    await user.states("authorized")
    runtime.maxuser.stuck_after = 1.0  # the worker pings every 30 s: soon "stuck"

    async def stuck() -> bool:
        return user.instance_id in runtime.maxuser.stuck()

    await eventually(stuck)
    ready = await client.get("/ready")
    assert ready.status_code == 503
    assert f"maxuser sessions stuck: instances {user.instance_id}" in ready.json()["message"]
    runtime.maxuser.stuck_after = 90.0
    assert await user.states("authorized") == ["starting", "authorized"]  # rebooted


async def test_one_process_runs_the_connector(
    gateway: tuple[Runtime, httpx.AsyncClient], user: UserAccount
) -> None:
    runtime, _ = gateway
    await eventually(lambda: _running(runtime))
    other = MaxUser(runtime.db, lock_path=runtime.maxuser.lock_path)
    assert not other._own_lock()  # held by the gateway's connector


async def _running(runtime: Runtime) -> bool:
    return runtime.maxuser.worker_pid is not None
