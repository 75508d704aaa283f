"""P7: files received from a MAX bot (fakemax → maxbot connector → stored + notified) vs curl.

The upstream is ``python -m maxgate.fakemax serve`` (one granian worker, files served by
Starlette's ``FileResponse`` from its data dir), pinned to the client CPU like nginx in P6; the
bench process (which plays the user through the fake's control API and watches maxgate's
database) is pinned there too. The fetcher under test runs on the server CPU: maxgate
(``--maxbot-updates polling``, ``--outbound-allow 127.0.0.0/8``, eager mirroring), which long
polls ``GET /updates``, journals each ``message_created`` (file row ``remote`` + its
``incomingMessageReceived`` notification in one transaction) and mirrors each file from the
signed ``/getfile`` URL the update carries into its blob store (sha256 while streaming, fsync,
rename, then the row turns ``stored``). The baseline is one ``curl`` on the same CPU fetching
the same files from the same fake (the signed URLs the control API answered with when the
files were first sent; one curl process for a set, ``-K`` with one ``url``/``output`` pair per
file, into the same file system).

Two mixes, each its own row: a few large files (3 x 256 MiB; 3 x 16 MiB with ``--quick``) and
many small ones (200 x 100 KiB; 40 with ``--quick``), every file distinct random bytes. A set is
timed from the first control ``POST /_control/messages`` (one message per file, posted back to
back) until every file of the set is ``stored`` and every notification of the set is queued.

How "stored + notified" is observed: by reading maxgate's SQLite database (read-only, WAL, one
connection, every 5 ms) for the set's file rows in state ``stored`` and its
``incomingMessageReceived`` rows. maxgate queues the notification in the transaction that
journals the message — before the bytes are fetched — so the last event of a file is its row
turning ``stored``; both are counted anyway. ``receiveNotification`` was not used: it would be
HTTP requests served by the worker under test, on its CPU, in the middle of the measurement,
and its answer does not tell whether the bytes are stored yet. A 5 ms read of a small SQLite
table from the other CPU costs the worker nothing (WAL readers do not block the writer).

The maxgate time therefore includes what the curl time does not: posting the messages to the
fake (its control API, on the upstream's CPU), the long poll's wake-up and the journal write.
The row's details give the posting time alone and, from the rows' own timestamps, the latency
from the first POST to the first notification (poll + journal) and each set's mirroring span.

Five rounds (one with ``--quick``) alternate: curl first in odd rounds, maxgate first in even
ones. Between measurements dirty pages are flushed (sync(2)) and maxgate's blobs are deleted
(the same bytes come again in the next round; a known content key would spare the rename).
Informational rows: a second maxgate whose blob store has ``?fsync=false`` (what durability
costs per file), and sha256 alone over one large file on the fetcher's CPU, as in P6.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bench import ioprobe, profiling
from bench.common import (
    CLIENT_CPU,
    MB,
    SERVER_CPU,
    VENV_BIN,
    WORK,
    Maxgate,
    Options,
    Proc,
    clean_env,
    curl,
    free_port,
    log,
    median,
    start_maxgate,
    wait_ready,
)
from bench.p6_mirror import drop_blobs, settle
from bench.report import Result, Row

TARGET = 0.70
KIB = 1024
POLL = 0.005  # seconds between looks at maxgate's database
ROUNDS = 5  # not the usual 3: the shared host's noise moves single large sets by 2x
TOKENS = ("p7-bench-bot-main", "p7-bench-bot-nosync")


class Fake:
    """The fake MAX Bot API (control API client on one kept connection)."""

    def __init__(self, folder: Path) -> None:
        port = free_port()
        argv = [str(VENV_BIN / "python"), "-m", "maxgate.fakemax", "serve", "--port", str(port)]
        argv += ["--tokens", ",".join(TOKENS), "--data-dir", str(folder)]
        self.proc = Proc(f"fakemax-{port}", argv, cpu=CLIENT_CPU)
        self.url = f"http://127.0.0.1:{port}"
        wait_ready(self.proc, self.url + "/_control/health", port)
        self.http = httpx.Client(base_url=self.url, timeout=600)

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.http.request(method, "/_control" + path, **kwargs)
        if answer.status_code != 200:
            raise RuntimeError(f"fakemax {method} {path}: {answer.status_code} {answer.text}")
        return answer.json()

    def bot_ids(self) -> dict[str, int]:
        """Each token's bot id."""
        return {b["token"]: b["bot_id"] for b in self.control("GET", "/bots")["bots"]}

    def add_file(self, name: str, path: Path) -> int:
        """Upload a file (streamed from disk) through the control API; its ``file_id``."""
        with path.open("rb") as body:
            found = self.control(
                "POST", "/files", params={"type": "file", "filename": name}, content=body
            )
        return int(found["file_id"])

    def send_file(self, user_id: int, bot_id: int, file_id: int) -> str:
        """The user sends the bot a message with the file; the signed URL in the update."""
        body = {
            "user_id": user_id,
            "bot_id": bot_id,
            "attachments": [{"type": "file", "file_id": file_id}],
        }
        message = self.control("POST", "/messages", json=body)["message"]
        return str(message["body"]["attachments"][0]["payload"]["url"])

    def stop(self) -> None:
        self.http.close()
        self.proc.stop()


class Watcher:
    """Reads maxgate's database: how many files of a set are stored and notified."""

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(
            f"file:{db}?mode=ro", uri=True, timeout=30, isolation_level=None
        )

    def counts(self, since: float) -> tuple[int, int]:
        """(files stored, incomingMessageReceived queued) created at or after ``since``."""
        row = self.conn.execute(
            "SELECT (SELECT count(*) FROM files WHERE state = 'stored' AND created_at >= ?),"
            " (SELECT count(*) FROM notifications"
            "  WHERE type_webhook = 'incomingMessageReceived' AND created_at >= ?)",
            (since, since),
        ).fetchone()
        return int(row[0]), int(row[1])

    def spans(self, since: float) -> dict[str, float]:
        """Timestamps of a set: first notification, last notification, last file stored."""
        notified = self.conn.execute(
            "SELECT min(created_at), max(created_at) FROM notifications"
            " WHERE type_webhook = 'incomingMessageReceived' AND created_at >= ?",
            (since,),
        ).fetchone()
        stored = self.conn.execute(
            "SELECT min(stored_at), max(stored_at), sum(size) FROM files"
            " WHERE state = 'stored' AND created_at >= ?",
            (since,),
        ).fetchone()
        return {
            "first_notified": notified[0],
            "last_notified": notified[1],
            "first_stored": stored[0],
            "last_stored": stored[1],
            "bytes": stored[2] or 0,
        }

    def polling(self) -> bool:
        """Whether the bot's long poll has a marker (a first poll without one gets only the
        last update, so nothing may be sent before)."""
        row = self.conn.execute("SELECT marker FROM maxbot_bots").fetchone()
        return row is not None and row[0] is not None

    def close(self) -> None:
        self.conn.close()


class Side:
    """One maxgate serving one bot of the fake."""

    def __init__(self, name: str, server: Maxgate, user_id: int, bot_id: int) -> None:
        self.name = name
        self.server = server
        self.user_id = user_id
        self.bot_id = bot_id
        self.watch = Watcher(server.db_path)


def create_bot_instance(data_dir: Path, token: str, fake_url: str) -> dict[str, Any]:
    """``maxgate instance create --upstream maxbot --bot-token-file … --json`` (the CLI checks
    the token with the fake's ``GET /me``, so it gets the fake's address)."""
    token_file = data_dir.parent / f"{data_dir.name}.token"
    token_file.write_text(token)
    env = clean_env(MAXGATE_MAXBOT_BASE_URL=fake_url, MAXGATE_OUTBOUND_ALLOW="127.0.0.0/8")
    argv = [str(VENV_BIN / "maxgate"), "instance", "create", "--upstream", "maxbot"]
    argv += ["--bot-token-file", str(token_file), "--json", "--data-dir", str(data_dir)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"maxgate instance create failed: {done.stderr}")
    info: dict[str, Any] = json.loads(done.stdout)
    return info


def mirror_set(fake: Fake, side: Side, file_ids: list[int], timeout: float = 900) -> dict[str, Any]:
    """Post one message per file; wait until every file is stored and notified."""
    since = time.time() - 0.001
    started = time.perf_counter()
    for file_id in file_ids:
        fake.send_file(side.user_id, side.bot_id, file_id)
    posted = time.perf_counter() - started
    want = len(file_ids)
    deadline = started + timeout
    while True:
        stored, notified = side.watch.counts(since)
        if stored >= want and notified >= want:
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{side.name}: {stored}/{want} stored, {notified} notified")
        time.sleep(POLL)
    seconds = time.perf_counter() - started
    spans = side.watch.spans(since)
    wall0 = since + 0.001
    drop_blobs(side.server.data_dir)
    return {
        "seconds": seconds,
        "posted": posted,
        "first_notified": spans["first_notified"] - wall0,
        "last_notified": spans["last_notified"] - wall0,
        "mirror_span": spans["last_stored"] - spans["first_notified"],
        "bytes": spans["bytes"],
    }


def curl_set(urls: list[str], folder: Path) -> float:
    """One curl (on the server CPU) fetching every URL of a set into files; its seconds."""
    config = folder / "curl.cfg"
    outputs = [folder / f"curl-{n}.bin" for n in range(len(urls))]
    config.write_text(
        "".join(f'url = "{u}"\noutput = "{o}"\n' for u, o in zip(urls, outputs, strict=True))
    )
    started = time.perf_counter()
    curl("-K", str(config), cpu=SERVER_CPU)
    seconds = time.perf_counter() - started
    for path in outputs:
        path.unlink()
    return seconds


def write_files(folder: Path, prefix: str, count: int, size: int) -> list[Path]:
    """``count`` files of ``size`` distinct random bytes."""
    rng = random.Random(f"p7-{prefix}")
    paths = []
    for n in range(count):
        path = folder / f"{prefix}-{n}.bin"
        with path.open("wb") as out:
            left = size
            while left:
                piece = min(left, 16 * MB)
                out.write(rng.randbytes(piece))
                left -= piece
        paths.append(path)
    return paths


def start_side(
    name: str, folder: Path, fake: Fake, token: str, user_id: int, bot_id: int, **flags: str
) -> Side:
    """A maxgate polling one bot of the fake; returns once it answers /health."""
    data_dir = folder / name
    data_dir.mkdir(parents=True)
    create_bot_instance(data_dir, token, fake.url)
    settings = {
        "outbound_allow": "127.0.0.0/8",
        "maxbot_base_url": fake.url,
        "maxbot_updates": "polling",
        **flags,
    }
    server = start_maxgate(data_dir, name=f"maxgate-{name}", **settings)
    side = Side(name, server, user_id, bot_id)
    deadline = time.monotonic() + 60
    while not side.watch.polling():
        if time.monotonic() > deadline or not server.proc.alive():
            server.stop()
            raise RuntimeError(f"maxgate {name} did not start polling the fake")
        time.sleep(0.05)
    return side


def fmt(values: list[float], unit: str = "s", scale: float = 1.0) -> str:
    return ", ".join(f"{v * scale:.2f}" for v in values) + f" {unit}"


def run(options: Options) -> Result:
    """Measure P7."""
    large_n, large_size = 3, (16 if options.quick else 256) * MB
    small_n, small_size = (40 if options.quick else 200), 100 * KIB
    rounds = 1 if options.quick else ROUNDS
    result = Result("p7", "received files, fakemax → maxbot connector → stored + notified, vs curl")
    result.quick = options.quick
    folder = WORK / "p7"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "src").mkdir(parents=True)
    (folder / "curl").mkdir()
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, ioprobe.cpu_set(CLIENT_CPU))  # with the upstream: the user's side
    try:
        with contextlib.ExitStack() as stack:
            log(f"  p7: writing {large_n} x {large_size // MB} MiB + {small_n} x 100 KiB")
            large_paths = write_files(folder / "src", "large", large_n, large_size)
            small_paths = write_files(folder / "src", "small", small_n, small_size)
            fake = Fake(folder / "fake")
            stack.callback(fake.stop)
            bots = fake.bot_ids()
            user_id = fake.control("POST", "/users", json={"first_name": "Bench"})["user_id"]
            for token in TOKENS:
                fake.control("POST", f"/users/{user_id}/start", json={"bot_id": bots[token]})
            large_ids = [fake.add_file(p.name, p) for p in large_paths]
            small_ids = [fake.add_file(p.name, p) for p in small_paths]
            main = start_side("data", folder, fake, TOKENS[0], user_id, bots[TOKENS[0]])
            stack.callback(main.server.stop)
            stack.callback(main.watch.close)
            nosync_url = f"{(folder / 'nosync' / 'blobs').as_uri()}?fsync=false"
            nosync = start_side(
                "nosync", folder, fake, TOKENS[1], user_id, bots[TOKENS[1]], blob_url=nosync_url
            )
            stack.callback(nosync.server.stop)
            stack.callback(nosync.watch.close)
            sides = (main, nosync)

            # Warm-up and check: the first sets also give curl its signed URLs.
            log("  p7: warm-up (the bots' first polls, a check of the stored bytes)")
            urls: dict[str, list[str]] = {"large": [], "small": []}
            since = time.time() - 0.001
            for kind, ids in (("large", large_ids), ("small", small_ids)):
                for file_id in ids:
                    urls[kind].append(fake.send_file(user_id, bots[TOKENS[0]], file_id))
            deadline = time.monotonic() + 600
            while main.watch.counts(since) < (large_n + small_n,) * 2:
                if time.monotonic() > deadline or not main.server.proc.alive():
                    raise RuntimeError(f"warm-up: {main.watch.counts(since)} stored/notified")
                time.sleep(0.05)
            blobs = [
                p for p in (main.server.data_dir / "blobs" / "blobs").rglob("*") if p.is_file()
            ]
            if sorted(p.stat().st_size for p in blobs) != sorted(
                [small_size] * small_n + [large_size] * large_n
            ):
                raise RuntimeError("the mirrored blobs do not have the sizes sent")
            drop_blobs(main.server.data_dir)
            for ids in (large_ids[:1], small_ids[:5]):
                mirror_set(fake, nosync, ids)  # the second bot's first poll and connection
            curl_set(urls["large"][:1], folder / "curl")  # the fake's page cache
            sets = {"large": large_ids, "small": small_ids}
            times: dict[str, list[float]] = {}
            details: dict[str, list[dict[str, Any]]] = {}
            for n in range(rounds):
                order = ("curl", "maxgate") if n % 2 == 0 else ("maxgate", "curl")
                for kind in ("large", "small"):
                    for who in order:
                        settle()
                        if who == "curl":
                            times.setdefault(f"curl-{kind}", []).append(
                                curl_set(urls[kind], folder / "curl")
                            )
                            continue
                        for side in sides:
                            settle()
                            found = mirror_set(fake, side, sets[kind])
                            times.setdefault(f"{side.name}-{kind}", []).append(found["seconds"])
                            details.setdefault(f"{side.name}-{kind}", []).append(found)
                times.setdefault("sha256", []).append(ioprobe.sha256_seconds(large_paths[0]))
                log(
                    f"  p7 round {n + 1}: large curl {times['curl-large'][-1]:.2f} s, maxgate "
                    f"{times['data-large'][-1]:.2f} s (fsync=false "
                    f"{times['nosync-large'][-1]:.2f} s); small curl "
                    f"{times['curl-small'][-1]:.2f} s, maxgate {times['data-small'][-1]:.2f} s "
                    f"(posting {details['data-small'][-1]['posted']:.2f} s; fsync=false "
                    f"{times['nosync-small'][-1]:.2f} s); sha256 of one large file "
                    f"{times['sha256'][-1]:.2f} s"
                )
            stats = fake.control("GET", "/stats")["tokens"]
            limited = sum(int(s.get("limited", 0)) for s in stats.values())
            result.note(
                f"fakemax answered 429 to {limited} Bot API calls "
                f"({sum(int(s.get('requests', 0)) for s in stats.values())} calls in all)"
            )
            result.note(
                "eager mirroring fetches mirror_concurrency (default 4) files at once, takes new "
                "arrivals as slots free up, records the rows of files fetched meanwhile in one "
                "transaction (a group commit, no re-read), creates each temp file in the sink's "
                "thread; webhook dispatch skips instances found without a webhookUrl"
            )
            result.note(
                "what remains for the small set: one core runs both the intake (long poll + "
                "journal: 0.8 s for 200 messages when files are fetched one at a time) and each "
                "file's fetch (a new TCP connection, URL parsing and an instance lookup per file) "
                "on one loop; 'last notification queued' shows the intake ending just before the "
                "last file is stored"
            )
            missed = median(times["curl-large"]) / median(times["data-large"]) < TARGET or (
                median(times["curl-small"]) / median(times["data-small"]) < TARGET
            )
            if options.profile and missed:
                profile(result, fake, main, sets, urls, folder)
        sizes = {"large": large_n * large_size, "small": small_n * small_size}
        rate = {
            k: sizes[k.rsplit("-", 1)[1]] / MB / median(v)
            for k, v in times.items()
            if k != "sha256"
        }
        names = {
            "large": f"{large_n} x {large_size // MB} MiB",
            "small": f"{small_n} x 100 KiB",
        }
        for kind in ("large", "small"):
            ratio = rate[f"data-{kind}"] / rate[f"curl-{kind}"]
            found = details[f"data-{kind}"]
            count = large_n if kind == "large" else small_n
            first = [d["first_notified"] for d in found]
            result.rows.append(
                Row(
                    f"{names[kind]} files, control POST → stored + notified",
                    rate[f"data-{kind}"],
                    "MiB/s",
                    "curl -K (same URLs, one process)",
                    rate[f"curl-{kind}"],
                    ratio,
                    f"≥ {TARGET:.2f}",
                    ratio >= TARGET,
                    f"rounds maxgate {fmt(times[f'data-{kind}'])}; curl "
                    f"{fmt(times[f'curl-{kind}'])}; {count / median(times[f'data-{kind}']):,.0f} "
                    f"files/s vs {count / median(times[f'curl-{kind}']):,.0f}; posting the "
                    f"{count} messages alone {fmt([d['posted'] for d in found])}; first POST → "
                    f"first notification queued {fmt(first, 'ms', 1000)}; first POST → last "
                    f"notification queued (the intake alone) "
                    f"{fmt([d['last_notified'] for d in found])}; "
                    f"first notification → last file stored "
                    f"{fmt([d['mirror_span'] for d in found])}",
                )
            )
        for kind in ("large", "small"):
            result.rows.append(
                Row(
                    f"same, {names[kind]}, blob store ?fsync=false (info)",
                    rate[f"nosync-{kind}"],
                    "MiB/s",
                    "curl -K",
                    rate[f"curl-{kind}"],
                    rate[f"nosync-{kind}"] / rate[f"curl-{kind}"],
                    "—",
                    None,
                    f"rounds {fmt(times[f'nosync-{kind}'])}",
                )
            )
        sha = median(times["sha256"])
        result.rows.append(
            Row(
                f"sha256 alone over one {large_size // MB} MiB file, hashlib on the fetcher's "
                "CPU (info)",
                large_size / MB / sha,
                "MiB/s",
                "",
                None,
                None,
                "—",
                None,
                f"rounds {fmt(times['sha256'])}; {ioprobe_sha_note()}; ceiling of the large "
                f"ratio when hashing on the fetcher's core: "
                f"{median(times['curl-large']) / (sha * large_n):.2f}",
            )
        )
    finally:
        os.sched_setaffinity(0, affinity)
        shutil.rmtree(folder, ignore_errors=True)
    return result


def ioprobe_sha_note() -> str:
    known = ioprobe.has_sha_extensions()
    if known is None:
        return "SHA extensions unknown"
    return "this CPU has SHA extensions (sha_ni)" if known else "this CPU has no SHA extensions"


def profile(
    result: Result,
    fake: Fake,
    side: Side,
    sets: dict[str, list[int]],
    urls: dict[str, list[str]],
    folder: Path,
) -> None:
    """py-spy on the worker during a large and a small set; the fetch path's pieces timed
    alone against the fake (bench/ioprobe.py)."""
    for kind in ("large", "small"):
        settle()
        started = time.perf_counter()
        mirror_set(fake, side, sets[kind])
        seconds = max(1, int((time.perf_counter() - started) * 0.8))
        for gil in (True, False):
            settle()
            log(f"  p7: profiling maxgate on the {kind} set ({seconds} s, gil={gil})")
            found = profiling.under_load(
                side.server.worker_pid,
                seconds,
                f"p7-{kind}-{'gil' if gil else 'all'}",
                lambda kind=kind: mirror_set(fake, side, sets[kind]),
                gil=gil,
            )
            result.profile += [f"{kind} set:", *found, ""]
    log("  p7: timing the pieces of the fetch-and-store path against the fake")
    settle()
    result.profile = [*ioprobe.breakdown(urls["large"][0], folder), "", *result.profile]
