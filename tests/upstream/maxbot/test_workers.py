"""``maxgate serve --workers 2`` with a maxbot instance, against a real ``maxgate fakemax``:
one worker long-polls the bot (the other holds no lease), every message is journaled and
notified once; stopping the server lets the lease go."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import wait_until
from tests.e2e.maxbot_support import V3, Queue, bot_instance, fakemax, serve_maxbot

pytestmark = pytest.mark.e2e

TOKEN = "workers-bot-token"


def lease(data_dir: Path, info: dict[str, Any]) -> tuple[str | None, float | None]:
    with contextlib.closing(sqlite3.connect(data_dir / "maxgate.db", timeout=30)) as db:
        row = db.execute(
            "SELECT owner, lease_until FROM maxbot_bots WHERE instance_id = ?",
            (info["idInstance"],),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_two_workers_poll_a_bot_once_and_journal_each_message_once(tmp_path: Path) -> None:
    with fakemax(tmp_path / "fake", "--tokens", TOKEN) as fake:
        data = tmp_path / "data"
        server = serve_maxbot(data, fake, workers="2")
        try:
            info = bot_instance(server, TOKEN)
            user = fake.user(TOKEN)
            wait_until(lambda: lease(data, info)[0] is not None, timeout=20)
            v3 = V3(server, info)
            wait_until(lambda: v3.state() == "authorized", timeout=20)
            # 1 s long polls, nothing to receive: one poller answers about three in 3 s, two
            # would answer six.
            before = len(fake.calls("GET", "/updates"))
            time.sleep(3.0)
            assert len(fake.calls("GET", "/updates")) - before <= 4
            texts = [f"hello {i}" for i in range(5)]
            for text in texts:
                user.says(text)
            wait_until(lambda: len(v3.history(user.v3_chat)) >= 5, timeout=20)
            journaled = [m["textMessage"] for m in v3.history(user.v3_chat)]
            assert sorted(journaled) == sorted(texts)
            queue = Queue(v3)
            queue.until(lambda seen: len(queue.of("incomingMessageReceived")) >= 5, timeout=30)
            while queue.pull() is not None:  # what else is queued, up to 5 s of nothing
                pass
            assert len(queue.of("incomingMessageReceived")) == 5
        finally:
            server.stop()
        assert lease(data, info) == (None, None)  # a stopping worker lets its lease go
