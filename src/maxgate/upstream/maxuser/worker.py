"""The connector's worker process: the PyMax clients of every ``maxuser`` instance, out of the
HTTP server's processes (``python -m maxgate.upstream.maxuser.worker``, started and restarted
by ``MaxUser``; the channel is described in ``channel.py``).

It needs the ``max-user`` extra (PyMax). Its standard output is the channel: anything else
that would print there (a library's stray ``print``) goes to standard error instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from typing import Any

from pymax.session.models import SessionInfo

from maxgate.upstream.maxuser.account import Account, LoginError
from maxgate.upstream.maxuser.adapter import WARNING
from maxgate.upstream.maxuser.channel import HEARTBEAT, LINE_LIMIT, Message, decode, encode

log = logging.getLogger("maxgate.upstream.maxuser.worker")


class Worker:
    """Every account of this run, and the requests that reach them."""

    def __init__(self, out: asyncio.StreamWriter) -> None:
        self.out = out
        self.accounts: dict[int, Account] = {}
        self._lock = asyncio.Lock()

    async def emit(self, message: Message) -> None:
        async with self._lock:
            self.out.write(encode(message))
            await self.out.drain()

    async def handle(self, request: Message) -> None:
        request_id = request.get("id")
        try:
            result = await self.dispatch(request)
            answer: Message = {"id": request_id, "ok": True, "result": result}
        except (LoginError, ValueError) as exc:
            answer = {"id": request_id, "ok": False, "error": str(exc)}
        except Exception as exc:  # an answer always goes back: the gateway waits for it
            log.exception("maxuser worker: %s failed", request.get("op"))
            answer = {"id": request_id, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        await self.emit(answer)

    def _account(self, request: Message) -> Account:
        account = self.accounts.get(int(request["instance"]))
        if account is None:
            raise LoginError(f"instance {request['instance']} is not open in the connector")
        return account

    async def dispatch(self, request: Message) -> Any:
        op = request.get("op")
        if op == "ping":
            return {"accounts": len(self.accounts)}
        if op == "open":
            instance_id = int(request["instance"])
            if instance_id in self.accounts:
                return None
            raw = request.get("session")
            try:
                session = SessionInfo.model_validate(raw) if raw else None
            except ValueError:  # pydantic's message would quote the session, token and all
                raise ValueError(
                    f"the stored session of instance {instance_id} is unreadable"
                ) from None
            account = Account(instance_id, str(request["url"]), session, self.emit)
            account.account_id = request.get("account_id")
            account.task = asyncio.create_task(account.run(), name=f"maxuser-{instance_id}")
            self.accounts[instance_id] = account
            return None
        if op == "close":
            closing = self.accounts.pop(int(request["instance"]), None)
            if closing is not None:
                await closing.close()
            return None
        account = self._account(request)
        if op == "login":
            return await account.login()
        if op == "password":
            return await account.send_password(str(request["password"]))
        if op == "reboot":
            return await account.reboot()
        if op == "logout":
            return await account.logout()
        if op == "phone":
            return await account.find_phone(int(request["phone"]))
        if op == "send":
            quoted = request.get("quoted")
            return await account.send_text(
                str(request["chat_id"]), str(request["text"]), str(quoted) if quoted else None
            )
        raise ValueError(f"unknown request {op!r}")

    async def heartbeat(self) -> None:
        while True:
            health = {str(i): a.health() for i, a in self.accounts.items()}
            await self.emit({"event": "health", "accounts": health})
            await asyncio.sleep(HEARTBEAT)

    async def close(self) -> None:
        accounts, self.accounts = list(self.accounts.values()), {}
        await asyncio.gather(*(account.close() for account in accounts))


async def serve(channel_fd: int) -> None:
    """Read requests from standard input until it closes; write to ``channel_fd``."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(channel_fd, "wb")
    )
    out = asyncio.StreamWriter(transport, protocol, None, loop)
    worker = Worker(out)
    log.warning("maxuser worker started (pid %d). %s.", os.getpid(), WARNING)
    beating = asyncio.create_task(worker.heartbeat())
    tasks: set[asyncio.Task[None]] = set()
    try:
        while line := await reader.readline():
            request = decode(line)
            task = asyncio.create_task(worker.handle(request))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        beating.cancel()
        for task in list(tasks):
            task.cancel()
        await worker.close()
        with contextlib.suppress(ConnectionError, OSError):
            out.close()


def main() -> None:
    """The process: the channel moved off fd 1, so that only messages go there."""
    channel_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("pymax").setLevel(logging.WARNING)  # PyMax logs frames at DEBUG
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(channel_fd))


if __name__ == "__main__":
    main()
