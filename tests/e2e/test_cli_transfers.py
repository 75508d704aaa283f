"""``maxgate download | send | listen`` against a real server process, as a user runs them.

Credentials come from the environment (and once from flags); the token must never appear in
anything the commands print. With stdout/stderr captured (not terminals) there are no progress
bars; with stderr on a pseudo-terminal there are.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maxgate.client import Client
from tests.e2e.conftest import Server, clean_env, maxgate, start_server, wait_until

pytestmark = pytest.mark.e2e

CONTACT = "20000001"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("transfers") / "data")
    yield srv
    srv.stop()


@pytest.fixture
def account(server: Server) -> dict[str, Any]:
    return server.create_instance()


def cli_env(server: Server, info: dict[str, Any], **extra: str) -> dict[str, str]:
    """The environment of a transfer command: credentials in MAXGATE_API_*."""
    credentials = {
        "MAXGATE_API_URL": server.base_url,
        "MAXGATE_ID_INSTANCE": str(info["idInstance"]),
        "MAXGATE_API_TOKEN": info["apiTokenInstance"],
        "NO_COLOR": "1",
    }
    return clean_env(**{**credentials, **extra})


def run(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maxgate", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def clean(done: subprocess.CompletedProcess[str], token: str) -> str:
    """Assert success with nothing on stderr (no progress off a terminal) and no token."""
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert token not in done.stdout
    return done.stdout


def contact_sends_file(server: Server, info: dict[str, Any], path: Path) -> str:
    out = maxgate(
        "sandbox", "send", "--instance", str(info["idInstance"]), "--from", CONTACT,
        "--file", str(path), "--json", data_dir=server.data_dir, env=server.env,
    )  # fmt: skip
    return str(json.loads(out)["idMessage"])


def client_of(server: Server, info: dict[str, Any]) -> Client:
    return Client(
        api_url=server.base_url,
        id_instance=info["idInstance"],
        api_token=info["apiTokenInstance"],
    )


def test_send_streams_a_file_and_prints_its_id(
    server: Server, account: dict[str, Any], tmp_path: Path
) -> None:
    token = account["apiTokenInstance"]
    path = tmp_path / "big report.pdf"
    path.write_bytes(os.urandom(3 * 1024 * 1024))
    out = clean(
        run("send", "--chat", CONTACT, "--file", str(path), "--caption", "Q3",
            env=cli_env(server, account)),
        token,
    )  # fmt: skip
    id_message = out.strip()
    with client_of(server, account) as client:
        item = client.get_message(CONTACT, id_message)
        assert (item.file_name, item.caption, item.type_message) == (
            "big report.pdf",
            "Q3",
            "documentMessage",
        )
        assert item.download_url is not None
        copy = tmp_path / "copy.pdf"
        client.download_link(item.download_url, copy)
    assert copy.read_bytes() == path.read_bytes()


def test_send_with_flags_and_json(server: Server, account: dict[str, Any], tmp_path: Path) -> None:
    token = account["apiTokenInstance"]
    path = tmp_path / "note.txt"
    path.write_text("hello")
    done = run(
        "send", "--chat", CONTACT, "--file", str(path), "--json",
        "--api-url", server.base_url, "--id-instance", str(account["idInstance"]),
        "--api-token", token,
        env=clean_env(NO_COLOR="1"),
    )  # fmt: skip
    answer = json.loads(clean(done, token))
    assert set(answer) == {"idMessage", "urlFile"} and "/files/" in answer["urlFile"]


def test_download_to_the_current_folder_and_to_a_path(
    server: Server, account: dict[str, Any], tmp_path: Path
) -> None:
    token = account["apiTokenInstance"]
    original = tmp_path / "invoice.pdf"
    original.write_bytes(b"%PDF-1.4 " + os.urandom(2 * 1024 * 1024))
    id_message = contact_sends_file(server, account, original)
    env = cli_env(server, account)

    here = tmp_path / "here"
    here.mkdir()
    done = run("download", "--chat", CONTACT, "--message", id_message, env=env, cwd=here)
    out = clean(done, token)
    assert out.strip() == str(here / "invoice.pdf")
    assert (here / "invoice.pdf").read_bytes() == original.read_bytes()

    target = tmp_path / "renamed.bin"
    out = clean(
        run("download", "--chat", CONTACT, "--message", id_message, "-o", str(target), env=env),
        token,
    )
    assert out.strip() == str(target) and target.read_bytes() == original.read_bytes()


def test_download_resumes_a_partial_file(
    server: Server, account: dict[str, Any], tmp_path: Path
) -> None:
    token = account["apiTokenInstance"]
    original = tmp_path / "video.mp4"
    original.write_bytes(os.urandom(1024 * 1024))
    id_message = contact_sends_file(server, account, original)
    target = tmp_path / "partial.mp4"
    target.write_bytes(original.read_bytes()[:300_000])  # what an interrupted run left
    done = run(
        "download", "--chat", CONTACT, "--message", id_message, "-o", str(target), "--json",
        env=cli_env(server, account),
    )  # fmt: skip
    result = json.loads(clean(done, token))
    assert (result["kept"], result["verified"], result["size"]) == (300_000, True, 1024 * 1024)
    assert result["resumes"] == 1  # the partial file was continued
    assert target.read_bytes() == original.read_bytes()


def test_errors_name_the_problem_but_never_the_token(
    server: Server, account: dict[str, Any], tmp_path: Path
) -> None:
    token = account["apiTokenInstance"]
    done = run("download", "--chat", CONTACT, "--message", "2712345112345",
               env=cli_env(server, account))  # fmt: skip
    assert done.returncode == 1 and token not in done.stdout + done.stderr
    expected = "File message encrypted url not found by chatId 20000001 and idMessage 2712345112345"
    assert expected in " ".join(done.stderr.split())

    wrong = {**account, "apiTokenInstance": "f" * 50}
    done = run("download", "--chat", CONTACT, "--message", "1", env=cli_env(server, wrong))
    assert done.returncode == 1 and "401 Unauthorized" in done.stderr
    assert "f" * 50 not in done.stdout + done.stderr

    env = cli_env(server, account, MAXGATE_API_URL="http://127.0.0.1:9")  # nothing listens there
    done = run("send", "--chat", CONTACT, "--file", __file__, env=env)
    assert done.returncode == 1 and "error:" in done.stderr
    assert token not in done.stdout + done.stderr

    done = run("send", "--help", env=cli_env(server, account))
    assert done.returncode == 0 and "MAXGATE_API_TOKEN" in done.stdout
    assert token not in done.stdout + done.stderr


def run_with_terminal_stderr(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal; returns (exit code, stdout, what the terminal got)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "maxgate", *args],
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "120"},
    )
    os.close(follower)
    received = bytearray()

    def drain() -> None:  # a full terminal buffer would stall the command
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the other side closed
                return
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stdout, _ = process.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(leader)
    return process.returncode, stdout.decode(), received.decode(errors="replace")


def test_progress_bars_show_on_a_terminal(
    server: Server, account: dict[str, Any], tmp_path: Path
) -> None:
    token = account["apiTokenInstance"]
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(4 * 1024 * 1024))
    env = cli_env(server, account)
    code, stdout, terminal = run_with_terminal_stderr(
        "send", "--chat", CONTACT, "--file", str(path), env=env
    )
    assert code == 0, terminal
    assert "data.bin" in terminal and "4.2 MB" in terminal and "/s" in terminal
    assert token not in stdout + terminal
    code, stdout, terminal = run_with_terminal_stderr(
        "download", "--chat", CONTACT, "--message", stdout.strip(), "-o", str(tmp_path / "back"),
        env=env,
    )  # fmt: skip
    assert code == 0, terminal
    assert "4.2 MB" in terminal and "/s" in terminal and token not in stdout + terminal
    assert (tmp_path / "back").read_bytes() == path.read_bytes()


def test_listen_prints_json_lines_and_saves_files(
    server: Server, account: dict[str, Any], tmp_path: Path
) -> None:
    token = account["apiTokenInstance"]
    folder = tmp_path / "inbox"
    process = subprocess.Popen(
        [sys.executable, "-m", "maxgate", "listen", "--download-files", str(folder),
         "--receive-timeout", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(server, account),
    )  # fmt: skip
    try:
        maxgate(
            "sandbox", "send", "--instance", str(account["idInstance"]), "--from", CONTACT,
            "--text", "hello there", "--name", "Ivan", data_dir=server.data_dir, env=server.env,
        )  # fmt: skip
        document = tmp_path / "scan.pdf"
        document.write_bytes(b"%PDF-1.4 " + os.urandom(500_000))
        id_file = contact_sends_file(server, account, document)

        assert process.stdout is not None
        lines = [json.loads(process.stdout.readline()) for _ in range(2)]
        assert [n["typeWebhook"] for n in lines] == ["incomingMessageReceived"] * 2
        assert lines[0]["messageData"]["textMessageData"]["textMessage"] == "hello there"
        assert lines[0]["senderData"]["chatId"] == CONTACT
        assert lines[1]["idMessage"] == id_file
        assert lines[1]["messageData"]["fileMessageData"]["fileName"] == "scan.pdf"

        saved = folder / f"{id_file}-scan.pdf"
        wait_until(lambda: saved.exists() and saved.stat().st_size == document.stat().st_size)
        assert saved.read_bytes() == document.read_bytes()
        with client_of(server, account) as client:
            # Both were deleted once handled (the second when listen asked for the next).
            wait_until(lambda: client.get_webhooks_count().count == 0)
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert token not in stdout.decode() + stderr.decode()
    assert "Traceback" not in stderr.decode()


class CuttingProxy:
    """A TCP proxy in front of the server that drops the first file-link answer after
    ``cut_after`` bytes, as a flaky network would (one request per connection)."""

    def __init__(self, target: str, cut_after: int) -> None:
        self.target = httpx_port(target)
        self.cut_after = cut_after
        self.cuts_left = 1
        self.heads: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn, socket.create_connection(("127.0.0.1", self.target)) as upstream:
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(65536)
                if not data:
                    return
                head += data
            self.heads.append(head)
            upstream.sendall(head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
            cut = head.startswith(b"GET /files/") and self.cuts_left > 0
            if cut:
                self.cuts_left -= 1
            sent = 0
            while data := upstream.recv(65536):
                if cut and sent + len(data) >= self.cut_after:
                    conn.sendall(data[: self.cut_after - sent])
                    return  # closing mid-body: the client sees an incomplete message
                conn.sendall(data)
                sent += len(data)

    def close(self) -> None:
        self._listener.close()


def httpx_port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_a_download_cut_by_the_network_resumes(
    server: Server, account: dict[str, Any], tmp_path: Path
) -> None:
    original = tmp_path / "archive.zip"
    original.write_bytes(os.urandom(3 * 1024 * 1024))
    id_message = contact_sends_file(server, account, original)
    proxy = CuttingProxy(server.base_url, cut_after=1024 * 1024)
    try:
        with client_of(server, account) as client:
            link = client.download_file_link(CONTACT, id_message).download_url
            target = tmp_path / "out.zip"
            done = client.download_link(link.replace(server.base_url, proxy.url), target)
    finally:
        proxy.close()
    assert target.read_bytes() == original.read_bytes()
    assert (done.resumes, done.verified) == (1, True)
    ranges = [h for h in proxy.heads if b"\r\nrange: bytes=" in h.lower()]
    assert len(proxy.heads) == 2 and len(ranges) == 1
    assert b'if-range: "' in ranges[0].lower()
