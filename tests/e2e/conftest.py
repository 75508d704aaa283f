"""A real ``maxgate serve`` process on 127.0.0.1, and instances made with the real CLI."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e


def free_port() -> int:
    """A TCP port that was free a moment ago (the server binds it by number)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any MAXGATE_* setting of the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAXGATE_")}
    env.update(extra)
    return env


def maxgate(*args: str, data_dir: Path, env: dict[str, str] | None = None) -> str:
    """Run the CLI and return its standard output (fails the test on a non-zero exit)."""
    done = subprocess.run(
        [sys.executable, "-m", "maxgate", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=env or clean_env(),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclasses.dataclass
class Server:
    """A running server: its base URL, data dir and process."""

    base_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    log: Path

    def create_instance(self) -> dict[str, Any]:
        """``maxgate instance create --json`` against the live server's data dir."""
        info: dict[str, Any] = json.loads(
            maxgate("instance", "create", "--json", data_dir=self.data_dir, env=self.env)
        )
        return info

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server. SIGKILL goes to its whole process group — the main process and its
        granian workers, as a crash of the machine or the container would — so a "killed"
        server leaves no worker behind still doing its work."""
        if self.process.poll() is None:
            if sig == signal.SIGKILL:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
            else:
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # a worker left behind


def start_server(data_dir: Path, *, port: int | None = None, **settings: str) -> Server:
    """Start ``maxgate serve`` (on ``port``, else a free one) and wait until /health answers
    (rate limits off unless given)."""
    settings = {"rate_limits": "false", **settings}
    port = port or free_port()
    env = clean_env(**{f"MAXGATE_{k.upper()}": v for k, v in settings.items()})
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"server-{port}.log"
    command = [sys.executable, "-m", "maxgate", "serve", "--port", str(port)]
    with log.open("wb") as output:  # a file, not a pipe: a full pipe would stall the server
        process = subprocess.Popen(
            [*command, "--data-dir", str(data_dir)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: stop() can reach the workers
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"maxgate serve exited: {log.read_text(errors='replace')}")
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return Server(base, data_dir, process, env, log)
        except httpx.TransportError:
            time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    raise RuntimeError("maxgate serve did not become healthy in 30 s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per test module."""
    srv = start_server(tmp_path_factory.mktemp("server") / "data")
    yield srv
    srv.stop()


def wait_until(predicate: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
