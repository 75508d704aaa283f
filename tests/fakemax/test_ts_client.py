"""The official TypeScript client (@maxhub/max-bot-api from npm) against a real
``python -m maxgate.fakemax serve`` process: get updates, send text, upload and send a file (and
a video in ranges, an image as multipart), download a file a user sent. Every exchange of the
run is then checked against the schema. Skipped only when ``node`` is absent; the client is
installed by ``tests/fakemax/ts/install.sh``."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maxgate.fakemax.contract import Contract
from tests.fakemax.conftest import serve_fake

HERE = Path(__file__).resolve().parent / "ts"
TOKEN = "ts-client-token"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


@pytest.fixture(scope="module")
def installed() -> None:
    subprocess.run([str(HERE / "install.sh")], check=True, timeout=300)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    flags = ["--tokens", TOKEN, "--not-ready-seconds", "0.5"]
    with serve_fake(tmp_path, *flags) as served:
        yield served


def test_the_official_ts_client_agrees_with_the_fake(
    installed: None, server: tuple[str, Path], tmp_path: Path
) -> None:
    base, log = server
    run = subprocess.run(
        ["node", str(HERE / "check.js"), base, TOKEN, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=HERE,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    seen: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["me"]["is_bot"] is True
    assert seen["received_text"] == "hello bot"
    assert seen["sent_text"] == "hello human"
    assert seen["sent_file"] == {
        "type": "file",
        "filename": "report.txt",
        "size": len("a report, uploaded by the official client\n"),
    }
    assert (seen["sent_video"], seen["sent_image"]) == ("video", "image")
    assert seen["downloaded"] == {
        "status": 200,
        "filename": "from-user.bin",
        "text": "bytes the user sent",
    }
    assert seen["refetched_mid"] is True
    contract = Contract()
    contract.check_log(log)
    assert contract.checked > 10
    assert contract.problems == [], "\n".join(contract.problems)
    assert contract.request_problems == [], "\n".join(contract.request_problems)
    not_ready = [line for line in log.read_text().splitlines() if '"attachment.not.ready"' in line]
    assert not_ready, "the client was expected to meet attachment.not.ready and retry"
