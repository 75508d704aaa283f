"""P5: inbound sandbox message → webhook delivered to a local receiver.

One maxgate worker (SERVER_CPU) with several instances, each with a webhookUrl pointing at a bare
Starlette receiver (bench/webhook_sink.py, CLIENT_CPU). Inbound messages enter through the
partner method ``sandboxSendMessage`` (a simulated contact writes into an instance), so the
whole path runs: HTTP request → journal row + notification in one transaction → delivery worker
→ POST to the receiver → delete.

* Throughput: wrk (CLIENT_CPU) sends inbound messages as fast as maxgate takes them for a while;
  the figure is delivered notifications per second from the first send until the last delivery.
  Baseline, same run: wrk POSTing a notification-sized body straight to the receiver (what the
  receiver and loopback could take at most).
* Latency: a paced sender posts 100 messages/s whose text is the send time; the receiver records
  arrival - send for each; p50 and p99 are reported.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import time
from typing import Any

import httpx

from bench.common import (
    CLIENT_CPU,
    VENV_BIN,
    WORK,
    Options,
    Proc,
    clean_env,
    create_instance,
    free_port,
    log,
    post_script,
    run_wrk,
    start_maxgate,
    wait_ready,
)
from bench.report import Result, Row

TARGET_RATE = 1000.0
TARGET_P99_MS = 50.0
PARTNER = "bench-partner-token"
INSTANCES = 8


def start_sink() -> tuple[Proc, str]:
    """The receiver under granian on the client CPU."""
    port = free_port()
    argv = [
        str(VENV_BIN / "granian"), "--interface", "asgi", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1", "--log-level", "warning",
        "bench.webhook_sink:app",
    ]  # fmt: skip
    proc = Proc(f"sink-{port}", argv, cpu=CLIENT_CPU, env=clean_env())
    wait_ready(proc, None, port)
    return proc, f"http://127.0.0.1:{port}"


def sink_stats(sink: str) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(sink + "/stats", timeout=30).json()
    return stats


def wait_delivered(sink: str, count: int, timeout: float) -> dict[str, Any]:
    """Wait until the sink has ``count`` deliveries (or the timeout); returns its stats."""
    deadline = time.monotonic() + timeout
    while True:
        stats = sink_stats(sink)
        if stats["count"] >= count or time.monotonic() > deadline:
            return stats
        time.sleep(0.2)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def paced_latency(
    base_url: str, instances: list[dict[str, Any]], rate: float, seconds: float
) -> int:
    """Send ``rate`` messages per second for ``seconds``, each carrying its send time."""
    sent = 0
    with httpx.Client(timeout=30) as client:
        start = time.perf_counter()
        total = int(rate * seconds)
        for n in range(total):
            due = start + n / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            target = instances[n % len(instances)]
            body = {"idInstance": target["idInstance"], "chatId": "10000777",
                    "message": f"t={time.time():.6f}"}  # fmt: skip
            answer = client.post(f"{base_url}/partner/sandboxSendMessage/{PARTNER}", json=body)
            if answer.status_code == 200:
                sent += 1
    return sent


def run(options: Options) -> Result:
    """Measure P5."""
    result = Result("p5", "inbound message → webhook delivered", quick=options.quick)
    folder = WORK / "p5"
    shutil.rmtree(folder, ignore_errors=True)
    data_dir = folder / "data"
    seconds = 3 if options.quick else 10
    try:
        with contextlib.ExitStack() as stack:
            sink_proc, sink = start_sink()
            stack.callback(sink_proc.stop)
            server = start_maxgate(
                data_dir, "p5", outbound_allow="127.0.0.0/8", partner_token=PARTNER
            )
            stack.callback(server.stop)
            instances = [create_instance(data_dir, f"hooked{i}") for i in range(INSTANCES)]
            for info in instances:
                answer = httpx.post(
                    server.api(info, "setSettings"),
                    json={"webhookUrl": sink + "/hook", "outgoingWebhook": "no"},
                    timeout=30,
                )
                answer.raise_for_status()
            # Baseline: the receiver alone, a notification-sized body.
            sample = json.dumps({"typeWebhook": "incomingMessageReceived", "pad": "x" * 600})
            direct = run_wrk(
                sink, post_script("p5-direct", [("/hook", sample)]), duration=seconds,
                connections=INSTANCES,
            )  # fmt: skip
            httpx.post(sink + "/reset", timeout=30)
            # Throughput: inbound messages as fast as maxgate takes them.
            requests = [
                (f"/partner/sandboxSendMessage/{PARTNER}",
                 json.dumps({"idInstance": i["idInstance"], "chatId": "10000777",
                             "message": "load"}))
                for i in instances
            ]  # fmt: skip
            began = time.time()
            load = run_wrk(
                server.base_url, post_script("p5-load", requests), duration=seconds,
                connections=32,
            )  # fmt: skip
            accepted = load.requests - load.non2xx
            stats = wait_delivered(sink, accepted, timeout=120 + accepted / 200)
            delivered = stats["count"]
            elapsed = (stats["last"] or began) - began
            rate = delivered / elapsed if elapsed > 0 else 0.0
            log(f"  p5: {accepted:,} accepted in {load.seconds:.1f} s "
                f"({accepted / load.seconds:,.0f}/s in), {delivered:,} delivered in "
                f"{elapsed:.1f} s ({rate:,.0f}/s); receiver alone {direct.rps:,.0f}/s")  # fmt: skip
            result.rows.append(
                Row(
                    f"notifications delivered per second, {INSTANCES} instances, one worker",
                    rate,
                    "notif/s",
                    "receiver alone (wrk)",
                    direct.rps,
                    rate / direct.rps if direct.rps else None,
                    f"≥ {TARGET_RATE:,.0f}/s",
                    rate >= TARGET_RATE and delivered >= accepted,
                    f"{accepted:,} inbound accepted in {load.seconds:.1f} s "
                    f"({accepted / load.seconds:,.0f}/s, non-2xx {load.non2xx}); "
                    f"{delivered:,} delivered in {elapsed:.1f} s from the first send",
                )
            )
            # Latency at 100/s.
            httpx.post(sink + "/reset", timeout=30)
            sent = paced_latency(server.base_url, instances, 100.0, seconds)
            stats = wait_delivered(sink, sent, timeout=60)
            latencies = [v * 1000 for v in stats["latencies"]]
            if latencies:
                p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
            else:
                p50 = p99 = float("inf")
            log(f"  p5: latency at 100/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
                f"({len(latencies)} of {sent})")  # fmt: skip
            result.rows.append(
                Row(
                    "send → webhook latency p99 at 100 messages/s",
                    p99,
                    "ms",
                    "",
                    None,
                    None,
                    f"< {TARGET_P99_MS:.0f} ms",
                    p99 < TARGET_P99_MS and len(latencies) >= sent,
                    f"p50 {p50:.1f} ms; {len(latencies)} of {sent} delivered",
                )
            )
    finally:
        time.sleep(0.5)
        shutil.rmtree(folder, ignore_errors=True)
    return result
