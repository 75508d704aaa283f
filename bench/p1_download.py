"""P1: downloadFile req/s on a 1M-row journal vs a bare Starlette JSON echo, same granian.

Both servers run side by side (one worker each, pinned to the server CPU); wrk (2 threads,
64 connections, on the other CPU) replays the same 10,000 downloadFile requests — random
journal rows over all instances and chats — against each, in alternating rounds.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from bench import dbprobe, journal_data, profiling
from bench.common import (
    VENV_BIN,
    WORK,
    Options,
    before_tree,
    log,
    median,
    post_script,
    run_wrk,
    source_env,
    start_echo,
    start_maxgate,
)
from bench.report import Result, Row

TARGET = 0.50
BEFORE = os.environ.get("MAXGATE_BENCH_P1_BEFORE", "121c480")
"""The commit the architecture issue (10) started from; it asks that P1 stay within 10 % of
what that code did. Its maxgate is measured in the same run, on its own journal of the same
size, between the echo's and this maxgate's rounds (``MAXGATE_BENCH_P1_BEFORE=""``: skip)."""
BEFORE_TARGET = 0.90

_BUILD = (
    "import json, sys; from pathlib import Path; from bench import journal_data as j; "
    "s = j.build(Path(sys.argv[1]), int(sys.argv[2])); "
    "print(json.dumps(s.sample(int(sys.argv[3]))))"
)


def build_before(tree: Path, folder: Path, rows: int, count: int) -> list[tuple[str, str]]:
    """A journal built by the code of ``tree`` (its own schema), and requests sampled from it."""
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-c", _BUILD, str(folder), str(rows), str(count)],
        cwd=tree,
        env=source_env(tree),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building the journal of {tree.name} failed: {done.stderr[-2000:]}")
    return [(path, body) for path, body in json.loads(done.stdout.splitlines()[-1])]


def check_once(base_url: str, path: str, body: str) -> None:
    """One request by hand: a 200 with a working link (not a benchmark of an error path)."""
    answer = httpx.post(base_url + path, content=body, timeout=30)
    if answer.status_code != 200:
        raise RuntimeError(f"downloadFile answered {answer.status_code}: {answer.text}")
    link = answer.json()["downloadUrl"]
    if httpx.get(link, timeout=30).status_code != 200:
        raise RuntimeError(f"the downloadUrl {link} does not work")


def run(options: Options) -> Result:
    """Measure P1."""
    rows = 20_000 if options.quick else 1_000_000
    result = Result(
        "p1", "downloadFile throughput vs a bare Starlette JSON echo", quick=options.quick
    )
    folder = WORK / "p1"
    js = journal_data.build(folder / "data", rows)
    result.note(
        f"journal: {rows:,} messages + {rows:,} stored files, generated in {js.seconds:.0f} s"
    )
    count = 2_000 if options.quick else 10_000
    requests = js.sample(count)
    script = post_script("p1", requests)
    before = BEFORE if not options.quick else ""
    try:
        with contextlib.ExitStack() as stack:
            server = start_maxgate(js.data_dir)
            stack.callback(server.stop)
            echo, echo_url = start_echo()
            stack.callback(echo.stop)
            check_once(server.base_url, *requests[0])
            targets = [(echo_url, script), (server.base_url, script)]
            if before:
                tree = before_tree(before)
                log(f"  p1: a journal of {rows:,} rows for maxgate at {before}")
                before_requests = build_before(tree, folder / "before", rows, count)
                old = start_maxgate(folder / "before", "before", source=tree)
                stack.callback(old.stop)
                check_once(old.base_url, *before_requests[0])
                targets.append((old.base_url, post_script("p1-before", before_requests)))
            for url, lua in targets:
                run_wrk(url, lua, duration=2)  # warm-up
            ours, theirs, olds = [], [], []
            for n in range(options.rounds):
                theirs.append(run_wrk(echo_url, script, duration=options.duration))
                ours.append(run_wrk(server.base_url, script, duration=options.duration))
                if before:
                    olds.append(run_wrk(*targets[2], duration=options.duration))
                log(f"  p1 round {n + 1}: echo {theirs[-1].rps:,.0f} req/s, "
                    f"maxgate {ours[-1].rps:,.0f} req/s"
                    + (f", before {olds[-1].rps:,.0f} req/s" if olds else ""))  # fmt: skip
            figure = median([r.rps for r in ours])
            baseline = median([r.rps for r in theirs])
            ratio = figure / baseline
            failures = sum(r.non2xx + r.socket_errors for r in ours)
            result.rows.append(
                Row(
                    f"downloadFile req/s, {rows:,} journal rows, 64 connections",
                    figure,
                    "req/s",
                    "Starlette JSON echo",
                    baseline,
                    ratio,
                    f"≥ {TARGET:.2f}",
                    ratio >= TARGET and failures == 0,
                    "rounds maxgate "
                    + ", ".join(f"{r.rps:,.0f}" for r in ours)
                    + "; echo "
                    + ", ".join(f"{r.rps:,.0f}" for r in theirs)
                    + f"; p50 latency maxgate {median([r.p50_ms for r in ours]):.1f} ms, "
                    f"echo {median([r.p50_ms for r in theirs]):.1f} ms; "
                    f"non-2xx {sum(r.non2xx for r in ours)}, "
                    f"socket errors {sum(r.socket_errors for r in ours)}",
                )
            )
            if olds:
                old_figure = median([r.rps for r in olds])
                kept = figure / old_figure
                result.rows.append(
                    Row(
                        f"downloadFile req/s, this maxgate vs maxgate at {before} (before "
                        "issue 10), same journal size, same run",
                        figure,
                        "req/s",
                        f"maxgate at {before}",
                        old_figure,
                        kept,
                        f"≥ {BEFORE_TARGET:.2f}",
                        kept >= BEFORE_TARGET and failures == 0,
                        "rounds before "
                        + ", ".join(f"{r.rps:,.0f}" for r in olds)
                        + f"; echo ratio of the code before {old_figure / baseline:.2f}, "
                        f"of this code {ratio:.2f}",
                    )
                )
            if options.profile and ratio < TARGET:
                log("  p1: profiling maxgate under the same load")
                result.profile = profiling.under_load(
                    server.worker_pid,
                    8,
                    "p1",
                    lambda: run_wrk(server.base_url, script, duration=10),
                )
        if options.profile and result.profile:
            log("  p1: timing the steps of downloadFile in-process")
            result.profile = [*dbprobe.breakdown(js.data_dir, requests[:1000]), "", *result.profile]
    finally:
        time.sleep(0.5)
        shutil.rmtree(folder, ignore_errors=True)
    return result
