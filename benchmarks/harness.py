"""What every benchmark here shares: server subprocesses, HTTP probes, load runs (isr bench's load
core, or wrk), RSS and tables.

hit_path.py and scale.py import it (they run as scripts, so benchmarks/ is on sys.path).
Nothing here is specific to one benchmark.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from isr.bench.report import Report

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
COUNT_SCRIPT = BENCH_DIR / "count_cache.lua"
BASELINE_SERVER = BENCH_DIR / "baseline_server.py"

WRK_THREADS = 2
WRK_CONNECTIONS = 64
POLL_INTERVAL = 0.05  # seconds between readiness and state polls
HTTP_TIMEOUT = 60.0  # seconds one probe request may take (a first render included)
DEFAULT_ISR = f"{shlex.quote(sys.executable)} -m isr"  # this Python's isr


class BenchError(Exception):
    """A precondition of the benchmark failed; the message says which."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- HTTP probes -------------------------------------------------------------------------


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def cache(self) -> str:
        return self.headers.get("x-isr-cache", "-")


def http_get(base: str, path: str, timeout: float = HTTP_TIMEOUT) -> Reply:
    """GET `path` the way wrk does: only a Host header, so no Accept-Encoding."""
    host, _, port = base.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        headers = {name.lower(): value for name, value in resp.getheaders()}
        return Reply(resp.status, headers, body)
    finally:
        conn.close()


def poll_until(what: str, deadline: float, probe: Callable[[], Reply | None]) -> Reply:
    """Call `probe` every POLL_INTERVAL until it returns a reply or `deadline` passes."""
    while True:
        reply = probe()
        if reply is not None:
            return reply
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        time.sleep(POLL_INTERVAL)


# --- servers -----------------------------------------------------------------------------


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class Server:
    """A server subprocess in its own process group, so that stopping it also stops its workers."""

    def __init__(self, name: str, cmd: list[str], port: int, log_path: Path,
                 env: dict[str, str] | None = None, timeout: float = HTTP_TIMEOUT) -> None:
        self.name = name
        self.timeout = timeout  # for one probe request
        self.base = f"http://127.0.0.1:{port}"
        self.port = port
        self.log_path = log_path
        self._log = log_path.open("wb")
        try:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        except OSError as exc:
            self._log.close()
            raise BenchError(f"{name}: cannot run {shlex.join(cmd)}: {exc}") from None

    def fail(self, message: str) -> BenchError:
        return BenchError(f"{self.name}: {message}\n  its last output ({self.log_path}):\n"
                          f"{log_tail(self.log_path)}")

    def wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise self.fail(f"exited with status {self.proc.returncode} before listening")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise self.fail(f"not listening on port {self.port} after {timeout:g}s") from None
                time.sleep(POLL_INTERVAL)

    def get(self, path: str) -> Reply:
        try:
            return http_get(self.base, path, self.timeout)
        except (OSError, http.client.HTTPException) as exc:
            state = "exited" if self.proc.poll() is not None else "running"
            raise self.fail(f"GET {path} failed ({state}): {exc!r}") from exc

    def stop(self) -> None:
        """SIGTERM the group, give it 10 s, then SIGKILL whatever of the group is left."""
        pgid = self.proc.pid
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and _group_alive(pgid):
                self.proc.poll()  # reap the leader so that it stops counting as alive
                time.sleep(POLL_INTERVAL)
        self.proc.poll()
        self._log.close()


def log_tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(f"    | {line}" for line in text) or "    | (no output)"


def timed_command(name: str, cmd: list[str], cwd: Path, log_path: Path,
                  env: dict[str, str] | None = None) -> float:
    """Run `cmd` to its end, its output into `log_path`; return its wall time in seconds."""
    log(f"{name}: {shlex.join(cmd)}")
    started = time.perf_counter()
    with log_path.open("wb") as out:
        code = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - started
    if code != 0:
        raise BenchError(f"{name} exited {code}; its last output ({log_path}):\n{log_tail(log_path)}")
    return seconds


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


@contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()


def isr_server(isr: list[str], name: str, site: Path, port: int, cache: Path, log_dir: Path,
               env: dict[str, str] | None = None, timeout: float = HTTP_TIMEOUT,
               extra: Sequence[str] = ()) -> Server:
    """`isr serve SITE` on 127.0.0.1:`port` with its own cache folder; `extra` goes last."""
    cmd = [*isr, "serve", str(site), "--host", "127.0.0.1", "--port", str(port),
           "--cache", str(cache), *extra]
    return Server(name, cmd, port, log_dir / f"{name}.log", env, timeout)


def baseline_server(name: str, body: Path, content_type: str, kind: str, port: int,
                    log_dir: Path) -> Server:
    cmd = [sys.executable, str(BASELINE_SERVER), str(body), str(port),
           "--content-type", content_type, "--kind", kind]
    return Server(name, cmd, port, log_dir / f"{name}.log")


# --- resident memory ----------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    """VmRSS of one process, from /proc/PID/status, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS in /proc/{pid}/status")


def isr_server_pids(server: Server) -> list[int]:
    """The processes that serve HTTP: `isr serve` itself, or its --supervised children.

    With `--workers 1` the command is the server; with more it is a supervisor whose
    children run `isr serve ... --supervised`. Function workers are never counted.
    """
    leader = server.proc.pid
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name in parentheses may hold spaces: the fields after ')' are fixed.
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == leader and b"--supervised" in (stat.parent / "cmdline").read_bytes():
                children.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
    return sorted(children) or [leader]


# --- isr bench's load core -----------------------------------------------------------------

LOAD_CONNECTIONS = 64


def run_load(base: str, path: str, duration: float, connections: int = LOAD_CONNECTIONS,
             warmup: float = 0.0) -> Report:
    """Load `base` + `path` as fast as it answers with `isr bench`'s load core
    (isr.bench.load): a closed loop of `connections` clients for `duration` seconds after
    `warmup` unmeasured ones, with no Accept-Encoding (the identity bytes, as wrk gets them).
    Returns its isr.bench.report.Report: achieved_rate, latency_ms, states, errors_by,
    warnings (a saturated generator says so) and workload["generator_cpu"]. isr is imported
    here, not at the top, so benchmarks that do not load this way need none of it."""
    import uvloop

    from isr.bench import load

    workload = load.Workload(paths=(path,), rate=None, duration_s=duration, warmup_s=warmup)
    target = load.Target(base, connections=connections, timeout_s=HTTP_TIMEOUT, compressed=False)
    try:
        report: Report = uvloop.run(load.run(workload, target))
    except load.LoadError as exc:
        raise BenchError(str(exc)) from None
    return report


# --- wrk ---------------------------------------------------------------------------------


@dataclasses.dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    non_2xx: int = 0
    socket_errors: str = ""
    cache: Counter[str] = dataclasses.field(default_factory=Counter)
    status: Counter[str] = dataclasses.field(default_factory=Counter)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DURATION = r"([\d.]+)(us|ms|s|m|h)"


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(output: str) -> WrkResult:
    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.M)
        if match is None:
            raise BenchError(f"cannot find {pattern!r} in wrk's output:\n{output}")
        return match

    def latency_ms(percent: int) -> float:
        return _ms(*find(rf"^\s+{percent}%\s+{_DURATION}\s*$").groups())

    # "    Latency   avg   stdev   max   +/- stdev": the third figure is the maximum.
    latency = find(rf"^\s+Latency\s+{_DURATION}\s+{_DURATION}\s+{_DURATION}").groups()
    result = WrkResult(rps=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
                       p50_ms=latency_ms(50), p99_ms=latency_ms(99), max_ms=_ms(*latency[4:6]),
                       requests=int(find(r"^\s+(\d+) requests in ").group(1)))
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        result.non_2xx = int(match.group(1))
    if match := re.search(r"Socket errors: (.*)", output):
        result.socket_errors = match.group(1).strip()
    for kind, value, n in re.findall(r"^ISR_COUNT (\w+) (\S+) (\d+)$", output, re.M):
        (result.cache if kind == "cache" else result.status)[value] += int(n)
    return result


def run_wrk(url: str, duration: float, script: Path | None = COUNT_SCRIPT,
            script_args: Sequence[str] = ()) -> WrkResult:
    """`wrk -t2 -c64 -d<duration>s --latency [-s script] url [-- script_args]`."""
    cmd = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{duration:g}s", "--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    if script_args:
        cmd += ["--", *script_args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{shlex.join(cmd)} did not finish in {duration + 60:g}s") from None
    if done.returncode != 0:
        raise BenchError(f"{shlex.join(cmd)} exited {done.returncode}:\n"
                         f"{done.stdout}{done.stderr}")
    return parse_wrk(done.stdout)


def wrk_command(duration: float) -> str:
    return f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{duration:g}s --latency"


def cache_share(runs: Sequence[WrkResult]) -> str:
    """Each x-isr-cache value's share of all answers of `runs`, e.g. "HIT 100.0%"."""
    total = Counter[str]()
    for run in runs:
        total.update(run.cache)
    n = sum(total.values())
    if not n:
        return "(not counted)"
    return " ".join(f"{value} {100 * k / n:.1f}%" for value, k in total.most_common())


def run_problems(name: str, run: WrkResult) -> list[str]:
    """One line per non-2xx answer count or socket error of a run."""
    notes = []
    if run.non_2xx:
        notes.append(f"{name}: {run.non_2xx} non-2xx answers ({dict(run.status)})")
    if run.socket_errors:
        notes.append(f"{name}: socket errors {run.socket_errors}")
    return notes


# --- output and process frame --------------------------------------------------------------


def print_table(rows: Sequence[Sequence[str]], out: TextIO = sys.stdout) -> None:
    """Rows of cells, the first one the head: first and last column left-aligned, others right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    last = len(widths) - 1
    for n, row in enumerate(rows):
        cells = [c.ljust(w) if i in (0, last) else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        print("  ".join(cells).rstrip(), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)


def cpu_busy(seconds: float = 1.0) -> float | None:
    """Share of CPU time not idle over `seconds`, from /proc/stat (None where there is none)."""
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def bench_main(prog: str, body: Callable[[ExitStack, Path], int], need_wrk: bool = True) -> int:
    """Run `body(stack, tmp)` with servers stopped and a clean exit status whatever happens.

    `tmp` is a new temporary folder (caches, sites, server logs); it is removed after a
    success or an interrupt and kept, with its path printed, after a BenchError.
    """
    if need_wrk and shutil.which("wrk") is None:
        print(f"{prog}: wrk not found; install it with `apt-get install -y wrk` "
              "(Debian/Ubuntu) and run again", file=sys.stderr)
        return 2
    # Both signals raise KeyboardInterrupt, so that the servers are stopped on the way out
    # (SIGINT too: a shell starts background jobs with it ignored).
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tmp = Path(tempfile.mkdtemp(prefix=f"isr-{prog}-"))
    try:
        with ExitStack() as stack:
            busy = cpu_busy()
            if busy is not None and busy > 0.1:
                log(f"note: the CPUs were {busy:.0%} busy before the start; "
                    "the figures will be noisy")
            code = body(stack, tmp)
    except BenchError as exc:
        print(f"{prog}: {exc}\n{prog}: server logs kept in {tmp}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; servers stopped", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
        return 130
    shutil.rmtree(tmp, ignore_errors=True)
    return code
