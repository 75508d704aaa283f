"""The README's promise to a newcomer, kept by running it: in a fresh copy of the checkout, the
first command installs and starts the server, and every command its banner prints works as
printed, from the same folder, in a shell that has nothing set up.

The copy holds what a clone would (the files git tracks or would track, none it ignores); the
install uses pip's cache, so after the suite's own install it takes seconds, not minutes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import clean_env, free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
INSTALL_AND_START = 300.0  # seconds: a pip install into a new venv, then the server's start


def readme_commands() -> list[str]:
    """The commands of the README's first code block (its first screen)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block is not None
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_first_screen_has_exactly_two_commands() -> None:
    assert readme_commands() == ["./scripts/serve", "./scripts/test"]


def fresh_copy(target: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def newcomer_env(**extra: str) -> dict[str, str]:
    """A shell with no maxgate on PATH and no MAXGATE_* settings."""
    env = clean_env(NO_COLOR="1", TERM="dumb", **extra)
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not (Path(p) / "maxgate").exists()
    )
    return env


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    """A fresh copy with ``./scripts/serve`` running in it: (folder, base URL, its output)."""
    checkout = fresh_copy(tmp_path / "maxgate")
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            readme_commands()[0].split(),
            cwd=checkout,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=newcomer_env(MAXGATE_PORT=str(port)),
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + INSTALL_AND_START
        while True:
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "not up: " + log.read_text(errors="replace")
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        yield checkout, base, log.read_text(encoding="utf-8", errors="replace")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def shell(command: str, cwd: Path) -> str:
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=60,
        env=newcomer_env(), check=False,
    )  # fmt: skip
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done.stdout


@pytest.mark.timeout(INSTALL_AND_START + 120)
def test_every_command_the_first_start_prints_works_as_printed(
    served: tuple[Path, str, str],
) -> None:
    checkout, base, banner = served
    printed = [line.strip() for line in banner.splitlines()]
    curl = next(line for line in printed if line.startswith("curl "))
    commands = [line for line in printed if re.match(r"\S*maxgate (sandbox|instance) ", line)]
    help_line = next(line for line in printed if line.startswith("Every command: "))
    activate = next(line for line in printed if line.startswith("(or put it on PATH first: "))
    assert len(commands) == 2, banner
    assert all(c.startswith(".venv/bin/maxgate ") for c in commands), commands

    assert "idMessage" in json.loads(shell(curl, checkout))
    sent, created = (shell(c, checkout) for c in commands)
    assert sent.startswith("sent ")
    assert str(json.loads(created)["apiUrl"]) == base
    assert "Usage: maxgate" in shell(help_line.removeprefix("Every command: "), checkout)
    source = activate.removeprefix("(or put it on PATH first: ").removesuffix(")")
    listed = shell(f"{source} && maxgate instance list --json", checkout)
    assert len(json.loads(listed)) == 2  # the first instance and the one just created

    # Nothing was left in the checkout beside the ignored venv and data dir.
    made = {p.name for p in checkout.iterdir()} - {p.name for p in ROOT.iterdir()}
    assert made <= {".venv", "maxgate-data"}, made
