"""py-spy sampling of a server worker under load, reduced to its top frames for RESULTS.md."""

from __future__ import annotations

import subprocess
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.common import VENV_BIN, WORK, log

PY_SPY = VENV_BIN / "py-spy"


def available() -> bool:
    """Whether py-spy is installed in the venv (``pip install py-spy``)."""
    return PY_SPY.exists()


def record(pid: int, seconds: int, name: str, *, gil: bool = True) -> Path | None:
    """Sample ``pid`` for ``seconds`` into a collapsed-stack file (``--gil``: only samples where
    a thread holds the GIL, i.e. Python CPU time)."""
    out = WORK / f"{name}.pyspy.txt"
    argv = [str(PY_SPY), "record", "--pid", str(pid), "-d", str(seconds), "-r", "100"]
    argv += ["-f", "raw", "--threads", "-o", str(out)]
    if gil:
        argv.append("--gil")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0 or not out.exists():
        log(f"  py-spy failed: {done.stderr.strip()[-300:]}")
        return None
    return out


def under_load(
    pid: int, seconds: int, name: str, load: Callable[[], object], *, gil: bool = True
) -> list[str]:
    """Run ``load`` (lasting longer than ``seconds``) while py-spy samples ``pid``."""
    if not available():
        return ["py-spy not installed: pip install py-spy"]
    holder: dict[str, Path | None] = {}

    def sample() -> None:
        holder["path"] = record(pid, seconds, name, gil=gil)

    thread = threading.Thread(target=sample)
    thread.start()
    load()
    thread.join()
    path = holder.get("path")
    return summarize(path, gil=gil) if path else ["py-spy produced no profile"]


# A stack's frames up to the last of these are the server's and the loop's plumbing; what runs
# under them is the work. SQLAlchemy's greenlet stacks have neither and are kept whole.
_RUNNERS = ("Handle._run (asyncio/events.py", "Thread.run (threading.py")


def _below_bootstrap(frames: list[str]) -> list[str]:
    for i in range(len(frames) - 1, -1, -1):
        if frames[i].startswith(_RUNNERS):
            return frames[i + 1 :]
    return frames


def summarize(raw: Path, top: int = 14, *, gil: bool = True) -> list[str]:
    """Samples per thread, then self and inclusive time by frame (inclusive: below the event
    loop's callback runner or a thread's run method). With ``gil`` a sample is a moment a thread
    held the GIL (Python CPU); without, any thread py-spy did not see idle."""
    stacks: list[tuple[str, list[str], int]] = []
    threads: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        thread, *frames = stack.split(";")  # --threads: the first item names the thread
        name = thread.split(": ", 1)[-1] if ": " in thread else thread
        stacks.append((name, frames, int(count)))
        threads[name] += int(count)
    if not stacks:
        return ["no samples"]
    total = sum(threads.values())
    kind = "GIL held" if gil else "all threads, idle excluded"
    lines = [f"{total} samples ({kind}), {raw.name}; by thread:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in threads.most_common(6)]
    own: Counter[str] = Counter()
    for _name, frames, n in stacks:
        if frames:
            own[frames[-1]] += n
    lines += ["self time, all threads:"]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in own.most_common(top)]
    inclusive: Counter[str] = Counter()
    for _name, frames, n in stacks:
        for frame in set(_below_bootstrap(frames)):
            inclusive[frame] += n
    lines += ["inclusive time, all threads (frames under the event loop's or thread's runner):"]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(top + 10)]
    return lines
