"""The control API over HTTP, and ``python -m maxgate.fakemax.web serve`` with PyMax on it."""

from __future__ import annotations

import asyncio
import base64
import sys
from pathlib import Path

import httpx
from pymax import WebClient
from pymax.types import FileAttachment
from pymax.types.domain import Message

from maxgate.fakemax.web import WebFake
from tests.fakemax.web.conftest import ClientFactory, MemoryStore, next_of


class NoPhoneQr:
    """A ``QrHandler`` that only records the link: the test scans it over HTTP."""

    def __init__(self) -> None:
        self.shown: asyncio.Queue[str] = asyncio.Queue()

    async def show_qr(self, qr_url: str) -> None:
        self.shown.put_nowait(qr_url)


async def test_a_login_and_a_file_driven_over_http(
    web: WebFake, make_client: ClientFactory
) -> None:
    qr = NoPhoneQr()
    client = make_client(qr=qr)
    inbox: asyncio.Queue[Message] = asyncio.Queue()

    @client.on_message()
    async def received(message: Message, _: WebClient) -> None:
        inbox.put_nowait(message)

    login = asyncio.create_task(client.connect())
    async with httpx.AsyncClient(base_url=web.base_url) as control:
        link = await next_of(qr.shown)
        assert (await control.get("/_control/qr")).json() == {"links": [link]}
        scanned = await control.post("/_control/qr/scan", json={"link": link})
        assert scanned.json() == {"scanned": True}
        await asyncio.wait_for(login, 5)

        user = (await control.post("/_control/users", json={"first_name": "Ivan"})).json()
        content = base64.b64encode(b"bytes").decode()
        body = {"user_id": user["user_id"], "files": [{"name": "a.bin", "content_base64": content}]}
        sent = (await control.post("/_control/messages", json=body)).json()
        got = await next_of(inbox)
        assert got.id == sent["message_id"] and isinstance(got.attaches[0], FileAttachment)

        expired = await control.post("/_control/files/expire", json={})
        assert expired.status_code == 200
        gone = await control.delete(f"/_control/files/{sent['file_ids'][0]}")
        assert gone.json() == {"deleted": sent["file_ids"][0]}
        missing = await control.delete("/_control/files/1")
        assert missing.status_code == 404 and missing.json()["code"] == "not.found"
        bad = await control.post("/_control/users", json={})
        assert bad.status_code == 400 and "first_name" in bad.json()["message"]

        revoked = await control.post("/_control/sessions/revoke", json={})
        assert revoked.json() == {"revoked": 1}


async def test_serve_on_a_real_port(store: MemoryStore) -> None:
    from pymax import ExtraConfig, QrAuthFlow

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "maxgate.fakemax.web", "serve", "--port", "0",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        url = line.rsplit(" ", 1)[-1].strip()
        assert url.startswith("ws://127.0.0.1:") and url.endswith("/websocket")
        base = url.removeprefix("ws://").removesuffix("/websocket")

        class HttpScan:
            async def show_qr(self, qr_url: str) -> None:
                async with httpx.AsyncClient() as http:
                    await http.post(f"http://{base}/_control/qr/scan", json={"link": qr_url})

        config = ExtraConfig(url=url, telemetry=False, reconnect=False, relogin=False, store=store)
        client = WebClient(extra_config=config, auth_flow=QrAuthFlow(HttpScan()))
        try:
            await asyncio.wait_for(client.connect(), 10)
            assert client.me is not None and store.session is not None
        finally:
            await client.close()
    finally:
        process.terminate()
        await process.wait()


async def test_maxgate_fakemax_serve_with_a_web_port(store: MemoryStore) -> None:
    from pymax import ExtraConfig, QrAuthFlow

    from tests.fakemax.conftest import free_port

    bot_port, web_port = free_port(), free_port()
    maxgate = Path(sys.executable).with_name("maxgate")
    process = await asyncio.create_subprocess_exec(
        str(maxgate), "fakemax", "serve", "--port", str(bot_port), "--web-port", str(web_port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{web_port}"
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    if (await http.get(f"{base}/_control/qr")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert (await http.get(f"http://127.0.0.1:{bot_port}/me")).status_code == 401

            class HttpScan:
                async def show_qr(self, qr_url: str) -> None:
                    await http.post(f"{base}/_control/qr/scan", json={"link": qr_url})

            config = ExtraConfig(
                url=f"ws://127.0.0.1:{web_port}/websocket",
                telemetry=False,
                reconnect=False,
                relogin=False,
                store=store,
            )
            client = WebClient(extra_config=config, auth_flow=QrAuthFlow(HttpScan()))
            try:
                await asyncio.wait_for(client.connect(), 10)
                assert client.me is not None
            finally:
                await client.close()
    finally:
        process.terminate()
        await process.wait()
