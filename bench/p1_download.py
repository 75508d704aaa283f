"""P1: downloadFile req/s on a 1M-row journal vs a bare Starlette JSON echo, same granian.

Both servers run side by side (one worker each, pinned to the server CPU); wrk (2 threads,
64 connections, on the other CPU) replays the same 10,000 downloadFile requests — random
journal rows over all instances and chats — against each, in alternating rounds.
"""

from __future__ import annotations

import contextlib
import shutil
import time

import httpx

from bench import dbprobe, journal_data, profiling
from bench.common import (
    WORK,
    Options,
    log,
    median,
    post_script,
    run_wrk,
    start_echo,
    start_maxgate,
)
from bench.report import Result, Row

TARGET = 0.50


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
    requests = js.sample(2_000 if options.quick else 10_000)
    script = post_script("p1", requests)
    try:
        with contextlib.ExitStack() as stack:
            server = start_maxgate(js.data_dir)
            stack.callback(server.stop)
            echo, echo_url = start_echo()
            stack.callback(echo.stop)
            check_once(server.base_url, *requests[0])
            for url in (echo_url, server.base_url):
                run_wrk(url, script, duration=2)  # warm-up
            ours, theirs = [], []
            for n in range(options.rounds):
                theirs.append(run_wrk(echo_url, script, duration=options.duration))
                ours.append(run_wrk(server.base_url, script, duration=options.duration))
                log(f"  p1 round {n + 1}: echo {theirs[-1].rps:,.0f} req/s, "
                    f"maxgate {ours[-1].rps:,.0f} req/s")  # fmt: skip
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
