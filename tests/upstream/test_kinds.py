"""The upstream kind of each instance: its column and migration, ``instance create --upstream``
(the command run for real in a subprocess), and the sandbox's store on both databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from maxgate.domain.records import Message
from maxgate.runtime import Runtime
from maxgate.settings import load_settings
from maxgate.store.database import alembic_config

MAXGATE = str(Path(sys.executable).with_name("maxgate"))


def _migrate(conn: sa.Connection, revision: str, *, down: bool = False) -> None:
    config = alembic_config()
    config.attributes["connection"] = conn
    (command.downgrade if down else command.upgrade)(config, revision)


def test_instances_made_before_kinds_existed_are_sandbox_instances(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        with engine.begin() as conn:
            _migrate(conn, "0004")
            conn.execute(
                sa.text(
                    "INSERT INTO instances (id, name, token_hash, chat_id, phone, state, "
                    "settings, created_at) VALUES (3100000001, 'old', 'h', '31000001', 1, "
                    "'authorized', '{}', 0)"
                )
            )
        with engine.begin() as conn:
            _migrate(conn, "head")
            kind = conn.execute(sa.text("SELECT upstream FROM instances")).scalar_one()
            assert kind == "sandbox"
            assert conn.execute(sa.text("SELECT count(*) FROM sandbox_messages")).scalar() == 0
        with engine.begin() as conn:
            _migrate(conn, "0004", down=True)
            columns = {c["name"] for c in sa.inspect(conn).get_columns("instances")}
            assert "upstream" not in columns
            assert not sa.inspect(conn).has_table("sandbox_messages")
    finally:
        engine.dispose()


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAXGATE_")}
    env.update({"NO_COLOR": "1", "TERM": "dumb"})
    return subprocess.run(
        [MAXGATE, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


async def test_instance_create_takes_the_kind(tmp_path: Path) -> None:
    home = tmp_path / "data"
    home.mkdir()
    made = _cli("instance", "create", "--upstream", "sandbox", "--json", data_dir=home)
    assert made.returncode == 0, made.stderr
    default = _cli("instance", "create", "--json", data_dir=home)
    assert default.returncode == 0, default.stderr
    refused = _cli("instance", "create", "--upstream", "nosuchkind", data_dir=home)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    said = " ".join(refused.stderr.split())
    assert "unknown upstream kind 'nosuchkind': this server has maxbot, maxuser, sandbox" in said
    tokenless = _cli("instance", "create", "--upstream", "maxbot", data_dir=home)
    assert tokenless.returncode == 1 and "Traceback" not in tokenless.stderr
    assert "a maxbot instance needs the bot's token (--bot-token-file)" in tokenless.stderr
    helped = _cli("instance", "create", "--help", data_dir=home)
    assert "--upstream" in helped.stdout and "KIND" in helped.stdout

    runtime = Runtime(load_settings(overrides={"data_dir": str(home)}, environ={}))
    await runtime.open()
    try:
        instances = await runtime.instances.list()
        assert [i.upstream for i in instances] == ["sandbox", "sandbox"]  # none for maxbot
        assert {i.id for i in instances} == {
            json.loads(made.stdout)["idInstance"],
            json.loads(default.stdout)["idInstance"],
        }
    finally:
        await runtime.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty URL (the data dir's SQLite), or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return ""
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def both(database_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime (no workers) on SQLite, and on PostgreSQL."""
    overrides = {"data_dir": str(tmp_path / "data"), "database_url": database_url}
    runtime = Runtime(load_settings(overrides=overrides, environ={}))
    await runtime.open()
    try:
        yield runtime
    finally:
        await runtime.close()


async def test_the_sandbox_store_on_both_databases(both: Runtime) -> None:
    sandbox = both.sandbox
    alice, _ = await both.instances.create(name="Alice")
    bob, _ = await both.instances.create(name="Bob")
    other, _ = await both.instances.create(name="Bot", upstream="maxbot")
    assert (await both.instances.get(other.id)) == other and other.upstream == "maxbot"
    group = await sandbox.create_group("Team", [alice.id, bob.id])
    first = await sandbox.own_send(alice, bob.chat_id, text="one")
    await sandbox.own_send(alice, bob.chat_id, text="two")
    await sandbox.contact_send(alice.id, "20000001", text="hi", sender_name="Carol")
    assert [c.chat_id for c in await sandbox.chats(alice)] == ["20000001", bob.chat_id, group]
    assert [c.name for c in await sandbox.contacts(bob)] == ["Alice"]
    [seen, _second] = await sandbox.history(bob, alice.chat_id, 0)
    assert seen.id_message == first and seen.sender_phone == alice.phone
    assert await sandbox.resolve_phone(alice, bob.phone) == bob.chat_id
    assert await sandbox.resolve_phone(alice, other.phone) is None
    assert await sandbox.forget_message(bob.id, first)
    assert len(await sandbox.history(bob, alice.chat_id, 0)) == 1
    # a repeated send (at-least-once after a crash) stays one message in the history
    message = Message(
        pk=0,
        instance_id=alice.id,
        chat_id=bob.chat_id,
        id_message="1700000000000999",
        direction="outgoing",
        type_message="textMessage",
        timestamp=0,
        sender_id=alice.chat_id,
        sender_name="Alice",
        text="twice",
        caption="",
        status="pending",
        status_description=None,
        send_by_api=True,
        quoted_id=None,
        file=None,
    )
    await sandbox.send(alice, message, None)
    await sandbox.send(alice, message, None)
    history = await sandbox.history(bob, alice.chat_id, 0)
    assert [m.id_message for m in history].count(message.id_message) == 1
    await sandbox.stop()  # the statuses still under way
