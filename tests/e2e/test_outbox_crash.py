"""kill -9 of the server while a large file is being handed to the messenger: after the restart
the claim of the dead process is released at once, and every acknowledged message arrives, in
order, once (the outbox's leases, ``maxgate.domain.outbox``)."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import start_server, wait_until

pytestmark = pytest.mark.e2e

BIG = 300 * 1024 * 1024  # large enough that its hand-over is still running when we look


def sending(data_dir: Path) -> bool:
    with sqlite3.connect(f"file:{data_dir / 'maxgate.db'}?mode=ro", uri=True, timeout=5) as db:
        return db.execute("SELECT 1 FROM outbox WHERE state = 'sending'").fetchone() is not None


@pytest.mark.timeout(240)
def test_a_crash_mid_send_delays_nothing_queued_behind_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data, max_file_size="400MB")
    alice, bob = server.create_instance(), server.create_instance()
    url = f"{server.base_url}/waInstance{alice['idInstance']}/{{}}/{alice['apiTokenInstance']}"
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        handle.truncate(BIG)
    with httpx.Client(timeout=120) as client:
        with big.open("rb") as handle:
            answer = client.post(
                url.format("sendFileByUpload"),
                data={"chatId": bob["chatId"]},
                files={"file": ("big.bin", handle, "application/octet-stream")},
            )
        assert answer.status_code == 200, answer.text
        ids = [answer.json()["idMessage"]]
        for n in range(3):
            text = client.post(
                url.format("sendMessage"), json={"chatId": bob["chatId"], "message": f"m{n}"}
            )
            assert text.status_code == 200, text.text
            ids.append(text.json()["idMessage"])
    assert wait_until(lambda: sending(data), timeout=60, interval=0.01)
    server.stop(signal.SIGKILL)
    assert sending(data)  # the dead process's claim is still there

    again = start_server(data, max_file_size="400MB")
    try:
        restarted = time.monotonic()
        history = (
            f"{again.base_url}/waInstance{bob['idInstance']}/getChatHistory/"
            f"{bob['apiTokenInstance']}"
        )

        def received() -> list[str] | None:
            items = httpx.post(history, json={"chatId": alice["chatId"], "count": 100}).json()
            got = [i["idMessage"] for i in reversed(items)]
            return got if len(got) >= len(ids) else None

        got = wait_until(received, timeout=60, interval=0.2)
        seconds = time.monotonic() - restarted
        assert got == ids  # every acknowledged message, in order, none twice
        print(f"\nall {len(ids)} acknowledged messages delivered {seconds:.1f} s after restart")
        assert seconds < 30  # the large file is sent again; nothing waits for a stale claim
    finally:
        again.stop()
