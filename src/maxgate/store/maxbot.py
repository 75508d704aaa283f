"""The MAX Bot API connector's own rows: each ``maxbot`` instance's bot token, who the bot is,
the marker its long poll has reached, its webhook subscription, and which server process runs
it (a lease: ``owner`` until ``lease_until``).

The lease is taken and renewed as the outbox's claims are (``maxgate.store.outbox``): one
conditional UPDATE — the row is ours, or nobody's, or its lease has run out — whose row count
says whether it was taken. A single UPDATE is atomic on both engines (SQLite's writers are
serialised; PostgreSQL re-checks the condition on the row a concurrent writer changed), so two
processes never both hold one bot.

Functions over ``Database``; ``maxgate.upstream.maxbot`` reaches the database only through
these. Rows come back as ``Bot`` records, whose repr never shows the token.
"""

from __future__ import annotations

import dataclasses
import time

import sqlalchemy as sa

from maxgate.store import tables as t
from maxgate.store.database import Database

KIND = "maxbot"
"""The upstream kind whose instances these rows belong to."""

_B = t.maxbot_bots.c
_I = t.instances.c
_JOINED = sa.select(t.maxbot_bots, _I.state).join(t.instances, _I.id == _B.instance_id)
# The lease columns (migration 0008), named here until ``tables.maxbot_bots`` lists them.
_LEASES = sa.table(
    "maxbot_bots",
    sa.column("instance_id", sa.BigInteger),
    sa.column("marker", sa.BigInteger),
    sa.column("owner", sa.String),
    sa.column("lease_until", sa.Float),
    sa.column("updated_at", sa.Float),
)
_L = _LEASES.c


@dataclasses.dataclass(frozen=True, slots=True)
class Bot:
    """One instance's bot as stored (``token`` is left out of the repr)."""

    instance_id: int
    token: str = dataclasses.field(repr=False)
    bot_user_id: int | None
    bot_name: str
    marker: int | None
    webhook_url: str | None
    webhook_secret: str | None = dataclasses.field(repr=False)
    state: str = "authorized"  # the instance's state as last reported


def _bot(row: sa.Row[tuple[object, ...]]) -> Bot:
    return Bot(
        instance_id=row.instance_id,
        token=row.token,
        bot_user_id=row.bot_user_id,
        bot_name=row.bot_name,
        marker=row.marker,
        webhook_url=row.webhook_url,
        webhook_secret=row.webhook_secret,
        state=row.state,
    )


async def add(db: Database, instance_id: int, token: str, *, marker: int | None = None) -> None:
    """Keep the bot token of a new ``maxbot`` instance (``StoreConflict`` when it has one),
    with the marker its long poll starts from (None: MAX's latest update)."""
    async with db.write() as conn:
        await conn.execute(
            t.maxbot_bots.insert().values(
                instance_id=instance_id, token=token, marker=marker, updated_at=time.time()
            )
        )


async def get(db: Database, instance_id: int) -> Bot | None:
    """The bot of an instance, or None."""
    query = _JOINED.where(_B.instance_id == instance_id)
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    return _bot(row) if row is not None else None


async def live(db: Database) -> list[Bot]:
    """The bots of every live ``maxbot`` instance, by instance id."""
    query = _JOINED.where(_I.deleted_at.is_(None), _I.upstream == KIND).order_by(_B.instance_id)
    async with db.read() as conn:
        return [_bot(row) for row in (await conn.execute(query)).all()]


async def set_marker(
    db: Database, instance_id: int, marker: int, *, owner: str | None = None
) -> bool:
    """Where the bot's long poll has got to: every update before ``marker`` is journaled.

    With ``owner``, only while the bot's lease is still ``owner``'s: a process that lost it
    (stalled past its lease) never moves the marker of the one that took over. Whether the
    marker was written."""
    query = _LEASES.update().where(_L.instance_id == instance_id)
    if owner is not None:
        query = query.where(_L.owner == owner)
    async with db.write() as conn:
        result = await conn.execute(query.values(marker=marker, updated_at=time.time()))
    return bool(result.rowcount == 1)


async def take_lease(
    db: Database, instance_id: int, owner: str, *, now: float, until: float
) -> bool:
    """Make ``owner`` the process that runs the bot until ``until``, when the lease is
    ``owner``'s already (a renewal), nobody's, or ran out by ``now``. Whether ``owner`` holds
    it now (False too when the bot has no row)."""
    query = (
        _LEASES.update()
        .where(
            _L.instance_id == instance_id,
            sa.or_(
                _L.owner.is_(None),
                _L.owner == owner,
                _L.lease_until.is_(None),
                _L.lease_until <= now,
            ),
        )
        .values(owner=owner, lease_until=until)
    )
    async with db.write() as conn:
        result = await conn.execute(query)
    return bool(result.rowcount == 1)


async def release_lease(db: Database, instance_id: int, owner: str) -> bool:
    """Give up ``owner``'s lease of the bot, so another process takes it at once (not one
    another process has taken over meanwhile). Whether it was still ``owner``'s."""
    query = (
        _LEASES.update()
        .where(_L.instance_id == instance_id, _L.owner == owner)
        .values(owner=None, lease_until=None)
    )
    async with db.write() as conn:
        result = await conn.execute(query)
    return bool(result.rowcount == 1)


async def lease(db: Database, instance_id: int) -> tuple[str | None, float | None]:
    """Who holds the bot's lease and until when: ``(None, None)`` when nobody does."""
    query = sa.select(_L.owner, _L.lease_until).where(_L.instance_id == instance_id)
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    return (row.owner, row.lease_until) if row is not None else (None, None)


async def set_identity(db: Database, instance_id: int, bot_user_id: int, bot_name: str) -> None:
    """Who the bot is (``GET /me``)."""
    await _update(db, instance_id, bot_user_id=bot_user_id, bot_name=bot_name[:200])


async def set_webhook(db: Database, instance_id: int, url: str | None, secret: str | None) -> None:
    """The webhook subscription this server made for the bot (None, None: long polling)."""
    await _update(db, instance_id, webhook_url=url, webhook_secret=secret)


async def _update(db: Database, instance_id: int, **values: object) -> None:
    async with db.write() as conn:
        await conn.execute(
            t.maxbot_bots.update()
            .where(_B.instance_id == instance_id)
            .values(**values, updated_at=time.time())
        )
