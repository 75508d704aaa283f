"""The MAX user-account connector's own rows: each ``maxuser`` instance's PyMax session (the
``SessionInfo`` its ``StoreProtocol`` saves, as JSON) and the MAX user id of the account.

The session holds the account's login token: it never goes into a log line or a repr (``Account``
leaves it out), only to the connector's worker process over its private pipe.

Functions over ``Database``; ``maxgate.upstream.maxuser`` reaches the database only through
these.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import sqlalchemy as sa

from maxgate.store import tables as t
from maxgate.store.database import Database

KIND = "maxuser"
"""The upstream kind whose instances these rows belong to."""

_S = t.maxuser_sessions.c
_I = t.instances.c
_JOINED = sa.select(_I.id, _I.state, _S.session, _S.account_id).select_from(
    t.instances.outerjoin(t.maxuser_sessions, _S.instance_id == _I.id)
)


@dataclasses.dataclass(frozen=True, slots=True)
class Account:
    """One ``maxuser`` instance as stored: its session (None: logged out) and last state."""

    instance_id: int
    session: str | None = dataclasses.field(repr=False)
    account_id: int | None
    state: str


def _account(row: Any) -> Account:
    return Account(
        instance_id=row.id, session=row.session, account_id=row.account_id, state=row.state
    )


async def live(db: Database) -> list[Account]:
    """Every live ``maxuser`` instance, by instance id (with no session before its login)."""
    query = _JOINED.where(_I.deleted_at.is_(None), _I.upstream == KIND).order_by(_I.id)
    async with db.read() as conn:
        return [_account(row) for row in (await conn.execute(query)).all()]


async def get(db: Database, instance_id: int) -> Account | None:
    """One ``maxuser`` instance (deleted or not), or None."""
    query = _JOINED.where(_I.id == instance_id, _I.upstream == KIND)
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    return _account(row) if row is not None else None


async def save(
    db: Database, instance_id: int, session: str | None, *, account_id: int | None = None
) -> None:
    """Keep an instance's session (None: the account logged out, or MAX revoked it); the
    account id stays as it was when ``account_id`` is None."""
    values: dict[str, object] = {"session": session, "updated_at": time.time()}
    if account_id is not None:
        values["account_id"] = account_id
    async with db.write() as conn:
        result = await conn.execute(
            t.maxuser_sessions.update().where(_S.instance_id == instance_id).values(**values)
        )
        if result.rowcount == 0:
            await conn.execute(
                t.maxuser_sessions.insert().values(instance_id=instance_id, **values)
            )
