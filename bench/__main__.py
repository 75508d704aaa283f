"""Run the benchmarks: ``python -m bench [--quick] [--no-profile] [p1 p2 p3 p4 p5 p6 p7]``.

Without ids every benchmark runs, in order. Full runs save their results in bench/results/ and
rewrite the generated part of bench/RESULTS.md; ``--quick`` runs (small sizes, one round) keep
theirs in the work dir and only print the tables.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import time
import traceback

from bench import report
from bench.common import WORK, Options, log

BENCHMARKS = {
    "p1": "bench.p1_download",
    "p2": "bench.p2_links",
    "p3": "bench.p3_memory",
    "p4": "bench.p4_latency",
    "p5": "bench.p5_webhooks",
    "p6": "bench.p6_mirror",
    "p7": "bench.p7_maxbot",
}


def server_errors(since: float, limit: int = 5) -> list[str]:
    """Error lines (tracebacks, ERROR records) in the logs of servers started since ``since``."""
    found: list[str] = []
    for path in sorted(WORK.glob("*.log")):
        if path.stat().st_mtime < since:
            continue
        for line in path.read_text(errors="replace").splitlines():
            if "Traceback" in line or "ERROR" in line or "Exception" in line:
                found.append(f"{path.name}: {line.strip()[:200]}")
    if len(found) > limit:
        found = [*found[:limit], f"… and {len(found) - limit} more error lines"]
    return found


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks; exit 1 when one crashed (a missed target is not a crash)."""
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("ids", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument(
        "--no-profile", action="store_true", help="do not py-spy a benchmark that missed"
    )
    parser.add_argument(
        "--render", action="store_true", help="only rewrite RESULTS.md from the saved results"
    )
    args = parser.parse_args(argv)
    unknown = [i for i in args.ids if i not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    ids = [] if args.render else args.ids or list(BENCHMARKS)
    options = Options(quick=args.quick, profile=not args.no_profile and not args.quick)
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    source_at_start = report.source_state()
    crashed = []
    for bench_id in ids:
        log(f"{bench_id}: start")
        begun = time.perf_counter()
        since = time.time()
        try:
            module = importlib.import_module(BENCHMARKS[bench_id])
            result = module.run(options)
        except Exception:
            traceback.print_exc()
            crashed.append(bench_id)
            continue
        result.seconds = time.perf_counter() - begun
        for line in server_errors(since):
            result.note(f"server log: {line}")
        result.date = time.strftime("%Y-%m-%d %H:%M")
        result.source = report.source_state()
        report.save(result)
        verdict = "pass" if result.passed else "MISSED"
        log(f"{bench_id}: {verdict} ({result.seconds:.0f} s)")
    total = time.perf_counter() - started
    run_file = report.results_dir(options.quick) / "run.json"
    facts = report.machine()
    if facts["maxgate source"].rpartition("(")[2] != source_at_start.rpartition("(")[2]:
        facts["warning"] = f"src/ changed during this run (it started on {source_at_start})"
    if not args.ids and not args.render:  # a full run: its facts and duration head the file
        run_file.parent.mkdir(parents=True, exist_ok=True)
        run_file.write_text(json.dumps({"total_seconds": total, "facts": facts}, indent=2) + "\n")
    recorded = json.loads(run_file.read_text()) if run_file.exists() else {}
    results = report.load_all(options.quick)
    if args.render and "facts" in recorded:
        facts = recorded["facts"]
    elif args.render and results:
        facts["date"] = max(r.date for r in results) + " (latest measurement)"
    text = report.render(results, facts, recorded.get("total_seconds"))
    if not options.quick:
        report.update_results_md(text)
    print("\n" + text)
    log(f"all done in {total / 60:.1f} min; crashed: {crashed or 'none'}")
    if not crashed:
        for leftover in WORK.glob("nginx-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for script in WORK.glob("*.lua"):
            script.unlink()
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
