"""Shared benchmark machinery: options, processes (maxgate, granian echo, nginx), wrk, RSS.

Every server runs pinned to ``SERVER_CPU`` and every load generator to ``CLIENT_CPU``
(``taskset``), so the two never fight for the same core. Processes are started in their own
session and stopped through their process-group id, never by name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
WORK = Path(os.environ.get("MAXGATE_BENCH_WORK", "/tmp/maxgate-bench"))
SERVER_CPU = os.environ.get("MAXGATE_BENCH_SERVER_CPU", "0")
CLIENT_CPU = os.environ.get("MAXGATE_BENCH_CLIENT_CPU", "1")
MB = 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    """How a run is sized: ``quick`` shrinks every data set and measurement (smoke test)."""

    quick: bool = False
    profile: bool = True

    @property
    def duration(self) -> int:
        """Seconds per wrk measurement."""
        return 3 if self.quick else 10

    @property
    def rounds(self) -> int:
        """Alternating maxgate/baseline rounds; the median of each side is reported."""
        return 1 if self.quick else 3


def log(message: str) -> None:
    """Progress on stderr, with a timestamp."""
    print(time.strftime("%H:%M:%S"), message, flush=True)


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without MAXGATE_* settings of the caller's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAXGATE_")}
    env.update(extra)
    return env


def median(values: Sequence[float]) -> float:
    """The median (0.0 for no values)."""
    return float(statistics.median(values)) if values else 0.0


# --- processes -------------------------------------------------------------------------------


class Proc:
    """A server process started by the bench, pinned to a CPU, in its own process group."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cpu: str = SERVER_CPU,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        WORK.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = WORK / f"{name}.log"
        with self.log_path.open("wb") as out:  # a file, never a pipe that could fill up
            self.popen = subprocess.Popen(
                ["taskset", "-c", cpu, *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd or REPO,
                env=env or clean_env(),
                start_new_session=True,
            )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """The end of its output."""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        """SIGTERM to the process group we created, SIGKILL after 20 s."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def children(self) -> list[int]:
        """Direct child PIDs (the granian worker of a server)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except FileNotFoundError:
            return []


def wait_ready(proc: Proc, url: str | None, port: int, timeout: float = 60.0) -> None:
    """Wait until ``url`` answers 200 (or, without a URL, until ``port`` accepts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.log_tail()}")
        try:
            if url is None:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            elif httpx.get(url, timeout=2).status_code == 200:
                return
        except (OSError, httpx.TransportError):
            pass
        time.sleep(0.2)
    proc.stop()
    raise RuntimeError(f"{proc.name} did not become ready in {timeout:.0f} s")


@dataclasses.dataclass
class Maxgate:
    """A running ``maxgate serve``."""

    proc: Proc
    base_url: str
    data_dir: Path

    @property
    def worker_pid(self) -> int:
        """The granian worker: the child of the main process that serves requests."""
        kids = self.proc.children()
        if len(kids) != 1:
            raise RuntimeError(f"expected one granian worker, found {kids}")
        return kids[0]

    @property
    def db_path(self) -> Path:
        """The SQLite file."""
        return self.data_dir / "maxgate.db"

    def api(self, instance: dict[str, Any], method: str) -> str:
        """The v3 URL of a method for an instance."""
        return (
            f"{self.base_url}/waInstance{instance['idInstance']}/{method}/"
            f"{instance['apiTokenInstance']}"
        )

    def stop(self) -> None:
        """Stop the server."""
        self.proc.stop()


def maxgate_cli(*args: str, data_dir: Path) -> str:
    """Run the ``maxgate`` CLI on a data dir and return its standard output."""
    done = subprocess.run(
        [str(VENV_BIN / "maxgate"), *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"maxgate {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def create_instance(data_dir: Path, name: str = "") -> dict[str, Any]:
    """``maxgate instance create --json``: a real instance with a real token. The data dir is
    made first: only ``maxgate serve`` makes a missing one (the other commands refuse it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = json.loads(
        maxgate_cli("instance", "create", "--json", "--name", name, data_dir=data_dir)
    )
    return info


def before_tree(rev: str) -> Path:
    """The maxgate source of commit ``rev`` (``git archive``) under WORK, to measure the code
    before a change beside the code after it, in one run. Its Python packages are this
    checkout's venv; ``source_env`` puts its ``src`` first on the path."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    tree = WORK / f"before-{commit}"
    if not (tree / "src" / "maxgate").is_dir():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", commit], cwd=REPO, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    venv = tree / ".venv"
    if not venv.exists():
        venv.symlink_to(REPO / ".venv")
    return tree


def source_env(tree: Path) -> dict[str, str]:
    """The environment that runs the maxgate (and bench) of ``tree``."""
    return clean_env(PYTHONPATH=f"{tree / 'src'}:{tree}")


def start_maxgate(
    data_dir: Path, name: str = "maxgate", *, source: Path | None = None, **settings: str
) -> Maxgate:
    """``maxgate serve`` with rate limits off, one worker, on SERVER_CPU; ``source``: run the
    maxgate of another tree (``before_tree``) instead of this checkout's."""
    port = free_port()
    flags: list[str] = ["--rate-limits", "false"]
    for key, value in settings.items():
        flags += ["--" + key.replace("_", "-"), value]
    argv = [
        str(VENV_BIN / "maxgate"),
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        *flags,
    ]
    proc = Proc(f"{name}-{port}", argv, env=source_env(source) if source else None)
    base = f"http://127.0.0.1:{port}"
    wait_ready(proc, base + "/health", port)
    return Maxgate(proc, base, data_dir)


def start_echo() -> tuple[Proc, str]:
    """The bare Starlette JSON echo (bench/echo_app.py) under the same granian, one worker."""
    return start_granian("bench.echo_app:app", "echo")


def start_granian(target: str, name: str, **env: str) -> tuple[Proc, str]:
    """A bench ASGI app under granian (one worker, default options, as maxgate runs)."""
    port = free_port()
    argv = [
        str(VENV_BIN / "granian"),
        "--interface",
        "asgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        target,
    ]
    proc = Proc(f"{name}-{port}", argv, env=clean_env(**env))
    wait_ready(proc, None, port)
    return proc, f"http://127.0.0.1:{port}"


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
user root;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


def start_nginx(root: Path, cpu: str = SERVER_CPU) -> tuple[Proc, str]:
    """nginx (one worker, ``sendfile on``) serving ``root`` on 127.0.0.1, pinned to ``cpu``."""
    port = free_port()
    prefix = WORK / f"nginx-{port}"
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, root=root))
    proc = Proc(f"nginx-{port}", ["nginx", "-p", str(prefix), "-c", str(conf)], cpu=cpu)
    wait_ready(proc, None, port)
    return proc, f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def running(*procs: Proc | Maxgate) -> Iterator[None]:
    """Stop the given servers however the block ends."""
    try:
        yield
    finally:
        for proc in procs:
            proc.stop()


def curl(*args: str, cpu: str = CLIENT_CPU, timeout: float = 1800) -> str:
    """Run curl pinned to ``cpu``; returns its standard output (raises on failure)."""
    done = subprocess.run(
        ["taskset", "-c", cpu, "curl", "-sS", "--fail-with-body", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"curl {args[-1]} failed: {done.stderr} {done.stdout}")
    return done.stdout


# --- wrk -------------------------------------------------------------------------------------

# Appended to every wrk script: one machine-readable line with the totals and percentiles.
WRK_REPORT = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\":%.0f,\\"duration_us\\":%.0f,\\"bytes\\":%.0f," ..
    "\\"connect\\":%.0f,\\"read\\":%.0f,\\"write\\":%.0f,\\"status\\":%.0f,\\"timeout\\":%.0f," ..
    "\\"p50\\":%.0f,\\"p90\\":%.0f,\\"p99\\":%.0f,\\"mean\\":%.1f,\\"max\\":%.0f}\\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
"""


@dataclasses.dataclass(frozen=True, slots=True)
class WrkResult:
    """One wrk measurement. Latencies in milliseconds; ``non2xx`` counts 4xx/5xx answers."""

    requests: int
    seconds: float
    bytes: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    non2xx: int
    socket_errors: int

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        """Response bytes (headers included) per second, in MiB."""
        return self.bytes / self.seconds / MB if self.seconds else 0.0


def wrk_script(name: str, body: str = "") -> Path:
    """Write a wrk Lua script (``body`` plus the reporting ``done``) into the work dir."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"{name}.lua"
    path.write_text(body + WRK_REPORT)
    return path


STATUS_COUNTER = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  codes = {}
end
function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end
local report = done
function done(summary, latency, requests)
  local parts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("codes")) do
      parts[status] = (parts[status] or 0) + n
    end
  end
  local out = {}
  for status, n in pairs(parts) do
    table.insert(out, status .. "=" .. n)
  end
  io.write("WRKCODES " .. table.concat(out, ",") .. "\\n")
  report(summary, latency, requests)
end
"""


def status_counts(url: str, *, duration: float, connections: int) -> dict[int, int]:
    """Answers by HTTP status for GETs of ``url`` (wrk's Lua ``response`` hook, so slower)."""
    path = WORK / "status.lua"
    path.write_text(WRK_REPORT + STATUS_COUNTER)
    argv = ["taskset", "-c", CLIENT_CPU, "wrk", "-t2", f"-c{connections}"]
    argv += [f"-d{int(duration)}s", "-s", str(path), url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("WRKCODES "):
            pairs = (
                [p.split("=") for p in line.split()[1].split(",") if p] if line.split()[1:] else []
            )
            return {int(k): int(v) for k, v in pairs}
    raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")


def post_script(name: str, requests: Sequence[tuple[str, str]]) -> Path:
    """A wrk script cycling through (path, JSON body) POSTs; each thread starts elsewhere."""
    lines = ["local reqs = {"]
    for path, body in requests:
        if "]]" in body or "]]" in path:
            raise ValueError("request text must not contain ']]'")
        lines.append(f"  {{[[{path}]], [[{body}]]}},")
    lines.append("}")
    lines.append(
        """
local nthreads = 0
function setup(thread)
  thread:set("offset", nthreads * 7919)
  nthreads = nthreads + 1
end
local formatted = {}
local counter = 0
function init(args)
  local headers = {["Content-Type"] = "application/json"}
  for i, r in ipairs(reqs) do
    formatted[i] = wrk.format("POST", r[1], headers, r[2])
  end
  counter = (offset or 0) % #formatted
end
function request()
  counter = counter % #formatted + 1
  return formatted[counter]
end
"""
    )
    return wrk_script(name, "\n".join(lines))


def run_wrk(
    url: str,
    script: Path,
    *,
    duration: float,
    connections: int = 64,
    threads: int = 2,
    timeout: str = "30s",
) -> WrkResult:
    """Run wrk on CLIENT_CPU against ``url`` and parse its report line."""
    argv = [
        "taskset",
        "-c",
        CLIENT_CPU,
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{int(duration)}s",
        f"--timeout={timeout}",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("WRKJSON "):
            data = json.loads(line[len("WRKJSON ") :])
            break
    else:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    return WrkResult(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        bytes=int(data["bytes"]),
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
        mean_ms=data["mean"] / 1000,
        non2xx=int(data["status"]),
        socket_errors=int(data["connect"] + data["read"] + data["write"] + data["timeout"]),
    )


# --- memory ----------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


class RssSampler:
    """Samples a process's VmRSS (and VmHWM) every ``interval`` seconds in a thread.

    ``phase(name)`` starts a named phase; ``peaks`` holds the highest VmRSS seen per phase.
    """

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.start_status = proc_status(pid)
        self.baseline = self.start_status["VmRSS"]
        self.peaks: dict[str, int] = {}
        self.samples = 0
        self._phase = "start"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def phase(self, name: str) -> None:
        """Attribute the following samples to ``name``."""
        self._phase = name

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = proc_status(self.pid)["VmRSS"]
            except (FileNotFoundError, ProcessLookupError):
                return
            self.samples += 1
            if rss > self.peaks.get(self._phase, 0):
                self.peaks[self._phase] = rss
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.end_status = proc_status(self.pid)

    @property
    def peak(self) -> int:
        """The highest RSS: sampled, or the kernel's high-water mark if it rose meanwhile."""
        sampled = max(self.peaks.values(), default=self.baseline)
        hwm_end = self.end_status["VmHWM"]
        if hwm_end > self.start_status["VmHWM"]:
            return max(sampled, hwm_end)
        return sampled
