"""The sandbox messenger's own data: its files, groups, the history it carried, and the sandbox
accounts (instances of kind ``sandbox``) it reaches by chatId or phone number.

Functions over ``Database``; ``maxgate.upstream.sandbox`` reaches the database only through
these. Rows come back as the small records below (the store knows no domain records).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from maxgate.store import tables as t
from maxgate.store.database import Database
from maxgate.store.dialects import insert_new

KIND = "sandbox"
"""The upstream kind whose instances the sandbox connects."""


@dataclasses.dataclass(frozen=True, slots=True)
class SandboxAccount:
    """A sandbox instance as the sandbox messenger sees it: who it is and its connection."""

    id: int
    name: str
    chat_id: str
    phone: int
    state: str
    deleted: bool


@dataclasses.dataclass(frozen=True, slots=True)
class SandboxFile:
    """Bytes the sandbox carries: its reference and where the blob is."""

    ref: str
    key: str
    sha256: str
    size: int
    created_at: float


@dataclasses.dataclass(frozen=True, slots=True)
class Carried:
    """One message in one account's sandbox history (``body``: the message as JSON)."""

    instance_id: int
    chat_id: str
    chat_name: str
    chat_phone: int
    id_message: str
    timestamp: int
    file_ref: str | None
    body: str


_ACCOUNT_COLUMNS = (
    t.instances.c.id,
    t.instances.c.name,
    t.instances.c.chat_id,
    t.instances.c.phone,
    t.instances.c.state,
    t.instances.c.deleted_at,
)
_ACCOUNT_BY_ID = sa.select(*_ACCOUNT_COLUMNS).where(
    t.instances.c.id == sa.bindparam("instance_id"), t.instances.c.upstream == KIND
)
_LIVE_BY_CHAT_ID = sa.select(*_ACCOUNT_COLUMNS).where(
    t.instances.c.chat_id == sa.bindparam("chat_id"),
    t.instances.c.deleted_at.is_(None),
    t.instances.c.upstream == KIND,
)
_LIVE_BY_PHONE = sa.select(*_ACCOUNT_COLUMNS).where(
    t.instances.c.phone == sa.bindparam("phone"),
    t.instances.c.deleted_at.is_(None),
    t.instances.c.upstream == KIND,
)
_FILE = sa.select(t.sandbox_files).where(t.sandbox_files.c.ref == sa.bindparam("ref"))
_CARRIED_COLUMNS = (
    t.sandbox_messages.c.instance_id,
    t.sandbox_messages.c.chat_id,
    t.sandbox_messages.c.chat_name,
    t.sandbox_messages.c.chat_phone,
    t.sandbox_messages.c.id_message,
    t.sandbox_messages.c.timestamp,
    t.sandbox_messages.c.file_ref,
    t.sandbox_messages.c.body,
)


def _account(row: Any) -> SandboxAccount:
    return SandboxAccount(
        id=row.id,
        name=row.name,
        chat_id=row.chat_id,
        phone=row.phone,
        state=row.state,
        deleted=row.deleted_at is not None,
    )


def _carried(row: Any) -> Carried:
    return Carried(
        instance_id=row.instance_id,
        chat_id=row.chat_id,
        chat_name=row.chat_name,
        chat_phone=row.chat_phone,
        id_message=row.id_message,
        timestamp=row.timestamp,
        file_ref=row.file_ref,
        body=row.body,
    )


async def account(db: Database, instance_id: int) -> SandboxAccount | None:
    """The sandbox instance with that id (deleted ones included), or None."""
    row = await db.fetch_one(_ACCOUNT_BY_ID, {"instance_id": instance_id})
    return _account(row) if row else None


async def account_by_chat_id(db: Database, chat_id: str) -> SandboxAccount | None:
    """The live sandbox instance that owns a chatId, or None."""
    row = await db.fetch_one(_LIVE_BY_CHAT_ID, {"chat_id": chat_id})
    return _account(row) if row else None


async def account_by_phone(db: Database, phone: int) -> SandboxAccount | None:
    """The live sandbox instance with that phone number, or None."""
    row = await db.fetch_one(_LIVE_BY_PHONE, {"phone": phone})
    return _account(row) if row else None


async def add_file(db: Database, ref: str, *, key: str, sha256: str, size: int) -> None:
    """Record bytes the sandbox now carries under ``ref``."""
    async with db.write() as conn:
        await conn.execute(
            t.sandbox_files.insert().values(
                ref=ref, key=key, sha256=sha256, size=size, created_at=time.time()
            )
        )


async def file(db: Database, ref: str) -> SandboxFile | None:
    """The sandbox's file with that reference, or None."""
    row = await db.fetch_one(_FILE, {"ref": ref})
    if row is None:
        return None
    return SandboxFile(row.ref, row.key, row.sha256, row.size, row.created_at)


async def create_group(db: Database, chat_id: str, name: str, members: list[int]) -> None:
    """Record a sandbox group and its member instances."""
    async with db.write() as conn:
        await conn.execute(
            t.sandbox_groups.insert().values(chat_id=chat_id, name=name, created_at=time.time())
        )
        for member in dict.fromkeys(members):
            await conn.execute(
                t.sandbox_members.insert().values(chat_id=chat_id, instance_id=member)
            )


async def group(db: Database, chat_id: str) -> tuple[str, list[int]] | None:
    """A group's name and member instance ids, or None when there is no such group."""
    async with db.read() as conn:
        name = (
            await conn.execute(
                sa.select(t.sandbox_groups.c.name).where(t.sandbox_groups.c.chat_id == chat_id)
            )
        ).scalar()
        members = (
            await conn.execute(
                sa.select(t.sandbox_members.c.instance_id)
                .where(t.sandbox_members.c.chat_id == chat_id)
                .order_by(t.sandbox_members.c.instance_id)
            )
        ).scalars()
        member_ids = list(members)
    return None if name is None else (name, member_ids)


async def groups_of(db: Database, instance_id: int) -> list[tuple[str, str]]:
    """(chatId, name) of every group an instance is a member of, oldest first."""
    query = (
        sa.select(t.sandbox_groups.c.chat_id, t.sandbox_groups.c.name)
        .join(t.sandbox_members, t.sandbox_members.c.chat_id == t.sandbox_groups.c.chat_id)
        .where(t.sandbox_members.c.instance_id == instance_id)
        .order_by(t.sandbox_groups.c.created_at, t.sandbox_groups.c.chat_id)
    )
    async with db.read() as conn:
        return [(row.chat_id, row.name) for row in await conn.execute(query)]


async def record(db: Database, carried: list[Carried]) -> None:
    """Add messages to the accounts' histories in one transaction; one already there (the
    same account, chat and idMessage: a repeated send) is left as it was.

    One statement (``INSERT … ON CONFLICT DO NOTHING``, many rows) in one crossing to the
    database thread (``Database.transact``): every inbound sandbox message passes here.
    """
    if not carried:
        return
    rows = [dataclasses.asdict(entry) for entry in carried]
    keys = ["instance_id", "chat_id", "id_message"]
    statement = insert_new(db.dialect, t.sandbox_messages, keys=keys)

    def work(conn: sa.Connection) -> None:
        conn.execute(statement, rows)

    await db.transact(work)


async def history(db: Database, instance_id: int, chat_id: str, since: int) -> list[Carried]:
    """One chat of an account's history from ``since`` (Unix seconds) on, oldest first."""
    table = t.sandbox_messages
    query = (
        sa.select(*_CARRIED_COLUMNS)
        .where(
            table.c.instance_id == instance_id,
            table.c.chat_id == chat_id,
            table.c.timestamp >= since,
        )
        .order_by(table.c.timestamp, table.c.id)
    )
    async with db.read() as conn:
        return [_carried(row) for row in await conn.execute(query)]


async def carried(db: Database, instance_id: int, id_message: str) -> Carried | None:
    """The message with that idMessage in an account's history (any chat), or None."""
    table = t.sandbox_messages
    query = (
        sa.select(*_CARRIED_COLUMNS)
        .where(table.c.instance_id == instance_id, table.c.id_message == id_message)
        .order_by(table.c.id)
        .limit(1)
    )
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    return _carried(row) if row else None


async def forget(db: Database, instance_id: int, id_message: str) -> int:
    """Delete a message from an account's history (as a messenger deletes one for everybody
    would, for that account); returns how many rows went."""
    table = t.sandbox_messages
    async with db.write() as conn:
        result = await conn.execute(
            table.delete().where(
                table.c.instance_id == instance_id, table.c.id_message == id_message
            )
        )
    return int(result.rowcount)


async def chats(db: Database, instance_id: int) -> list[tuple[str, str, int]]:
    """(chatId, name, phone) of each chat in an account's history, the most recent chat first:
    the latest name a message gave it, and the phone number when any message told it."""
    table = t.sandbox_messages
    mine = table.c.instance_id == instance_id
    last = sa.func.max(table.c.id).label("last")
    by_chat = (
        sa.select(table.c.chat_id, last, sa.func.max(table.c.chat_phone).label("phone"))
        .where(mine)
        .group_by(table.c.chat_id)
        .order_by(last.desc())
    )
    names = (
        sa.select(table.c.chat_id, table.c.chat_name, sa.func.max(table.c.id).label("last"))
        .where(mine, table.c.chat_name != "")
        .group_by(table.c.chat_id, table.c.chat_name)
        .order_by(sa.func.max(table.c.id))
    )
    async with db.read() as conn:
        found = (await conn.execute(by_chat)).all()
        named = {row.chat_id: row.chat_name for row in await conn.execute(names)}  # latest wins
    return [(row.chat_id, named.get(row.chat_id, ""), row.phone) for row in found]


async def settings_of(db: Database, instance_id: int) -> dict[str, Any]:
    """An instance's settings (the read marks the sandbox honours); {} for no such one."""
    query = sa.select(t.instances.c.settings).where(t.instances.c.id == instance_id)
    async with db.read() as conn:
        text = (await conn.execute(query)).scalar()
    return dict(json.loads(text)) if text else {}


Change = Callable[[dict[str, Any]], bool]
"""Changes a carried message's body (parsed) in place; False to leave the row as it was."""


async def change(
    db: Database, instance_id: int, chat_id: str, change: Change, *, id_message: str | None = None
) -> list[dict[str, Any]]:
    """Apply ``change`` to the carried messages of one chat of an account's history (only the
    one with ``id_message`` when given), in one transaction; returns the bodies it changed.

    What the sandbox's simulated people see of a message — read, edited, removed — is kept in
    its body (its ``seen`` marks), so a read-modify-write here is the sandbox's whole rule."""
    table = t.sandbox_messages
    where = [table.c.instance_id == instance_id, table.c.chat_id == chat_id]
    if id_message is not None:
        where.append(table.c.id_message == id_message)
    changed: list[dict[str, Any]] = []
    async with db.write() as conn:
        rows = (
            await conn.execute(
                sa.select(table.c.id, table.c.body).where(*where).order_by(table.c.id)
            )
        ).all()
        for row in rows:
            body = json.loads(row.body)
            if not change(body):
                continue
            await conn.execute(
                table.update().where(table.c.id == row.id).values(body=json.dumps(body))
            )
            changed.append(body)
    return changed
