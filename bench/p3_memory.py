"""P3: peak RSS growth of the granian worker while a 2 GB file is uploaded, mirrored and served.

Instance A uploads the file with sendFileByUpload (curl ``-F file=@…`` streams it from disk) to
instance B's chatId; the outbox hands it to the sandbox messenger (which keeps its own copy), B
journals it and the mirror worker copies it into B's storage; then B's downloadFile link is
fetched in full. The worker's VmRSS is sampled every 20 ms throughout (and VmHWM checked).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path

import httpx

from bench.common import (
    MB,
    WORK,
    Maxgate,
    Options,
    RssSampler,
    create_instance,
    curl,
    log,
    proc_status,
    running,
    start_maxgate,
)
from bench.p2_links import write_random
from bench.report import Result, Row

BUDGET = 64 * MB


def received_state(db: Path, instance_id: int, id_message: str) -> str | None:
    """The state of the file of B's copy of the message, or None before B journals it."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        row = conn.execute(
            "SELECT f.state FROM messages m JOIN files f ON f.id = m.file_id"
            " WHERE m.instance_id = ? AND m.id_message = ?",
            (instance_id, id_message),
        ).fetchone()
    return row[0] if row else None


def wait_for(what: str, check: object, timeout: float) -> None:
    """Poll ``check()`` until true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not happen within {timeout:.0f} s")


def carry(server: Maxgate, a: dict, b: dict, path: Path, sampler: RssSampler | None) -> float:
    """Upload → send → mirror → serve one file; returns the seconds the whole trip took."""
    started = time.perf_counter()
    if sampler:
        sampler.phase("upload (sendFileByUpload)")
    answer = json.loads(
        curl(
            "-F",
            f"chatId={b['chatId']}",
            "-F",
            f"file=@{path};type=application/octet-stream",
            server.api(a, "sendFileByUpload"),
        )
    )
    id_message = answer["idMessage"]
    if sampler:
        sampler.phase("send to the sandbox messenger")
    b_id = int(b["idInstance"])
    wait_for(
        "B journaling the message",
        lambda: received_state(server.db_path, b_id, id_message),
        1800,
    )
    if sampler:
        sampler.phase("mirror into B's storage")
    wait_for(
        "B mirroring the file",
        lambda: received_state(server.db_path, b_id, id_message) == "stored",
        1800,
    )
    if sampler:
        sampler.phase("serve B's link")
    link = httpx.post(
        server.api(b, "downloadFile"),
        json={"chatId": a["chatId"], "idMessage": id_message},
        timeout=120,
    ).json()["downloadUrl"]
    got = curl("-o", "/dev/null", "-w", "%{size_download}", link)
    if int(got) != path.stat().st_size:
        raise RuntimeError(f"the link served {got} bytes, expected {path.stat().st_size}")
    return time.perf_counter() - started


def run(options: Options) -> Result:
    """Measure P3."""
    size = (200 if options.quick else 2048) * MB
    result = Result("p3", "worker memory while a 2 GB file is uploaded, mirrored, served")
    result.quick = options.quick
    folder = WORK / "p3"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        data_dir = folder / "data"
        a, b = create_instance(data_dir, "sender"), create_instance(data_dir, "receiver")
        small = write_random(folder / "warmup.bin", 4 * MB)
        big = write_random(folder / "big.bin", size)
        server = start_maxgate(data_dir, max_file_size="3GB")
        with running(server):
            carry(server, a, b, small, None)  # warm-up: every code path once
            pid = server.worker_pid
            time.sleep(1)
            with RssSampler(pid) as sampler:
                seconds = carry(server, a, b, big, sampler)
            main_rss = proc_status(server.proc.pid)["VmRSS"]
        growth = sampler.peak - sampler.baseline
        phases = ", ".join(
            f"{name} {(peak - sampler.baseline) / MB:+.1f} MB"
            for name, peak in sampler.peaks.items()
        )
        result.rows.append(
            Row(
                f"peak RSS growth, {size // MB} MB file: upload + send + mirror + serve",
                growth / MB,
                "MB",
                "idle worker RSS",
                sampler.baseline / MB,
                growth / BUDGET,
                "≤ 64 MB (ratio = growth ÷ 64 MB ≤ 1)",
                growth <= BUDGET,
                f"peak per phase over the idle RSS: {phases}; VmHWM "
                f"{sampler.start_status['VmHWM'] / MB:.0f} → {sampler.end_status['VmHWM'] / MB:.0f}"
                f" MB; {sampler.samples} samples; whole trip {seconds:.0f} s "
                f"({2 * size / MB / seconds:.0f} MB/s counting upload and mirror)",
            )
        )
        result.note(
            f"the supervisor (main) process, which serves no requests, had {main_rss / MB:.0f} MB"
        )
        result.note(
            "server flags: --max-file-size 3GB; the default --outbound-timeout 60s bounds each "
            "read, the whole mirror may take 60 s + 1 s per 256 KiB"
        )
        log(f"  p3: growth {growth / MB:.1f} MB ({phases})")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return result
