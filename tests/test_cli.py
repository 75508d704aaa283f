"""The ``maxgate`` command, run for real in subprocesses on a temporary data dir.

Most tests run the console script installed next to the interpreter; ``--help`` goes through
``python -m maxgate``. What the commands did is checked with a ``Runtime`` on the same data dir.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from maxgate.domain import ids
from maxgate.runtime import Runtime
from maxgate.settings import SETTINGS, load_settings
from maxgate.store import tables as t

MAXGATE = str(Path(sys.executable).with_name("maxgate"))
CONTACT = "20000001"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAXGATE_")}
    env.update({"NO_COLOR": "1", "TERM": "dumb"})
    return env


def cli(
    *args: str, data_dir: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``maxgate args…`` (with ``--data-dir`` when given) and return what it did."""
    command = [MAXGATE, *args]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, env={**_env(), **(env or {})}
    )


def _flat(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir shared by this module's tests (made, as a first ``serve`` would)."""
    path = tmp_path_factory.mktemp("cli") / "data"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def alice(home: Path) -> dict[str, Any]:
    """An instance created through the CLI: what ``instance create --json`` printed."""
    info: dict[str, Any] = json.loads(
        _ok(cli("instance", "create", "--name", "Alice", "--json", data_dir=home))
    )
    return info


@pytest.fixture(scope="module")
def bob(home: Path, alice: dict[str, Any]) -> dict[str, Any]:
    """A second instance (created after Alice)."""
    info: dict[str, Any] = json.loads(
        _ok(cli("instance", "create", "--name", "Bob", "--json", data_dir=home))
    )
    return info


@pytest.fixture
async def runtime(home: Path) -> AsyncIterator[Runtime]:
    """A runtime on the CLI's data dir (no workers), to look at what the CLI did."""
    rt = Runtime(load_settings(overrides={"data_dir": str(home)}, environ={}))
    await rt.open()
    try:
        yield rt
    finally:
        await rt.close()


def test_python_dash_m_help_lists_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "maxgate", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    out = _ok(result)
    for command in ("serve", "instance", "sandbox", "doctor"):
        assert command in out


def test_fakemax_is_a_command_of_maxgate() -> None:
    out = _ok(cli("fakemax", "serve", "--help"))
    assert "--port" in out and "--rate-limit-rps" in out
    refused = cli("fakemax", "serve", "--rate-limit-rps", "many")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr


def test_serve_help_lists_every_setting_flag_and_env_var() -> None:
    out = _flat(_ok(cli("serve", "--help")))
    for spec in SETTINGS:
        assert f"{spec.flag} / {spec.env}" in out, spec.name


async def test_instance_create_prints_one_json_object(
    alice: dict[str, Any], runtime: Runtime
) -> None:
    assert set(alice) == {"idInstance", "apiTokenInstance", "apiUrl", "mediaUrl", "chatId"}
    assert alice["idInstance"] == ids.FIRST_INSTANCE_ID
    assert re.fullmatch(r"[0-9a-f]{50}", alice["apiTokenInstance"])
    assert alice["apiUrl"] == alice["mediaUrl"] == "http://127.0.0.1:7880"
    assert alice["chatId"] == ids.sandbox_chat_id(alice["idInstance"])
    instance, ok = await runtime.instances.authenticate(
        alice["idInstance"], alice["apiTokenInstance"]
    )
    assert instance is not None and ok and instance.name == "Alice"


def test_instance_list_never_shows_tokens(
    home: Path, alice: dict[str, Any], bob: dict[str, Any]
) -> None:
    as_json = cli("instance", "list", "--json", data_dir=home)
    listed = json.loads(_ok(as_json))
    by_id = {row["idInstance"]: row for row in listed}
    assert by_id[alice["idInstance"]] == {
        "idInstance": alice["idInstance"],
        "name": "Alice",
        "chatId": alice["chatId"],
        "state": "authorized",
    }
    assert by_id[bob["idInstance"]]["name"] == "Bob"
    as_table = cli("instance", "list", data_dir=home)
    assert str(alice["idInstance"]) in _ok(as_table) and "Alice" in as_table.stdout
    for result in (as_json, as_table):
        for who in (alice, bob):
            assert who["apiTokenInstance"] not in result.stdout + result.stderr
            assert ids.token_hash(who["apiTokenInstance"]) not in result.stdout


async def test_instance_delete(home: Path, alice: dict[str, Any], runtime: Runtime) -> None:
    lines = _ok(cli("instance", "create", "--name", "Temp", "--json", data_dir=home)).splitlines()
    assert len(lines) == 1  # exactly one JSON object, nothing else on stdout
    created = json.loads(lines[0])
    assert created["idInstance"] > alice["idInstance"]
    number = str(created["idInstance"])
    assert number in _ok(cli("instance", "delete", number, data_dir=home))
    gone = await runtime.instances.get(created["idInstance"])
    assert gone is not None and gone.deleted
    assert created["idInstance"] not in [i.id for i in await runtime.instances.list()]

    again = cli("instance", "delete", number, data_dir=home)
    assert again.returncode == 1
    assert f"no live instance {number}" in _flat(again.stderr)
    assert "Traceback" not in again.stderr


async def test_sandbox_send_text(home: Path, alice: dict[str, Any], runtime: Runtime) -> None:
    # the runtime fixture holds the database open while the CLI writes: WAL allows it
    out = _ok(
        cli(
            "sandbox", "send", "--instance", str(alice["idInstance"]), "--from", CONTACT,
            "--text", "hello from the CLI", "--name", "Carol", "--json", data_dir=home,
        )
    )  # fmt: skip
    answer = json.loads(out)
    assert set(answer) == {"idMessage", "chatId"} and answer["chatId"] == CONTACT
    message = await runtime.journal.get(alice["idInstance"], CONTACT, answer["idMessage"])
    assert message is not None
    assert message.direction == "incoming" and message.text == "hello from the CLI"
    assert message.sender_name == "Carol"


async def test_sandbox_send_file_stores_it(
    home: Path, alice: dict[str, Any], runtime: Runtime, tmp_path: Path
) -> None:
    data = b"%PDF-1.4\n" + os.urandom(300_000)
    path = tmp_path / "отчёт 1.pdf"
    path.write_bytes(data)
    out = _ok(
        cli(
            "sandbox", "send", "--instance", str(alice["idInstance"]), "--from", "20000002",
            "--file", str(path), "--caption", "the report", "--json", data_dir=home,
        )
    )  # fmt: skip
    answer = json.loads(out)
    message = await runtime.journal.get(alice["idInstance"], "20000002", answer["idMessage"])
    assert message is not None and message.file is not None
    assert message.type_message == "documentMessage" and message.caption == "the report"
    assert message.file.file_name == "отчёт 1.pdf"
    assert message.file.mime_type == "application/pdf"
    assert message.file.state == "stored"  # mirrored before the command returned
    assert message.file.size == len(data)
    assert b"".join([c async for c in await runtime.files.open(message.file)]) == data


async def test_sandbox_group_create(
    home: Path, alice: dict[str, Any], bob: dict[str, Any], runtime: Runtime
) -> None:
    out = _ok(
        cli(
            "sandbox", "group", "create", "--name", "Team",
            "--member", str(alice["idInstance"]), "--member", str(bob["idInstance"]),
            data_dir=home,
        )
    )  # fmt: skip
    chat_id = out.strip()
    assert re.fullmatch(r"-\d+", chat_id)
    async with runtime.db.read() as conn:
        name = (
            await conn.execute(
                sa.select(t.sandbox_groups.c.name).where(t.sandbox_groups.c.chat_id == chat_id)
            )
        ).scalar_one()
        members = set(
            (
                await conn.execute(
                    sa.select(t.sandbox_members.c.instance_id).where(
                        t.sandbox_members.c.chat_id == chat_id
                    )
                )
            ).scalars()
        )
    assert name == "Team"
    assert members == {alice["idInstance"], bob["idInstance"]}


def test_doctor(home: Path) -> None:
    out = _ok(cli("doctor", data_dir=home))
    assert "database: ok" in out
    assert "blob store: ok" in out


def test_bad_values_fail_with_a_clear_message_and_no_traceback(
    home: Path, alice: dict[str, Any]
) -> None:
    """Usage and setting errors exit 2, an unknown instance exits 1 (run side by side)."""
    instance = str(alice["idInstance"])
    send = ["sandbox", "send", "--instance", instance]
    cases: list[tuple[list[str], dict[str, str], int, str]] = [
        (["serve", "--max-file-size", "5GB"], {}, 2, "max_file_size"),
        (["serve", "--port", "abc"], {}, 2, "--port"),
        (["serve", "--log-level", "loud"], {}, 2, "MAXGATE_LOG_LEVEL"),
        (["serve", "--no-such-setting", "1"], {}, 2, "unknown setting 'no-such-setting'"),
        (["instance", "list"], {"MAXGATE_FILE_RETENTION": "soon"}, 2, "MAXGATE_FILE_RETENTION"),
        ([*send, "--from", "abc", "--text", "x"], {}, 2, "--from must be a chatId"),
        ([*send, "--from", "1"], {}, 2, "exactly one of --text or --file"),
        (
            ["sandbox", "group", "create", "--name", "X", "--member", "3199999999"],
            {},
            1,
            "no live instance 3199999999",
        ),
    ]
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        results = list(pool.map(lambda c: cli(*c[0], data_dir=home, env=c[1]), cases))
    for (args, env, code, needle), result in zip(cases, results, strict=True):
        label = f"{args} {env}"
        assert result.returncode == code, (label, result.stdout, result.stderr)
        assert needle in _flat(result.stderr), (label, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr, label


def test_a_size_without_b_is_not_a_crash(home: Path) -> None:
    result = cli("doctor", data_dir=home, env={"MAXGATE_MAX_FILE_SIZE": "10m"})
    assert result.returncode in (0, 2), result.stderr
    assert "Traceback" not in result.stderr and "KeyError" not in result.stderr
