"""P2: serving files through signed links vs nginx ``sendfile`` serving the very same files.

A 200 MB and a 100 KB file are stored with uploadFile; nginx's root is maxgate's blob store, so
both servers send the same inode from the same page cache. Throughput of the big file with 4
connections, req/s of the small one with 16 connections (maxgate's default per-client limit of
concurrent link downloads is 16), alternating rounds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import httpx

from bench import profiling
from bench.common import (
    MB,
    WORK,
    Maxgate,
    Options,
    WrkResult,
    create_instance,
    log,
    median,
    run_wrk,
    start_granian,
    start_maxgate,
    start_nginx,
    status_counts,
    wrk_script,
)
from bench.report import Result, Row

BIG_TARGET = 0.90
SMALL_TARGET = 0.20


def write_random(path: Path, size: int) -> Path:
    """A file of ``size`` random bytes."""
    with path.open("wb") as out:
        left = size
        while left:
            chunk = min(left, 16 * MB)
            out.write(os.urandom(chunk))
            left -= chunk
    return path


def upload(server: Maxgate, instance: dict[str, object], path: Path) -> str:
    """uploadFile the file (streamed from disk); returns its signed link."""
    with path.open("rb") as body:
        answer = httpx.post(
            server.api(instance, "uploadFile"),
            content=body,
            headers={"GA-Filename": path.name, "Content-Type": "application/octet-stream"},
            timeout=600,
        )
    answer.raise_for_status()
    return str(answer.json()["urlFile"])


def blob_path_of(link: str) -> str:
    """The blob key behind a link (nginx serves the blob store root)."""
    answer = httpx.head(link, timeout=30)
    answer.raise_for_status()
    sha256 = answer.headers["etag"].strip('"')
    return f"/blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def _row(
    metric: str,
    ours: list[WrkResult],
    theirs: list[WrkResult],
    target: float | None,
    big: bool,
    who: str = "maxgate",
) -> Row:
    value = (lambda r: r.mb_per_s) if big else (lambda r: r.rps)
    unit = "MiB/s" if big else "req/s"
    figure = median([value(r) for r in ours])
    baseline = median([value(r) for r in theirs])
    ratio = figure / baseline
    failures = sum(r.non2xx + r.socket_errors for r in ours)
    detail = (
        f"rounds {who} "
        + ", ".join(f"{value(r):,.0f}" for r in ours)
        + "; nginx "
        + ", ".join(f"{value(r):,.0f}" for r in theirs)
        + f"; p50 latency {who} {median([r.p50_ms for r in ours]):.1f} ms, "
        f"nginx {median([r.p50_ms for r in theirs]):.1f} ms; non-2xx "
        f"{sum(r.non2xx for r in ours)}, socket errors {sum(r.socket_errors for r in ours)}"
    )
    return Row(
        metric,
        figure,
        unit,
        "nginx sendfile",
        baseline,
        ratio,
        "—" if target is None else f"≥ {target:.2f}",
        None if target is None else ratio >= target and failures == 0,
        detail,
    )


def _measure(
    urls: dict[str, str], connections: int, options: Options, label: str
) -> dict[str, list[WrkResult]]:
    """Alternating rounds over the servers in ``urls`` (name → URL of the same file)."""
    script = wrk_script("p2-get")
    for url in urls.values():
        run_wrk(url, script, duration=2, connections=connections)  # warm-up
    found: dict[str, list[WrkResult]] = {name: [] for name in urls}
    for n in range(options.rounds):
        for name, url in urls.items():
            found[name].append(
                run_wrk(url, script, duration=options.duration, connections=connections)
            )
        log(
            f"  p2 {label} round {n + 1}: "
            + ", ".join(
                f"{name} {r[-1].rps:,.0f} req/s {r[-1].mb_per_s:,.0f} MiB/s"
                for name, r in found.items()
            )
        )
    return found


def run(options: Options) -> Result:
    """Measure P2."""
    big_size = (20 if options.quick else 200) * MB
    result = Result("p2", "file links vs nginx sendfile", quick=options.quick)
    folder = WORK / "p2"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    data_dir = folder / "data"
    try:
        instance = create_instance(data_dir)
        big = write_random(folder / "big.bin", big_size)
        small = write_random(folder / "small.bin", 100 * 1024)
        with contextlib.ExitStack() as stack:
            server = start_maxgate(data_dir, max_file_size="300MB")
            stack.callback(server.stop)
            links = {"big": upload(server, instance, big), "small": upload(server, instance, small)}
            big.unlink()
            small.unlink()
            nginx, nginx_url = start_nginx(data_dir / "blobs")
            stack.callback(nginx.stop)
            root = str(data_dir / "blobs")
            bare, bare_url = start_granian("bench.file_app:app", "fileapp", BENCH_FILE_ROOT=root)
            stack.callback(bare.stop)
            urls: dict[str, dict[str, str]] = {}
            for name, size in (("big", big_size), ("small", 100 * 1024)):
                path = blob_path_of(links[name])
                urls[name] = {
                    "nginx": nginx_url + path,
                    "maxgate": links[name],
                    "bare FileResponse": bare_url + path,
                }
                if name == "small":
                    urls[name]["bare read bytes"] = f"{bare_url}/read{path}"
                for url in urls[name].values():
                    got = httpx.get(url, timeout=60)
                    if got.status_code != 200 or len(got.content) != size:
                        raise RuntimeError(f"{url} does not serve the file ({got.status_code})")
            big_found = _measure(urls["big"], 4, options, f"{big_size // MB} MB")
            small_found = _measure(urls["small"], 16, options, "100 KB")
            size_mb = big_size // MB
            for found, label, target, is_big in (
                (big_found, f"{size_mb} MB file, 4 connections", BIG_TARGET, True),
                (small_found, "100 KB file, 16 connections", SMALL_TARGET, False),
            ):
                result.rows.append(
                    _row(f"{label}, link", found["maxgate"], found["nginx"], target, is_big)
                )
                result.rows.append(
                    _row(
                        f"{label}, bare Starlette FileResponse, same granian (info)",
                        found["bare FileResponse"],
                        found["nginx"],
                        None,
                        is_big,
                        "bare",
                    )
                )
            result.rows.append(
                _row(
                    "100 KB file, 16 connections, bare Starlette Response of the bytes read on "
                    "the loop (info)",
                    small_found["bare read bytes"],
                    small_found["nginx"],
                    None,
                    False,
                    "bare read",
                )
            )
            for conns in (16, 64):
                crowd = status_counts(links["small"], duration=3, connections=conns)
                answers = ", ".join(f"{n} answers {code}" for code, n in sorted(crowd.items()))
                result.note(
                    f"100 KB link, {conns} connections from one client address, 3 s: {answers} "
                    "(429 = the per-client guard, link_downloads_per_client=16 concurrent "
                    "downloads; one over it waits up to 50 ms for a slot before a 429)"
                )
            if options.profile and not result.passed:
                log("  p2: profiling maxgate serving the 100 KB link")
                result.profile = profiling.under_load(
                    server.worker_pid,
                    8,
                    "p2",
                    lambda: run_wrk(
                        links["small"], wrk_script("p2-get"), duration=10, connections=16
                    ),
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return result
