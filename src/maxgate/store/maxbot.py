"""The MAX Bot API connector's own rows: each ``maxbot`` instance's bot token, who the bot is,
the marker its long poll has reached, and its webhook subscription.

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


async def set_marker(db: Database, instance_id: int, marker: int) -> None:
    """Where the bot's long poll has got to: every update before ``marker`` is journaled."""
    await _update(db, instance_id, marker=marker)


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
