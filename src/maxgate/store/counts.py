"""Counts for ``/metrics``: files by state and the depths of the two queues, read at once."""

from __future__ import annotations

import dataclasses

from maxgate.store import files, notifications, outbox
from maxgate.store import tables as t
from maxgate.store.database import Database


@dataclasses.dataclass(frozen=True, slots=True)
class Counts:
    """What the store holds now: files by state, and entries waiting in each queue."""

    files_by_state: dict[str, int]
    queue_depths: dict[str, int]  # "outbox" (not yet handed over), "notifications"


async def counts(db: Database) -> Counts:
    """Files by state and queue depths, in one read transaction."""
    async with db.read() as conn:
        by_state = await files.count_by_state(conn)
        depths = {"outbox": await outbox.count_all_pending(conn)}
        # The notifications table exists from migration 0003 on; counted when it is declared.
        if "notifications" in t.metadata.tables:
            depths["notifications"] = await notifications.count_all(conn)
    return Counts(by_state, depths)
