"""Instances: ids, tokens stored only hashed, authentication, deletion, settings, look-ups."""

from __future__ import annotations

import asyncio
import hashlib
import re

import pytest
import sqlalchemy as sa

from maxgate.domain import ids
from maxgate.domain.instances import DEFAULT_SETTINGS, Instances
from maxgate.store import tables as t
from maxgate.store.database import Database


@pytest.fixture
def instances(db: Database) -> Instances:
    return Instances(db)


async def test_ids_start_at_3100000001_and_increment(instances: Instances) -> None:
    first, _ = await instances.create(name="one")
    second, _ = await instances.create(name="two")
    assert first.id == ids.FIRST_INSTANCE_ID == 3100000001
    assert second.id == 3100000002
    assert first.chat_id != second.chat_id
    assert first.chat_id == ids.sandbox_chat_id(first.id)
    assert first.phone == ids.sandbox_phone(first.id)
    assert first.state == "authorized" and not first.deleted
    assert first.settings == DEFAULT_SETTINGS


async def test_concurrent_creates_get_distinct_ids(instances: Instances) -> None:
    created = await asyncio.gather(*(instances.create(name=f"i{n}") for n in range(5)))
    assert sorted(i.id for i, _ in created) == [ids.FIRST_INSTANCE_ID + n for n in range(5)]
    assert len({token for _, token in created}) == 5


async def test_the_token_is_50_hex_and_only_its_hash_is_stored(
    instances: Instances, db: Database
) -> None:
    instance, token = await instances.create(name="Alice")
    assert re.fullmatch(r"[0-9a-f]{50}", token)
    async with db.read() as conn:
        row = (
            await conn.execute(sa.select(t.instances).where(t.instances.c.id == instance.id))
        ).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    for value in row._mapping.values():
        assert token not in str(value)
    assert token not in repr(instance)


async def test_authenticate(instances: Instances) -> None:
    instance, token = await instances.create()
    other, other_token = await instances.create()

    found, ok = await instances.authenticate(instance.id, token)
    assert found is not None and found.id == instance.id and ok

    found, ok = await instances.authenticate(instance.id, other_token)
    assert found is not None and found.id == instance.id and not ok

    found, ok = await instances.authenticate(instance.id, token.upper())
    assert not ok

    found, ok = await instances.authenticate(instance.id, "")
    assert not ok

    found, ok = await instances.authenticate(other.id + 1000, token)
    assert found is None and not ok


async def test_delete(instances: Instances) -> None:
    instance, token = await instances.create()
    assert await instances.delete(instance.id) is True
    assert await instances.delete(instance.id) is False  # already deleted
    assert await instances.delete(instance.id + 99) is False  # never existed

    gone = await instances.get(instance.id)
    assert gone is not None and gone.deleted
    assert await instances.list() == []
    assert [i.id for i in await instances.list(include_deleted=True)] == [instance.id]
    assert await instances.by_chat_id(instance.chat_id) is None
    assert await instances.by_phone(instance.phone) is None
    # authentication still finds it (so the API can answer "Instance is deleted")
    found, ok = await instances.authenticate(instance.id, token)
    assert found is not None and found.deleted and ok


async def test_deleted_ids_are_not_reused(instances: Instances) -> None:
    first, _ = await instances.create()
    await instances.delete(first.id)
    second, _ = await instances.create()
    assert second.id == first.id + 1


async def test_update_settings_merges(instances: Instances) -> None:
    instance, _ = await instances.create(settings={"webhookUrl": "https://a.example/hook"})
    assert instance.settings["webhookUrl"] == "https://a.example/hook"

    updated = await instances.update_settings(instance.id, {"delaySendMessagesMilliseconds": 1500})
    assert updated.settings["delaySendMessagesMilliseconds"] == 1500
    assert updated.settings["webhookUrl"] == "https://a.example/hook"

    updated = await instances.update_settings(instance.id, {"incomingWebhook": "no"})
    assert updated.settings == {
        **DEFAULT_SETTINGS,
        "webhookUrl": "https://a.example/hook",
        "delaySendMessagesMilliseconds": 1500,
        "incomingWebhook": "no",
    }
    fresh = await instances.get(instance.id)
    assert fresh is not None and fresh.settings == updated.settings


async def test_by_chat_id_and_by_phone(instances: Instances) -> None:
    alice, _ = await instances.create(name="Alice")
    bob, _ = await instances.create(name="Bob")

    found = await instances.by_chat_id(bob.chat_id)
    assert found is not None and found.id == bob.id and found.name == "Bob"
    found = await instances.by_phone(alice.phone)
    assert found is not None and found.id == alice.id
    assert alice.wid == f"{alice.phone}@c.us"

    assert await instances.by_chat_id("12345") is None
    assert await instances.by_phone(70000000000) is None


async def test_set_state(instances: Instances) -> None:
    instance, _ = await instances.create()
    await instances.set_state(instance.id, "notAuthorized")
    fresh = await instances.get(instance.id)
    assert fresh is not None and fresh.state == "notAuthorized"


# --- the authentication cache ---------------------------------------------------------------


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _count_lookups(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts Database.fetch_one calls (the lookups the cache is there to save)."""
    calls: list[int] = []
    original = db.fetch_one

    async def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(db, "fetch_one", counting)
    return calls


async def test_authentication_is_cached_for_a_second(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    instances = Instances(db, clock=clock)
    instance, token = await instances.create()
    calls = await _count_lookups(db, monkeypatch)
    for _ in range(5):
        found, ok = await instances.authenticate(instance.id, token)
        assert found == instance and ok
    assert len(calls) == 1
    found, ok = await instances.authenticate(instance.id, "wrong" + token[5:])
    assert found == instance and not ok  # a cached entry still checks the token
    assert len(calls) == 1
    clock.now += 1.01
    await instances.authenticate(instance.id, token)
    assert len(calls) == 2  # expired: looked up again


async def test_changes_in_this_process_apply_at_once(db: Database) -> None:
    instances = Instances(db, clock=FakeClock())  # the clock never moves: only drops help
    instance, token = await instances.create()
    await instances.authenticate(instance.id, token)

    await instances.update_settings(instance.id, {"incomingWebhook": "no"})
    found, _ = await instances.authenticate(instance.id, token)
    assert found is not None and found.settings["incomingWebhook"] == "no"

    await instances.set_state(instance.id, "notAuthorized")
    found, _ = await instances.authenticate(instance.id, token)
    assert found is not None and found.state == "notAuthorized"

    await instances.delete(instance.id)
    found, ok = await instances.authenticate(instance.id, token)
    assert found is not None and found.deleted and ok


async def test_another_process_sees_changes_when_the_entry_expires(db: Database) -> None:
    """Two Instances objects on one database stand for two worker processes."""
    clock = FakeClock()
    here, there = Instances(db, clock=clock), Instances(db, clock=clock)
    instance, token = await here.create()
    await here.authenticate(instance.id, token)

    await there.update_settings(instance.id, {"incomingWebhook": "no"})
    await there.delete(instance.id)
    found, _ = await here.authenticate(instance.id, token)
    assert found is not None and not found.deleted  # cached: at most a second old
    assert found.settings["incomingWebhook"] == "yes"

    clock.now += 1.01
    found, _ = await here.authenticate(instance.id, token)
    assert found is not None and found.deleted
    assert found.settings["incomingWebhook"] == "no"


async def test_the_cache_can_be_turned_off(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    instances = Instances(db, auth_cache_seconds=0, clock=FakeClock())
    instance, token = await instances.create()
    calls = await _count_lookups(db, monkeypatch)
    await instances.authenticate(instance.id, token)
    await instances.authenticate(instance.id, token)
    assert len(calls) == 2


async def test_unknown_ids_are_not_cached(db: Database) -> None:
    clock = FakeClock()
    here, there = Instances(db, clock=clock), Instances(db, clock=clock)
    found, ok = await here.authenticate(ids.FIRST_INSTANCE_ID, "x" * 50)
    assert found is None and not ok
    created, token = await there.create()  # made by another process a moment later
    found, ok = await here.authenticate(created.id, token)
    assert found is not None and ok
