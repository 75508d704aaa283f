"""Journal data sets for P1 and P4: real instances, one real blob, N message + file rows.

Instances come from ``maxgate instance create --json`` (real tokens). One blob is written through
maxgate's own BlobStore; every file row points at its sha256 (``state='stored'``). Messages and
files are bulk-inserted with SQLAlchemy Core on ``maxgate.store.tables`` (executemany in large
transactions, ``synchronous=OFF`` and no rollback journal while generating; WAL again after).
Rows are spread round-robin over ``CHATS`` chats of the instances; ids look like maxgate's own
(16-digit idMessage, 22-character URL-safe file ids).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import queue
import random
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from bench.common import create_instance, log
from maxgate.blobs import BlobStore
from maxgate.store import tables as t

CHATS = 1000
INSTANCES = 4
BATCH = 100_000
BASE_ID = 1_730_000_000_000_000  # idMessage = milliseconds + 3 digits, as ids.new_message_id
BASE_TS = 1_730_000_000
BLOB_SIZE = 100 * 1024


@dataclasses.dataclass
class JournalSet:
    """A data dir whose journal holds ``rows`` messages, each with a stored file."""

    data_dir: Path
    instances: list[dict[str, Any]]
    rows: int
    seconds: float  # time the bulk insert took

    @property
    def db_path(self) -> Path:
        """The SQLite file."""
        return self.data_dir / "maxgate.db"

    def sample(self, count: int, seed: int = 1) -> list[tuple[str, str]]:
        """``count`` (path, body) downloadFile requests for random journal rows (uniform)."""
        tokens = {i["idInstance"]: i["apiTokenInstance"] for i in self.instances}
        rng = random.Random(seed)
        wanted = rng.sample(range(1, self.rows + 1), min(count, self.rows))
        engine = sa.create_engine(f"sqlite:///{self.db_path}")
        found: list[tuple[str, str]] = []
        with engine.connect() as conn:
            for start in range(0, len(wanted), 900):
                chunk = wanted[start : start + 900]
                query = sa.select(
                    t.messages.c.instance_id, t.messages.c.chat_id, t.messages.c.id_message
                ).where(t.messages.c.id.in_(chunk))
                for instance_id, chat_id, id_message in conn.execute(query):
                    path = f"/waInstance{instance_id}/downloadFile/{tokens[instance_id]}"
                    body = f'{{"chatId":"{chat_id}","idMessage":"{id_message}"}}'
                    found.append((path, body))
        engine.dispose()
        rng.shuffle(found)
        return found


def _chat_ids() -> list[str]:
    """1000 chats: nine personal chats (8 digits) for every group (negative, 14 digits)."""
    return [
        f"-{10_000_000_000_000 + k}" if k % 10 == 9 else str(70_000_000 + k * 7)
        for k in range(CHATS)
    ]


def _file_ids(count: int) -> list[str]:
    raw = os.urandom(16 * count)
    return [
        base64.urlsafe_b64encode(raw[i : i + 16]).rstrip(b"=").decode()
        for i in range(0, 16 * count, 16)
    ]


# Rows are built as tuples in this column order (no per-row dicts: 10M rows must be quick);
# columns added to the tables later take their defaults.
FILE_COLUMNS = [
    "id", "instance_id", "state", "sha256", "size", "file_name", "mime_type",
    "upstream_ref", "thumbnail", "created_at", "stored_at", "expires_at",
]  # fmt: skip
MESSAGE_COLUMNS = [
    "id", "instance_id", "chat_id", "id_message", "direction", "type_message", "timestamp",
    "sender_id", "sender_name", "text", "caption", "file_id", "status", "status_description",
    "send_by_api", "quoted_id", "upstream_id",
]  # fmt: skip
KINDS = ("imageMessage", "documentMessage", "videoMessage")
Batch = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def _insert(table: sa.Table, columns: list[str]) -> str:
    """The table's INSERT for ``columns`` (other columns take their DDL defaults), as SQL whose
    positional parameters are in exactly that order."""
    compiled = table.insert().compile(dialect=sqlite.dialect(), column_keys=columns)
    if list(compiled.positiontup or []) != columns:
        raise RuntimeError(
            f"maxgate.store.tables.{table.name} changed ({compiled.positiontup}): "
            "update bench/journal_data.py"
        )
    return str(compiled)


def _batch(first: int, last: int, instance_ids: list[int], sha256: str) -> Batch:
    """Rows ``first..last-1`` (message row id = i + 1): message i lives in chat i % CHATS."""
    chats = _chat_ids()
    owners = [instance_ids[k % len(instance_ids)] for k in range(CHATS)]
    expires = time.time() + 15 * 86400
    file_ids = _file_ids(last - first)
    files: list[tuple[Any, ...]] = []
    messages: list[tuple[Any, ...]] = []
    for n, i in enumerate(range(first, last)):
        k = i % CHATS
        owner, chat, file_id = owners[k], chats[k], file_ids[n]
        incoming = i % 2 == 0
        ts = BASE_TS + i // 20
        files.append(
            (file_id, owner, "stored", sha256, BLOB_SIZE, f"file_{i}.pdf", "application/pdf",
             f"{i:032x}" if incoming else None, "", float(ts), float(ts), expires)
        )  # fmt: skip
        messages.append(
            (i + 1, owner, chat, str(BASE_ID + i), "incoming" if incoming else "outgoing",
             KINDS[i % 3], ts, chat if incoming else "", "Contact" if incoming else "", None, "",
             file_id, None if incoming else "read", None, not incoming, None, None)
        )  # fmt: skip
    return files, messages


def _produce(
    start: int, stop: int, instance_ids: list[int], sha256: str, out: queue.Queue[Batch | None]
) -> None:
    """Generate batches in a thread, so Python builds rows while SQLite inserts the last ones."""
    try:
        for first in range(start, stop, BATCH):
            out.put(_batch(first, min(first + BATCH, stop), instance_ids, sha256))
    finally:
        out.put(None)


def _bulk_engine(db_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{db_path}")

    @sa.event.listens_for(engine, "connect")
    def _fast(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=OFF",
            "synchronous=OFF",
            "cache_size=-1048576",
            "temp_store=MEMORY",
            "locking_mode=EXCLUSIVE",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return engine


def _insert_chats(conn: sa.Connection, instance_ids: list[int]) -> None:
    chats = _chat_ids()
    conn.execute(
        sa.insert(t.chats).prefix_with("OR IGNORE"),
        [
            {
                "instance_id": instance_ids[k % len(instance_ids)],
                "chat_id": chats[k],
                "type": "group" if chats[k].startswith("-") else "user",
                "name": f"Chat {k}",
                "phone": 0 if chats[k].startswith("-") else 79_000_000_000 + k,
                "last_at": float(BASE_TS),
            }
            for k in range(CHATS)
        ],
    )


def fill(js: JournalSet, rows: int, sha256: str) -> float:
    """Grow the journal to ``rows`` messages (server stopped); returns the seconds it took.

    The secondary indexes of ``files`` and ``messages`` are dropped during the load and
    re-created afterwards from their own DDL (a sorted build is much faster than 10M updates).
    """
    if rows <= js.rows:
        return 0.0
    started = time.perf_counter()
    instance_ids = [int(i["idInstance"]) for i in js.instances]
    insert_files = _insert(t.files, FILE_COLUMNS)
    insert_messages = _insert(t.messages, MESSAGE_COLUMNS)
    engine = _bulk_engine(js.db_path)
    with engine.begin() as conn:
        _insert_chats(conn, instance_ids)
        indexes = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            " AND tbl_name IN ('files', 'messages')"
        ).all()
        for name, _sql in indexes:
            conn.exec_driver_sql(f"DROP INDEX {name}")
    batches: queue.Queue[Batch | None] = queue.Queue(maxsize=2)
    producer = threading.Thread(
        target=_produce, args=(js.rows, rows, instance_ids, sha256, batches), daemon=True
    )
    producer.start()
    done = js.rows
    while (batch := batches.get()) is not None:
        files, messages = batch
        with engine.begin() as conn:
            conn.exec_driver_sql(insert_files, files)
            conn.exec_driver_sql(insert_messages, messages)
        done += len(messages)
        if done % 1_000_000 == 0:
            log(f"  journal: {done:,} rows ({time.perf_counter() - started:.0f} s)")
    producer.join()
    if done != rows:
        raise RuntimeError(f"journal generation stopped at {done} of {rows} rows")
    with engine.begin() as conn:
        for _name, sql in indexes:
            conn.exec_driver_sql(sql)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    engine.dispose()
    js.rows = rows
    seconds = time.perf_counter() - started
    log(f"  journal: {rows:,} rows with indexes in {seconds:.0f} s")
    return seconds


async def _write_blob(data_dir: Path, data: bytes) -> tuple[str, int, str]:
    store = BlobStore((data_dir / "blobs").as_uri())

    async def chunks() -> Any:
        yield data

    blob = await store.write(chunks())
    return blob.sha256, blob.size, blob.key


def build(data_dir: Path, rows: int) -> JournalSet:
    """A fresh data dir: INSTANCES instances (CLI), one real blob, ``rows`` journal rows."""
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    instances = [create_instance(data_dir, f"bench-{n}") for n in range(INSTANCES)]
    sha256, size, key = asyncio.run(_write_blob(data_dir, os.urandom(BLOB_SIZE)))
    engine = sa.create_engine(f"sqlite:///{data_dir / 'maxgate.db'}")
    with engine.begin() as conn:
        conn.execute(
            t.blobs.insert().values(sha256=sha256, size=size, key=key, created_at=time.time())
        )
    engine.dispose()
    js = JournalSet(data_dir, instances, 0, 0.0)
    log(f"  journal: filling {rows:,} rows into {data_dir}")
    js.seconds = fill(js, rows, sha256)
    return js
