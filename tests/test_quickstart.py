"""docs/quickstart.md, run for real: every marked block against a real server, outputs compared.

The page marks its fenced blocks with an HTML comment just before them:

* ``<!-- quickstart:serve -->``: the server command. Its flags become the server's settings;
  the test starts the server itself (``start_server``) on its own port and data dir.
* ``<!-- quickstart:run -->``: bash commands, run in a scratch folder. Each block is one
  ``bash -c``; exported variables carry over to the next block. It must exit 0.
  ``run tty interrupt=N`` runs on a pseudo-terminal and is stopped with SIGINT (Ctrl-C) after N
  seconds; it must exit 130.
* ``<!-- quickstart:background NAME -->``: started in the background, stopped at the end.
* ``<!-- quickstart:file NAME -->``: the block is written to NAME in the scratch folder.
* ``<!-- quickstart:output [NAME] -->``: what the run block before it printed (stdout), or what
  the background NAME printed so far (waited for). In it, ``…`` stands for anything, a run of
  digits for any run of digits, ``$WORD`` for one token-like word, and whitespace for any
  whitespace.

Blocks without a marker are not run; only the few commands in ``NOT_RUN`` may be unmarked.
The page's port 7890, receiver port 7891 and data dir /tmp/qs-data are replaced by the test's.
"""

from __future__ import annotations

import dataclasses
import os
import pty
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Server, clean_env, free_port, maxgate, start_server

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "quickstart.md"
PAGE_PORT, PAGE_HOOK_PORT, PAGE_DATA_DIR = "7890", "7891", "/tmp/qs-data"
NOT_RUN = (
    # The test's scratch folder stands in for /tmp/qs-work.
    "source .venv/bin/activate\nmkdir -p /tmp/qs-work && cd /tmp/qs-work",
    "pip install max-api-client-python",
    "rm -rf /tmp/qs-data /tmp/qs-work",
)
BLOCK_TIMEOUT = 30.0
BACKGROUND_WAIT = 15.0

_BLOCK = re.compile(
    r"(?:<!--\s*quickstart:(?P<marker>[^>]*?)\s*-->\s*\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@dataclasses.dataclass(frozen=True)
class Block:
    """A fenced block of the page and its marker (``kind`` "" when unmarked)."""

    kind: str
    args: tuple[str, ...]
    lang: str
    body: str


def blocks(text: str) -> list[Block]:
    """The page's fenced blocks in order, with their markers."""
    found = []
    for match in _BLOCK.finditer(text):
        words = (match.group("marker") or "").split()
        kind, args = (words[0], tuple(words[1:])) if words else ("", ())
        found.append(Block(kind, args, match.group("lang"), match.group("body")))
    return found


def pattern(expected: str) -> re.Pattern[str]:
    """The regular expression an output block stands for (see the module's docstring)."""
    parts = []
    for token in re.findall(r"…|\$[A-Z][A-Z_]*|\d+|\s+|[^…$\d\s]+|\$", expected.strip()):
        if token == "…":
            parts.append(r".*?")
        elif token.startswith("$") and len(token) > 1:
            parts.append(r"[^\s\"']+")
        elif token.isdigit():
            parts.append(r"\d+")
        elif token.isspace():
            parts.append(r"\s+")
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts), re.S)


def matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` output is what an output block shows."""
    return pattern(expected).fullmatch(actual.strip()) is not None


def terminal_text(raw: str) -> str:
    """What a terminal shows of ``raw``: escapes dropped, each line as last overwritten."""
    text = _ANSI.sub("", raw).replace("\r\n", "\n")
    return "\n".join(line.rsplit("\r", 1)[-1].rstrip() for line in text.split("\n"))


class Walk:
    """Runs the page's blocks in a scratch folder against one server."""

    def __init__(self, work: Path, substitutions: dict[str, str]) -> None:
        self.work = work
        self.substitutions = substitutions
        self.state = work / ".quickstart-state"
        self.state.write_text("", encoding="utf-8")
        venv_bin = str(Path(sys.executable).parent)
        self.env = clean_env(PATH=venv_bin + os.pathsep + os.environ.get("PATH", ""))
        self.env.pop("VIRTUAL_ENV", None)
        self.background: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}

    def text(self, body: str) -> str:
        for page, ours in self.substitutions.items():
            body = body.replace(page, ours)
        return body

    def script(self, body: str, *, keep_state: bool = True) -> str:
        """``body`` as a bash script that starts from the saved state and (at any exit, also
        after Ctrl-C) saves its exported variables for the next block."""
        state = shlex.quote(str(self.state))
        save = f"trap 'export -p > {state}' EXIT\n" if keep_state else ""
        return f"source {state}\n{save}set -euo pipefail\n{self.text(body)}\n"

    def write_file(self, name: str, body: str) -> None:
        (self.work / name).write_text(self.text(body), encoding="utf-8")

    def run(self, body: str) -> str:
        done = subprocess.run(
            ["bash", "-c", self.script(body)],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, f"{body}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def run_tty(self, body: str, interrupt: float) -> str:
        """Run on a pseudo-terminal; Ctrl-C (SIGINT to the group) after ``interrupt`` s."""
        primary, secondary = pty.openpty()
        env = {**self.env, "TERM": "xterm", "COLUMNS": "100", "NO_COLOR": "1"}
        process = subprocess.Popen(
            ["bash", "-c", self.script(body)],
            cwd=self.work,
            env=env,
            stdin=secondary,
            stdout=secondary,
            stderr=secondary,
            start_new_session=True,
        )
        os.close(secondary)
        output = bytearray()
        stop_at = time.monotonic() + interrupt
        interrupted = False
        try:
            while True:
                if not interrupted and time.monotonic() >= stop_at:
                    os.killpg(process.pid, signal.SIGINT)
                    interrupted = True
                ready, _, _ = select.select([primary], [], [], 0.1)
                if ready:
                    try:
                        chunk = os.read(primary, 65536)
                    except OSError:  # the terminal closed: every process has ended
                        break
                    if not chunk:
                        break
                    output += chunk
                elif process.poll() is not None:
                    break
                if time.monotonic() > stop_at + BLOCK_TIMEOUT:
                    raise AssertionError(f"{body}\ndid not stop after Ctrl-C")
            code = process.wait(timeout=BLOCK_TIMEOUT)
        finally:
            os.close(primary)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        text = terminal_text(output.decode("utf-8", "replace"))
        assert code == 130, f"{body}\nexit {code} (expected 130 after Ctrl-C)\n{text}"
        return text

    def start_background(self, name: str, body: str) -> None:
        log = self.work / f".background-{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                ["bash", "-c", self.script(body, keep_state=False)],
                cwd=self.work,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.background[name] = (process, log)

    def background_output(self, name: str, expected: str) -> str:
        """The background's output once it matches ``expected`` (or after the wait)."""
        process, log = self.background[name]
        deadline = time.monotonic() + BACKGROUND_WAIT
        while True:
            text = log.read_text(encoding="utf-8", errors="replace")
            if matches(expected, text) or time.monotonic() > deadline:
                return text
            if process.poll() is not None:
                return text
            time.sleep(0.1)

    def stop(self) -> None:
        for process, _log in self.background.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def serve_settings(command: str) -> dict[str, str]:
    """The settings a page's serve command gives (port and data dir left out: the test's)."""
    words = shlex.split(command)
    assert words[:1] == ["./scripts/serve"] or words[:2] == ["maxgate", "serve"], command
    flags = words[1:] if words[0] == "./scripts/serve" else words[2:]
    settings: dict[str, str] = {}
    while flags:
        flag = flags.pop(0)
        assert flag.startswith("--") and flags, f"expected --setting value, got {flag!r}"
        settings[flag[2:].replace("-", "_")] = flags.pop(0)
    assert settings.pop("port") == PAGE_PORT
    assert settings.pop("data_dir") == PAGE_DATA_DIR
    return settings


def needs_tools() -> None:
    missing = [tool for tool in ("bash", "curl", "jq", "sha256sum") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the quick start needs {', '.join(missing)}")


@pytest.fixture
def page_blocks() -> list[Block]:
    return blocks(PAGE.read_text(encoding="utf-8"))


# --- the page's own rules (no server) ----------------------------------------------------------


def test_every_command_on_the_page_is_run_or_allowed(page_blocks: list[Block]) -> None:
    kinds = {"", "serve", "run", "background", "file", "output"}
    for block in page_blocks:
        assert block.kind in kinds, f"unknown marker quickstart:{block.kind}"
        if block.kind == "" and block.lang in ("sh", "bash", "console", ""):
            assert block.body.strip() in NOT_RUN, f"a command the test does not run:\n{block.body}"
    assert [b.kind for b in page_blocks].count("serve") == 1
    assert [b.kind for b in page_blocks].count("run") >= 10


def test_the_page_shows_no_real_token() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert re.search(r"\b[0-9a-f]{50}\b", text) is None, "replace real tokens with $TOKEN"


def test_output_patterns() -> None:
    assert matches('{"idMessage": "123"}', '{"idMessage": "179572026006532000"}')
    assert matches("token: $TOKEN\nend", "token: 0f3a9c\n\nend")
    assert matches("link: http://h/files/…\nsize", "link: http://h/files/3/x?sig=a-b_c\nsize")
    assert not matches("status: read", "status: sent")
    assert not matches("a\nb", "a\nb\nc")
    assert terminal_text("\x1b[1mbar 0%\r\x1b[2Kbar 100%\r\nnext") == "bar 100%\nnext"


# --- the walkthrough --------------------------------------------------------------------------


@pytest.fixture
def walk(tmp_path: Path, page_blocks: list[Block]) -> Iterator[tuple[Walk, Server]]:
    needs_tools()
    serve = next(b for b in page_blocks if b.kind == "serve")
    # As the page's server: rate limits on (start_server turns them off unless told).
    settings = {"rate_limits": "true", **serve_settings(serve.body.strip())}
    server = start_server(tmp_path / "data", **settings)
    work = tmp_path / "work"
    work.mkdir()
    port = server.base_url.rsplit(":", 1)[1]
    substitutions = {
        PAGE_DATA_DIR: str(server.data_dir),
        PAGE_PORT: port,
        PAGE_HOOK_PORT: str(free_port()),
    }
    runner = Walk(work, substitutions)
    try:
        yield runner, server
    finally:
        runner.stop()
        server.stop()


@pytest.mark.timeout(90)
def test_the_quick_start_runs_as_written(
    walk: tuple[Walk, Server], page_blocks: list[Block]
) -> None:
    runner, server = walk
    started = time.monotonic()
    last_output: str | None = None
    ran = 0
    for block in page_blocks:
        if block.kind == "serve":
            last_output = server.log.read_text(encoding="utf-8", errors="replace")
        elif block.kind == "file":
            runner.write_file(block.args[0], block.body)
        elif block.kind == "background":
            runner.start_background(block.args[0], block.body)
        elif block.kind == "run":
            options = dict(a.split("=", 1) if "=" in a else (a, "") for a in block.args)
            if "tty" in options:
                last_output = runner.run_tty(block.body, float(options["interrupt"]))
            else:
                last_output = runner.run(block.body)
            ran += 1
        elif block.kind == "output":
            expected = runner.text(block.body)
            if block.args:
                actual = runner.background_output(block.args[0], expected)
            else:
                assert last_output is not None, f"output block before any command:\n{block.body}"
                actual, last_output = last_output, None
            assert matches(expected, actual), (
                f"the page shows:\n{block.body}\nbut the command printed:\n{actual}"
            )
    assert ran >= 10
    assert time.monotonic() - started < 60, "keep the walkthrough under a minute"


# --- bugs found while writing the page --------------------------------------------------------


def test_download_into_a_new_folder_with_a_trailing_slash(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        info = server.create_instance()
        note = tmp_path / "note.txt"
        note.write_text("hello\n", encoding="utf-8")
        sent = maxgate(
            "sandbox", "send", "--instance", str(info["idInstance"]), "--from", "20000001",
            "--file", str(note), "--json", data_dir=server.data_dir, env=server.env,
        )  # fmt: skip
        id_message = re.search(r'"idMessage": "(\d+)"', sent)
        assert id_message is not None
        env = clean_env(
            MAXGATE_API_URL=server.base_url,
            MAXGATE_ID_INSTANCE=str(info["idInstance"]),
            MAXGATE_API_TOKEN=str(info["apiTokenInstance"]),
        )
        done = subprocess.run(
            [sys.executable, "-m", "maxgate", "download", "--chat", "20000001",
             "--message", id_message.group(1), "-o", "new-folder/"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "new-folder" / "note.txt").read_text(encoding="utf-8") == "hello\n"
    finally:
        server.stop()
