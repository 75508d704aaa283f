"""``maxgate serve`` and the commands beside it, as a newcomer meets them: one server per port,
nothing created before the port is ours, data dirs found (never made) by the other commands.

Real processes on 127.0.0.1 throughout; the port checks themselves are in ``maxgate.net.listen``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from maxgate import __version__
from tests.e2e.conftest import clean_env, free_port, start_server

pytestmark = pytest.mark.e2e

MAXGATE = str(Path(sys.executable).with_name("maxgate"))


def run(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MAXGATE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(NO_COLOR="1", TERM="dumb"),
        check=False,
    )


def assert_refused_port(done: subprocess.CompletedProcess[str], port: int) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # one line, no traceback
    assert f"port {port}" in lines[0] and "already in use" in lines[0]
    assert "--port" in lines[0] and "MAXGATE_PORT" in lines[0]
    assert done.stdout == ""  # no banner, no token


def test_a_second_server_on_a_port_in_use_is_refused(tmp_path: Path) -> None:
    first = start_server(tmp_path / "first")
    try:
        port = int(first.base_url.rsplit(":", 1)[1])
        instance = first.create_instance()
        done = run(
            "serve", "--port", str(port), "--data-dir", str(tmp_path / "second"), cwd=tmp_path
        )
        assert_refused_port(done, port)
        assert not (tmp_path / "second").exists()  # nothing made before the port was ours
        url = f"{first.base_url}/waInstance{instance['idInstance']}/getStateInstance/"
        url += instance["apiTokenInstance"]
        # Every request reaches the one server (two on a port answered 200 403 403 200 …).
        with httpx.Client() as client:
            codes = [client.get(url).status_code for _ in range(20)]
        assert codes == [200] * 20
    finally:
        first.stop()


def test_a_port_taken_by_another_program_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        done = run("serve", "--port", str(port), cwd=tmp_path)
    assert_refused_port(done, port)
    assert not (tmp_path / "maxgate-data").exists()


def test_two_servers_started_at_once_one_runs_and_one_is_refused(tmp_path: Path) -> None:
    port = free_port()
    starts = [
        subprocess.Popen(
            [MAXGATE, "serve", "--port", str(port), "--data-dir", str(tmp_path / name)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(NO_COLOR="1"),
            start_new_session=True,
        )
        for name in ("a", "b")
    ]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and all(p.poll() is None for p in starts):
            time.sleep(0.1)
        ended = [p for p in starts if p.poll() is not None]
        assert len(ended) == 1, "exactly one of the two must give up"
        assert ended[0].returncode == 1
        assert "already in use" in ended[0].communicate()[1]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the server that won did not come up")
    finally:
        for p in starts:
            if p.poll() is None:
                p.terminate()
            p.communicate(timeout=20)


def test_other_commands_refuse_a_data_dir_that_does_not_exist(tmp_path: Path) -> None:
    for args in (["instance", "list"], ["instance", "create"], ["files", "stats"], ["doctor"]):
        done = run(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        message = " ".join(done.stderr.split())
        assert str(tmp_path / "maxgate-data") in message, args
        for way in ("--data-dir", "MAXGATE_DATA_DIR", "--config"):
            assert way in message, (args, way)
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "maxgate-data").exists()


def test_serve_with_both_secrets_given_makes_its_data_dir(tmp_path: Path) -> None:
    # With both secrets on the command line nothing else made the folder: the server must.
    server = start_server(tmp_path / "new" / "data", partner_token="p" * 40, link_key="k" * 40)
    try:
        assert httpx.get(server.base_url + "/health").status_code == 200
        assert (tmp_path / "new" / "data" / "served-url").read_text().strip() == server.base_url
    finally:
        server.stop()


def test_version_and_plain_help(tmp_path: Path) -> None:
    assert run("--version", cwd=tmp_path).stdout == f"maxgate {__version__}\n"
    for args in (["--help"], ["instance", "--help"], ["download", "--help"], ["serve", "--help"]):
        text = run(*args, cwd=tmp_path).stdout
        assert "<bool>" not in text and "``" not in text, args
    assert "7880" in run("download", "--help", cwd=tmp_path).stdout
    assert "8080" not in run("download", "--help", cwd=tmp_path).stdout


def test_files_stats_prints_sizes_for_people_and_bytes_as_json(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        instance = server.create_instance()
        blob = tmp_path / "big.bin"
        blob.write_bytes(b"x" * (3 * 1024 * 1024 + 200 * 1024))
        data = ["--data-dir", str(server.data_dir)]
        sent = run("sandbox", "send", "--instance", str(instance["idInstance"]), "--from",
                   "20000001", "--file", str(blob), *data, cwd=tmp_path)  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        text = run("files", "stats", *data, cwd=tmp_path).stdout
        assert "3.2 MiB" in text and str(blob.stat().st_size) not in text
        rows = json.loads(run("files", "stats", "--json", *data, cwd=tmp_path).stdout)
        assert sum(r["bytes"] for r in rows) == blob.stat().st_size
    finally:
        server.stop()
