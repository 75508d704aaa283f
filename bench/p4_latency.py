"""P4: downloadFile p50 latency with a 10M-row journal vs a 10k-row one.

Two data dirs built the same way (4 instances, 1000 chats, every message with a stored file),
two servers side by side; wrk with one connection replays 10,000 requests for uniformly random
journal rows of each (the same mix: same instances, chats, shapes), in alternating rounds. One
connection measures the service time of a request without queueing.
"""

from __future__ import annotations

import contextlib
import shutil

from bench import dbprobe, journal_data, profiling
from bench.common import (
    WORK,
    Options,
    WrkResult,
    log,
    median,
    post_script,
    run_wrk,
    start_maxgate,
)
from bench.p1_download import check_once
from bench.report import Result, Row

TARGET = 1.3


def run(options: Options) -> Result:
    """Measure P4."""
    small_rows, big_rows = (1_000, 100_000) if options.quick else (10_000, 10_000_000)
    result = Result("p4", "downloadFile latency, 10M vs 10k journal rows", quick=options.quick)
    folder = WORK / "p4"
    try:
        small = journal_data.build(folder / "small", small_rows)
        big = journal_data.build(folder / "big", big_rows)
        size_gb = sum(p.stat().st_size for p in big.data_dir.rglob("*") if p.is_file()) / 1024**3
        result.note(
            f"generating the {big_rows:,}-row journal (messages + files, SQLAlchemy Core "
            f"executemany, synchronous=OFF, indexes rebuilt after) took {big.seconds:.0f} s; "
            f"its data dir holds {size_gb:.1f} GiB"
        )
        count = min(10_000, small_rows)
        samples = {"small": small.sample(count), "big": big.sample(count)}
        scripts = {name: post_script(f"p4-{name}", sample) for name, sample in samples.items()}
        with contextlib.ExitStack() as stack:
            servers = {}
            for name, js in (("small", small), ("big", big)):
                servers[name] = start_maxgate(js.data_dir, name=f"maxgate-{name}")
                stack.callback(servers[name].stop)
            for name, server in servers.items():
                check_once(server.base_url, *(small if name == "small" else big).sample(1)[0])
                run_wrk(server.base_url, scripts[name], duration=2, connections=1, threads=1)
            found: dict[str, list[WrkResult]] = {"small": [], "big": []}
            for n in range(options.rounds):
                for name, server in servers.items():
                    found[name].append(
                        run_wrk(
                            server.base_url,
                            scripts[name],
                            duration=options.duration,
                            connections=1,
                            threads=1,
                        )
                    )
                log(
                    f"  p4 round {n + 1}: p50 {small_rows:,} rows "
                    f"{found['small'][-1].p50_ms:.2f} ms, {big_rows:,} rows "
                    f"{found['big'][-1].p50_ms:.2f} ms"
                )
            ours, theirs = found["big"], found["small"]
            figure = median([r.p50_ms for r in ours])
            baseline = median([r.p50_ms for r in theirs])
            ratio = figure / baseline
            failures = sum(r.non2xx + r.socket_errors for r in ours + theirs)
            result.rows.append(
                Row(
                    f"downloadFile p50, {big_rows:,} rows, 1 connection",
                    figure,
                    "ms",
                    f"same at {small_rows:,} rows",
                    baseline,
                    ratio,
                    f"≤ {TARGET}",
                    ratio <= TARGET and failures == 0,
                    f"rounds p50 {big_rows:,}: "
                    + ", ".join(f"{r.p50_ms:.2f}" for r in ours)
                    + f" ms, {small_rows:,}: "
                    + ", ".join(f"{r.p50_ms:.2f}" for r in theirs)
                    + f" ms; p99 {median([r.p99_ms for r in ours]):.2f} vs "
                    f"{median([r.p99_ms for r in theirs]):.2f} ms; req/s "
                    f"{median([r.rps for r in ours]):,.0f} vs "
                    f"{median([r.rps for r in theirs]):,.0f}"
                    f"; non-2xx + socket errors {failures}",
                )
            )
            if options.profile and ratio > TARGET:
                log("  p4: profiling the 10M-row server")
                result.profile = profiling.under_load(
                    servers["big"].worker_pid,
                    8,
                    "p4",
                    lambda: run_wrk(
                        servers["big"].base_url, scripts["big"], duration=10, connections=1
                    ),
                )
        raw = {
            name: dbprobe.lookup_latency(js.db_path, samples[name])
            for name, js in (("small", small), ("big", big))
        }
        result.rows.append(
            Row(
                f"the lookup alone (sqlite3 join, in-process) p50, {big_rows:,} rows (info)",
                raw["big"][0],
                "µs",
                f"same at {small_rows:,} rows",
                raw["small"][0],
                raw["big"][0] / raw["small"][0],
                "—",
                None,
                f"p99 {raw['big'][1]:.0f} µs vs {raw['small'][1]:.0f} µs: what the journal's "
                "size costs once the fixed per-request overhead (P1) is gone",
            )
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return result
