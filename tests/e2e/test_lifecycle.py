"""The file lifecycle against real server processes: eviction, re-fetch, crashes, rate limits."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from max_api_client_python import API

from tests.e2e.conftest import Server, clean_env, maxgate, start_server, wait_until

pytestmark = pytest.mark.e2e


def api(server: Server, info: dict[str, Any], method: str) -> str:
    return (
        f"{server.base_url}/v3/waInstance{info['idInstance']}/{method}/{info['apiTokenInstance']}"
    )


def send_file(server: Server, info: dict[str, Any], path: Path, **env: str) -> str:
    out = maxgate(
        "sandbox", "send", "--instance", str(info["idInstance"]), "--from", "20000001",
        "--file", str(path), "--json", data_dir=server.data_dir, env={**server.env, **env},
    )  # fmt: skip
    return str(json.loads(out)["idMessage"])


def stats(server: Server) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        maxgate("files", "stats", "--json", data_dir=server.data_dir, env=server.env)
    )
    return rows


@pytest.fixture(scope="module")
def short_retention(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("retention") / "data", file_retention="2s")
    yield srv
    srv.stop()


def test_sweeper_evicts_and_download_file_brings_the_bytes_back(
    short_retention: Server, tmp_path: Path
) -> None:
    server = short_retention
    bob = server.create_instance()
    doc = tmp_path / "contract.pdf"
    doc.write_bytes(b"%PDF " + os.urandom(20000))
    id_message = send_file(server, bob, doc)
    wait_until(lambda: any(r["state"] == "evicted" for r in stats(server)), timeout=20)
    blobs = [p for p in (server.data_dir / "blobs" / "blobs").rglob("*") if p.is_file()]
    assert blobs == []  # the bytes are gone from our storage, the metadata stays
    answer = httpx.post(
        api(server, bob, "downloadFile"),
        json={"chatId": "20000001", "idMessage": id_message},
        timeout=30,
    )
    assert answer.status_code == 200
    assert httpx.get(answer.json()["downloadUrl"], timeout=30).content == doc.read_bytes()


def test_files_cli_stats_sweep_and_verify(server: Server, tmp_path: Path) -> None:
    bob = server.create_instance()
    doc = tmp_path / "v.bin"
    doc.write_bytes(os.urandom(1000))
    send_file(server, bob, doc)
    rows = [r for r in stats(server) if r["instance_id"] == bob["idInstance"]]
    assert rows == [
        {"instance_id": bob["idInstance"], "state": "stored", "files": 1, "bytes": 1000}
    ]
    report = json.loads(maxgate("files", "sweep", "--json", data_dir=server.data_dir))
    assert report["evicted_files"] == 0
    verified = json.loads(maxgate("files", "verify", "--json", data_dir=server.data_dir))
    assert verified["mismatched"] == [] and verified["missing"] == []
    # Corrupt one blob: verify names it and exits 1.
    sha = hashlib.sha256(doc.read_bytes()).hexdigest()
    blob = next((server.data_dir / "blobs").rglob(sha))
    blob.write_bytes(b"corrupted")
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "maxgate", "files", "verify", "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, env=clean_env(), timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and sha in done.stdout
    blob.write_bytes(doc.read_bytes())


def test_kill_9_during_a_mirror_leaves_no_partial_blob_and_the_file_comes_back(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, mirror_mode="lazy")
    try:
        bob = server.create_instance()
        big = tmp_path / "video.mp4"
        with big.open("wb") as handle:
            for _ in range(48):
                handle.write(os.urandom(4 * 1024 * 1024))  # 192 MB
        id_message = send_file(server, bob, big)
        history = httpx.post(
            api(server, bob, "getChatHistory"), json={"chatId": "20000001"}, timeout=30
        ).json()
        link = history[0]["downloadUrl"]
        # Ask for the link (which starts the mirror), then kill the server mid-transfer.
        with httpx.stream("GET", link, timeout=60) as response:
            del response
            time.sleep(0.2)
            server.stop(signal.SIGKILL)
    except httpx.HTTPError:
        pass
    finally:
        server.stop(signal.SIGKILL)
    for blob in (data_dir / "blobs" / "blobs").rglob("*"):
        if blob.is_file():  # whatever is visible under a content key is complete and correct
            digest = hashlib.sha256()
            with blob.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
            assert digest.hexdigest() == blob.name
    restarted = start_server(data_dir, mirror_mode="lazy")
    try:
        answer = httpx.post(
            api(restarted, bob, "downloadFile"),
            json={"chatId": "20000001", "idMessage": id_message},
            timeout=60,
        )
        assert answer.status_code == 200
        digest = hashlib.sha256()
        with httpx.stream("GET", answer.json()["downloadUrl"], timeout=60) as response:
            for chunk in response.iter_bytes():
                digest.update(chunk)
        with big.open("rb") as handle:
            expected = hashlib.file_digest(handle, "sha256").hexdigest()
        assert digest.hexdigest() == expected
    finally:
        restarted.stop()


def test_the_official_sdk_retries_429_and_succeeds(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", rate_limits="true")
    try:
        info = server.create_instance()
        sdk = API.GreenAPI(
            str(info["idInstance"]), str(info["apiTokenInstance"]),
            host=f"{server.base_url}/v3", media=f"{server.base_url}/v3",
        )  # fmt: skip
        raw = [
            httpx.get(api(server, info, "getStateInstance"), timeout=10).status_code
            for _ in range(3)
        ]
        assert 429 in raw  # 1 request per second for getStateInstance
        answers = [sdk.account.getStateInstance() for _ in range(3)]
        assert [a.code for a in answers] == [200, 200, 200]
        assert wait_until(lambda: sdk.receiving.downloadFile("1", "1").code == 400)
    finally:
        server.stop()
