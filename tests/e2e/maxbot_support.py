"""What the end-to-end tests of the ``maxbot`` upstream share: a real ``maxgate fakemax`` process
played through its control API, a real ``maxgate serve`` process pointed at it, instances made
with the real CLI, the v3 API, a queue reader, and a local HTTP server of files for
``sendFileByUrl``."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from max_api_client_python import API

from tests.e2e.conftest import Server, maxgate, start_server
from tests.fakemax.conftest import serve_fake


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclasses.dataclass
class Fake:
    """A running fake MAX: its base URL and exchange log (every Bot API call it answered)."""

    base: str
    log: Path

    def get(self, path: str, **params: Any) -> Any:
        answer = httpx.get(self.base + path, params=params, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def post(self, path: str, body: Any = None) -> Any:
        answer = httpx.post(self.base + path, json=body or {}, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def bot_id(self, token: str) -> int:
        for bot in self.get("/_control/bots")["bots"]:
            if bot["token"] == token:
                return int(bot["bot_id"])
        raise AssertionError(f"the fake has no bot {token!r}")

    def user(self, token: str, name: str = "Ivan") -> User:
        """A user who has started the bot of ``token``."""
        bot_id = self.bot_id(token)
        person = self.post("/_control/users", {"first_name": name, "last_name": "Petrov"})
        started = self.post(f"/_control/users/{person['user_id']}/start", {"bot_id": bot_id})
        return User(self, bot_id, int(person["user_id"]), int(started["chat_id"]))

    def stats(self, token: str) -> dict[str, int]:
        found: dict[str, int] = self.get("/_control/stats")["tokens"][token]
        return found

    def calls(self, method: str, path: str) -> list[dict[str, Any]]:
        """The exchanges of the log with this method and schema path (``/messages/{messageId}``)."""
        if not self.log.exists():
            return []
        rows = [json.loads(line) for line in self.log.read_text().splitlines() if line]
        return [r for r in rows if r["method"] == method and r["path"] == path]

    def file_bytes(self, url: str) -> bytes:
        """The bytes behind one of the fake's signed file links."""
        answer = httpx.get(url, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.content


@dataclasses.dataclass
class User:
    """A fake user in a dialog with one bot."""

    fake: Fake
    bot_id: int
    user_id: int
    chat_id: int  # the fake's dialog; maxgate names the chat by user_id

    @property
    def v3_chat(self) -> str:
        return str(self.user_id)

    def says(self, text: str | None = None, attachments: list[Any] | None = None) -> Any:
        """The user writes to the bot: the ``Message`` the fake made."""
        body: dict[str, Any] = {"user_id": self.user_id, "bot_id": self.bot_id, "text": text}
        if attachments:
            body["attachments"] = attachments
        return self.fake.post("/_control/messages", body)["message"]

    def edits(self, mid: str, text: str) -> Any:
        """The user edits one of their messages (``message_edited`` to the bot)."""
        answer = httpx.patch(
            f"{self.fake.base}/_control/messages/{mid}", json={"text": text}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["message"]

    def removes(self, mid: str) -> None:
        """The user removes one of their messages for everybody (``message_removed``)."""
        answer = httpx.delete(f"{self.fake.base}/_control/messages/{mid}", timeout=30)
        assert answer.status_code == 200, answer.text

    def received(self) -> list[dict[str, Any]]:
        """What the bot wrote to this user, oldest first."""
        listed = self.fake.get(f"/_control/chats/{self.chat_id}/messages")["messages"]
        return [m for m in reversed(listed) if m["sender"]["user_id"] != self.user_id]


def file_id_of(url: str) -> int:
    """The fake's file id in one of its signed links (``…&id=N``)."""
    return int(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["id"][0])


@contextlib.contextmanager
def fakemax(tmp_path: Path, *flags: str) -> Iterator[Fake]:
    """``python -m maxgate.fakemax serve`` with ``flags`` and its exchange log, in ``tmp_path``."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    with serve_fake(tmp_path, *flags) as (base, log):
        yield Fake(base, log)


def serve_maxbot(data_dir: Path, fake: Fake, **settings: str) -> Server:
    """``maxgate serve`` whose maxbot instances long-poll ``fake`` (1 s polls)."""
    return start_server(
        data_dir,
        maxbot_base_url=fake.base,
        maxbot_updates="polling",
        maxbot_poll_timeout="1",
        outbound_allow="127.0.0.0/8",
        **settings,
    )


def bot_instance(server: Server, token: str) -> dict[str, Any]:
    """``maxgate instance create --upstream maxbot --bot-token-file`` (the CLI checks the token
    with the fake)."""
    token_file = server.data_dir.parent / f"token-{sha256(token.encode())[:12]}"
    token_file.write_text(token + "\n")
    made = maxgate(
        "instance", "create", "--upstream", "maxbot", "--bot-token-file", str(token_file),
        "--json", data_dir=server.data_dir, env=server.env,
    )  # fmt: skip
    info: dict[str, Any] = json.loads(made)
    return info


def sdk(server: Server, info: dict[str, Any]) -> API.GreenAPI:
    return API.GreenAPI(
        str(info["idInstance"]),
        str(info["apiTokenInstance"]),
        host=f"{server.base_url}/v3",
        media=f"{server.base_url}/v3",
    )


@dataclasses.dataclass
class V3:
    """The GREEN-API v3 methods of one instance, by plain HTTP."""

    server: Server
    info: dict[str, Any]

    def url(self, method: str, extra: str = "") -> str:
        info = self.info
        base = f"{self.server.base_url}/v3/waInstance{info['idInstance']}"
        return f"{base}/{method}/{info['apiTokenInstance']}{extra}"

    def post(self, method: str, body: Any) -> httpx.Response:
        return httpx.post(self.url(method), json=body, timeout=30)

    def get(self, method: str, **params: Any) -> httpx.Response:
        return httpx.get(self.url(method), params=params, timeout=30)

    def history(self, chat_id: str, count: int = 1000) -> list[dict[str, Any]]:
        answer = self.post("getChatHistory", {"chatId": chat_id, "count": count})
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()
        return found

    def download(self, chat_id: str, id_message: str) -> httpx.Response:
        return self.post("downloadFile", {"chatId": chat_id, "idMessage": id_message})

    def state(self) -> str:
        return str(self.get("getStateInstance").json()["stateInstance"])


class Queue:
    """Reads an instance's notification queue (receiveNotification, then deleteNotification),
    keeping every body seen."""

    def __init__(self, api: V3) -> None:
        self.api = api
        self.seen: list[dict[str, Any]] = []

    def pull(self) -> dict[str, Any] | None:
        """One notification, deleted from the queue; None after receiveTimeout (5 s)."""
        answer = self.api.get("receiveNotification", receiveTimeout=5)
        assert answer.status_code == 200, answer.text
        found = answer.json()
        if found is None:
            return None
        deleted = httpx.delete(
            self.api.url("deleteNotification", f"/{found['receiptId']}"), timeout=30
        )
        assert deleted.json()["result"] is True, deleted.text
        body: dict[str, Any] = found["body"]
        self.seen.append(body)
        return body

    def until(self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 30) -> None:
        """Read until ``done(seen)``, or fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not done(self.seen):
            if time.monotonic() > deadline:
                kinds = [b["typeWebhook"] for b in self.seen]
                raise AssertionError(f"not seen within {timeout} s; seen: {kinds}")
            self.pull()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [b for b in self.seen if b["typeWebhook"] == kind]

    def statuses(self, id_message: str) -> list[str]:
        return [
            str(b["status"])
            for b in self.of("outgoingMessageStatus")
            if b["idMessage"] == id_message
        ]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def file_server(root: Path) -> Iterator[str]:
    """An HTTP server of the files in ``root`` on 127.0.0.1: its base URL."""
    handler = functools.partial(_Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
