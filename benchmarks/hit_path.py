"""Hit-path benchmark: `isr serve` against a bare aiohttp handler serving the same bytes, under wrk.

    .venv/bin/python benchmarks/hit_path.py [--duration 5] [--rounds 3]

Starts `isr serve` on the example site (the repository) and on benchmarks/site, and one
baseline server (benchmarks/baseline_server.py) per scenario holding the very bytes isr
answered with. Each round loads, per scenario, the baseline and then isr with the same
`wrk -t2 -c64 -d<duration>s --latency` command, and the table gives the medians over
the rounds, with isr's figures as ratios to the baseline's. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TextIO

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
EXAMPLE_SITE = REPO
STALE_SITE = BENCH_DIR / "site"
STALE_PATH = "/stale"
STALE_REVALIDATE = 1.0  # benchmarks/site/pages/stale.py's revalidate, if Cache-Control lacks it
COUNT_SCRIPT = BENCH_DIR / "count_cache.lua"
BASELINE_SERVER = BENCH_DIR / "baseline_server.py"

HIT_TARGET = 0.8  # the target: a HIT reaches 0.8 of the baseline's requests/s
WRK_THREADS = 2
WRK_CONNECTIONS = 64
POLL_INTERVAL = 0.05  # seconds between readiness and state polls
HTTP_TIMEOUT = 60.0  # seconds one probe request may take (a first render included)
FOREVER = 31_536_000  # s-maxage of a page with `revalidate = False`
DATA_SCRIPT = re.compile(rb'<script[^>]*\bid="__ISR_DATA__"[^>]*>(.*?)</script>', re.S)


class BenchError(Exception):
    """A precondition of the benchmark failed; the message says which."""


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


def freshness_left(reply: Reply) -> float:
    """Seconds this generation surely stays fresh, from its Cache-Control and Age."""
    match = re.search(r"s-maxage=(\d+)", reply.headers.get("cache-control", ""))
    if not match:
        return 0.0
    s_maxage = int(match.group(1))
    if s_maxage >= FOREVER:
        return float("inf")
    # Age is whole seconds, rounded down: the generation may be up to a second older.
    return s_maxage - int(reply.headers.get("age", "0")) - 1


def s_maxage(reply: Reply) -> float:
    match = re.search(r"s-maxage=(\d+)", reply.headers.get("cache-control", ""))
    return float(match.group(1)) if match else 0.0


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

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"    | {line}" for line in text) or "    | (no output)"

    def fail(self, message: str) -> BenchError:
        return BenchError(f"{self.name}: {message}\n  its last output ({self.log_path}):\n"
                          f"{self.log_tail()}")

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
                    raise self.fail(f"not listening on port {self.port} after {timeout:g}s")
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
               env: dict[str, str], timeout: float) -> Server:
    cmd = [*isr, "serve", str(site), "--host", "127.0.0.1", "--port", str(port),
           "--cache", str(cache)]
    return Server(name, cmd, port, log_dir / f"{name}.log", env, timeout)


def baseline_server(name: str, body: Path, content_type: str, kind: str, port: int,
                    log_dir: Path) -> Server:
    cmd = [sys.executable, str(BASELINE_SERVER), str(body), str(port),
           "--content-type", content_type, "--kind", kind]
    return Server(name, cmd, port, log_dir / f"{name}.log")


# --- preparing isr's state before a run ---------------------------------------------------


def warm(server: Server, path: str, timeout: float) -> Reply:
    """Request `path` until it answers HIT (the first request renders it: MISS)."""
    first = server.get(path)
    if first.status != 200:
        raise server.fail(f"GET {path} answered {first.status}, expected 200")
    if first.cache not in ("MISS", "HIT"):
        raise server.fail(f"GET {path} answered x-isr-cache {first.cache!r}, expected MISS "
                          "(first request) or HIT")

    def probe() -> Reply | None:
        reply = server.get(path)
        return reply if reply.status == 200 and reply.cache == "HIT" else None

    reply = poll_until(f"{server.name} {path} to answer HIT", time.monotonic() + timeout, probe)
    if "content-encoding" in reply.headers:
        raise server.fail(f"GET {path} without Accept-Encoding came back with Content-Encoding: "
                          f"{reply.headers['content-encoding']} (wrk sends no Accept-Encoding)")
    return reply


def ensure_fresh(server: Server, path: str, seconds: float, timeout: float) -> None:
    """Make sure `path` answers HIT and stays fresh for `seconds` (when its revalidate allows)."""
    deadline = time.monotonic() + seconds + timeout
    while True:
        reply = server.get(path)
        if reply.cache == "HIT":
            left = freshness_left(reply)
            if left >= seconds or s_maxage(reply) - 1 < seconds:
                return
            # Too close to its revalidate: let it go stale, and the next probe regenerates it.
            time.sleep(max(0.0, left + 1.5))
        else:
            time.sleep(POLL_INTERVAL)
        if time.monotonic() > deadline:
            raise server.fail(f"{path} did not answer a lasting HIT (last: {reply.cache}, "
                              f"Cache-Control {reply.headers.get('cache-control')!r}, "
                              f"Age {reply.headers.get('age')!r})")


def make_stale(server: Server, path: str, timeout: float) -> None:
    """Wait for a fresh generation of `path`, then until it is past its revalidate.

    No request is sent after the HIT, so the run's first request finds the page stale
    and starts the regeneration that the rest of the burst is served STALE during.
    """
    def probe() -> Reply | None:
        reply = server.get(path)
        return reply if reply.cache == "HIT" else None

    reply = poll_until(f"{server.name} {path} to finish regenerating (HIT)",
                       time.monotonic() + timeout, probe)
    seen = time.monotonic()  # the generation was produced before this moment
    revalidate = s_maxage(reply) or STALE_REVALIDATE
    time.sleep(max(0.0, seen + revalidate + 0.25 - time.monotonic()))


# --- wrk ---------------------------------------------------------------------------------


@dataclasses.dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int = 0
    socket_errors: str = ""
    cache: Counter[str] = dataclasses.field(default_factory=Counter)
    status: Counter[str] = dataclasses.field(default_factory=Counter)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def parse_wrk(output: str) -> WrkResult:
    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.M)
        if match is None:
            raise BenchError(f"cannot find {pattern!r} in wrk's output:\n{output}")
        return match

    def latency_ms(percent: int) -> float:
        match = find(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m|h)\s*$")
        return float(match.group(1)) * _UNITS_MS[match.group(2)]

    result = WrkResult(rps=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
                       p50_ms=latency_ms(50), p99_ms=latency_ms(99),
                       requests=int(find(r"^\s+(\d+) requests in ").group(1)))
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        result.non_2xx = int(match.group(1))
    if match := re.search(r"Socket errors: (.*)", output):
        result.socket_errors = match.group(1).strip()
    for kind, value, n in re.findall(r"^ISR_COUNT (\w+) (\S+) (\d+)$", output, re.M):
        (result.cache if kind == "cache" else result.status)[value] += int(n)
    return result


def run_wrk(url: str, duration: float, count: bool) -> WrkResult:
    cmd = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{duration:g}s", "--latency"]
    if count:
        cmd += ["-s", str(COUNT_SCRIPT)]
    try:
        done = subprocess.run(cmd + [url], capture_output=True, text=True,
                              timeout=duration + 60)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{' '.join(cmd)} {url} did not finish in {duration + 60:g}s") from None
    if done.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} {url} exited {done.returncode}:\n"
                         f"{done.stdout}{done.stderr}")
    return parse_wrk(done.stdout)


# --- scenarios and report ------------------------------------------------------------------


@dataclasses.dataclass
class Scenario:
    name: str
    isr: Server
    baseline: Server
    path: str
    prepare: Callable[[], None]  # brings isr's page into the scenario's state
    isr_runs: list[WrkResult] = dataclasses.field(default_factory=list)
    baseline_runs: list[WrkResult] = dataclasses.field(default_factory=list)
    log_writes: int = 0  # isr runs during which the log store on disk changed

    def ratios(self, field: str) -> list[float]:
        return [getattr(i, field) / getattr(b, field)
                for i, b in zip(self.isr_runs, self.baseline_runs)]

    def median(self, runs: list[WrkResult], field: str) -> float:
        return statistics.median(getattr(r, field) for r in runs)

    def cache_share(self) -> str:
        total = Counter[str]()
        for run in self.isr_runs:
            total.update(run.cache)
        n = sum(total.values())
        if not n:
            return "(not counted)"
        return " ".join(f"{value} {100 * k / n:.1f}%" for value, k in total.most_common())


def fmt_ratio(share: float) -> str:
    return f"{share:.2f}"


def print_table(scenarios: list[Scenario], out: TextIO) -> None:
    head = ("scenario", "isr req/s", "base req/s", "ratio", "isr p50/p99 ms",
            "base p50/p99 ms", "p50 x", "p99 x", "isr x-isr-cache")
    rows = [head]
    for s in scenarios:
        rows.append((
            s.name,
            f"{s.median(s.isr_runs, 'rps'):,.0f}",
            f"{s.median(s.baseline_runs, 'rps'):,.0f}",
            fmt_ratio(statistics.median(s.ratios("rps"))),
            f"{s.median(s.isr_runs, 'p50_ms'):.2f} / {s.median(s.isr_runs, 'p99_ms'):.2f}",
            f"{s.median(s.baseline_runs, 'p50_ms'):.2f} / "
            f"{s.median(s.baseline_runs, 'p99_ms'):.2f}",
            fmt_ratio(statistics.median(s.ratios("p50_ms"))),
            fmt_ratio(statistics.median(s.ratios("p99_ms"))),
            s.cache_share(),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for n, row in enumerate(rows):
        cells = [c.ljust(w) if i in (0, len(row) - 1) else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip(), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)


def problems(scenarios: list[Scenario]) -> list[str]:
    notes = []
    for s in scenarios:
        for side, runs in (("isr", s.isr_runs), ("baseline", s.baseline_runs)):
            for n, run in enumerate(runs, 1):
                if run.non_2xx:
                    notes.append(f"{s.name}, {side}, round {n}: {run.non_2xx} non-2xx answers "
                                 f"({dict(run.status)})")
                if run.socket_errors:
                    notes.append(f"{s.name}, {side}, round {n}: socket errors "
                                 f"{run.socket_errors}")
    return notes


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (5)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="baseline/isr pairs per scenario; the table shows medians (3)")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds of unrecorded load on every server first (1; 0: none)")
    parser.add_argument("--stale-sleep", type=float, default=None,
                        help="seconds the STALE page's get_static_props sleeps (default: "
                             "duration + 1, so that one regeneration spans the run)")
    parser.add_argument("--baseline-kind", choices=("server", "app"), default="server",
                        help="baseline on aiohttp's low-level web.Server (default) or on a "
                             "web.Application with one route")
    parser.add_argument("--no-count", action="store_true",
                        help="do not count x-isr-cache values (runs wrk without a Lua script)")
    parser.add_argument("--startup-timeout", type=float, default=60.0,
                        help="seconds a server may take to listen or a page to turn HIT (60)")
    parser.add_argument("--isr", default=f"{shlex.quote(sys.executable)} -m isr",
                        help="command that runs isr (default: this Python's `-m isr`)")
    parser.add_argument("--check", action="store_true",
                        help=f"exit 1 when the HIT ratio is below {HIT_TARGET}")
    parser.add_argument("--json", type=Path, help="also write all measurements to this file")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.rounds < 1 or args.warmup < 0:
        parser.error("--duration must be > 0, --rounds >= 1 and --warmup >= 0")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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


def json_url(html: bytes, path: str) -> str:
    """The JSON variant's URL, from the build id embedded in the page's HTML."""
    match = DATA_SCRIPT.search(html)
    if match is None:
        raise BenchError(f'{path}: no <script id="__ISR_DATA__"> in its HTML')
    build_id = json.loads(match.group(1))["build_id"]
    return f"/_isr/data/{build_id}/{'index' if path == '/' else path.strip('/')}.json"


def start_baseline(stack: ExitStack, name: str, reply: Reply, args: argparse.Namespace,
                   port: int, tmp: Path) -> Server:
    body = tmp / f"{name}.body"
    body.write_bytes(reply.body)
    content_type = reply.headers.get("content-type", "application/octet-stream")
    server = stack.enter_context(running(
        baseline_server(name, body, content_type, args.baseline_kind, port, tmp)))
    server.wait_listening(args.startup_timeout)
    if server.get("/").body != reply.body:
        raise server.fail("does not serve the bytes it was given")
    return server


def setup(stack: ExitStack, args: argparse.Namespace, tmp: Path) -> list[Scenario]:
    ports = free_ports(5)
    env = dict(os.environ, ISR_BENCH_STALE_SLEEP=str(args.stale_sleep))
    isr = shlex.split(args.isr)
    site = stack.enter_context(running(isr_server(
        isr, "isr-example", EXAMPLE_SITE, ports[0], tmp / "cache-example", tmp, env, HTTP_TIMEOUT)))
    bench = stack.enter_context(running(isr_server(
        isr, "isr-stale", STALE_SITE, ports[1], tmp / "cache-stale", tmp, env,
        HTTP_TIMEOUT + args.stale_sleep)))
    for server in (site, bench):
        server.wait_listening(args.startup_timeout)
        log(f"{server.name}: listening on {server.base}")

    html = warm(site, "/", args.startup_timeout)
    data_path = json_url(html.body, "/")
    data = warm(site, data_path, args.startup_timeout)
    stale = warm(bench, STALE_PATH, args.startup_timeout + args.stale_sleep)
    log(f"warm: / {len(html.body):,} B, {data_path} {len(data.body):,} B, "
        f"{STALE_PATH} {len(stale.body):,} B; / has {html.headers.get('cache-control')!r}")
    if s_maxage(html) - 1 < args.duration:
        log(f"note: / revalidates every {s_maxage(html):g}s, less than a run: "
            "some of its answers will be STALE")

    fresh_for = args.duration + 1
    timeout = args.startup_timeout
    return [
        Scenario("HIT /", site, start_baseline(stack, "baseline-html", html, args, ports[2], tmp),
                 "/", lambda: ensure_fresh(site, "/", fresh_for, timeout)),
        Scenario("JSON /", site, start_baseline(stack, "baseline-json", data, args, ports[3], tmp),
                 data_path, lambda: ensure_fresh(site, data_path, fresh_for, timeout)),
        Scenario(f"STALE {STALE_PATH}", bench,
                 start_baseline(stack, "baseline-stale", stale, args, ports[4], tmp),
                 STALE_PATH, lambda: make_stale(bench, STALE_PATH, timeout + args.stale_sleep)),
    ]


def measure(scenarios: list[Scenario], args: argparse.Namespace) -> None:
    count = not args.no_count
    if args.warmup:
        log(f"warm-up: {args.warmup:g}s of load on each server")
        for s in scenarios:
            for server in (s.baseline, s.isr):
                run_wrk(server.base + s.path, args.warmup, count=False)
    for n in range(1, args.rounds + 1):
        for s in scenarios:
            s.baseline_runs.append(run_wrk(s.baseline.base + s.path, args.duration, count))
            s.prepare()
            hit = s.name.startswith("HIT")
            if hit:
                time.sleep(LOG_FLUSH_WAIT_S)  # records of what prepare() did reach the disk first
            before = log_store_state()
            s.isr_runs.append(run_wrk(s.isr.base + s.path, args.duration, count))
            if hit:
                time.sleep(LOG_FLUSH_WAIT_S)
                if log_store_state() != before:
                    s.log_writes += 1
            b, i = s.baseline_runs[-1], s.isr_runs[-1]
            log(f"round {n}/{args.rounds}  {s.name:<13} baseline {b.rps:9,.0f} req/s  "
                f"isr {i.rps:9,.0f} req/s  ratio {i.rps / b.rps:.2f}  "
                f"[{' '.join(f'{k} {v}' for k, v in i.cache.most_common()) or '-'}]")


LOG_FLUSH_WAIT_S = 1.0  # the server writes log records to disk every 0.5 s


def log_store_state() -> list[tuple[str, int, int]]:
    """Name, size and mtime of every file of the example site's log store."""
    folder = EXAMPLE_SITE / ".isr" / "logs"
    return sorted((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in folder.rglob("*") if f.is_file())


def report(scenarios: list[Scenario], args: argparse.Namespace) -> bool:
    wrk_cmd = f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.duration:g}s --latency"
    print(f"\n{wrk_cmd}, {args.rounds} round(s) of baseline then isr; medians over rounds; "
          f"ratio = isr / baseline ({os.cpu_count()} CPUs shared by wrk and the servers, "
          f"one process each; baseline: aiohttp {args.baseline_kind}, uvloop)\n")
    print_table(scenarios, sys.stdout)
    for note in problems(scenarios):
        print(f"warning: {note}")
    writes = scenarios[0].log_writes
    print(f"log store written during HIT runs: {'no' if not writes else f'yes, in {writes} run(s)'}")
    hit = statistics.median(scenarios[0].ratios("rps"))
    ok = hit >= HIT_TARGET
    print(f"\ntarget: HIT req/s >= {HIT_TARGET} x baseline: {'met' if ok else 'NOT met'} "
          f"({hit:.2f})", flush=True)
    if args.json:
        args.json.write_text(json.dumps({
            "wrk": wrk_cmd, "rounds": args.rounds, "baseline_kind": args.baseline_kind,
            "stale_sleep": args.stale_sleep,
            "scenarios": {s.name: {"path": s.path,
                                   "isr": [vars(r) for r in s.isr_runs],
                                   "baseline": [vars(r) for r in s.baseline_runs]}
                          for s in scenarios}}, indent=2) + "\n")
    return ok


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("hit_path: wrk not found; install it with `apt-get install -y wrk` "
              "(Debian/Ubuntu) and run again", file=sys.stderr)
        return 2
    if args.stale_sleep is None:
        args.stale_sleep = args.duration + 1
    # Both signals raise KeyboardInterrupt, so that the servers are stopped on the way out
    # (SIGINT too: a shell starts background jobs with it ignored).
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tmp = Path(tempfile.mkdtemp(prefix="isr-bench-"))  # caches, bodies and server logs
    try:
        with ExitStack() as stack:
            busy = cpu_busy()
            if busy is not None and busy > 0.1:
                log(f"note: the CPUs were {busy:.0%} busy before the start; "
                    "the figures will be noisy")
            scenarios = setup(stack, args, tmp)
            measure(scenarios, args)
            ok = report(scenarios, args)
    except BenchError as exc:
        print(f"hit_path: {exc}\nhit_path: server logs kept in {tmp}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hit_path: interrupted; servers stopped", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
        return 130
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
