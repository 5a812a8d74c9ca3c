"""`isr bench`: load a site (or simulate it) and report how its cache behaves (SPEC §8)."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import orjson
import uvloop
from rich.live import Live
from rich.table import Table

from isr.bench import load, server
from isr.bench.load import Progress, Target, Workload
from isr.bench.report import STATES, Report, check_writable, write_json
from isr.bench.thresholds import Threshold, failures, metric, parse_threshold
from isr.bench.trace import read_trace
from isr.cli.common import add_site, console, server_url
from isr.constants import TOKEN_VARIABLE
from isr.errors import IsrError
from isr.site.site import load_site

EXIT_FAILED = 1  # a threshold failed
EXIT_USAGE = 2  # bad input: options, trace file, a URL that does not answer
DEFAULT_DURATION_S = 10.0
DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*$")
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
COMPARED = (
    "requests", "achieved_rate", "hit_ratio", "stale_share", "errors", "p50", "p90", "p99", "max",
    "HIT.p99", "STALE.p99", "MISS.p99", "staleness_p99", "staleness_max", "regenerations", "revalidation_to_fresh_p99",
)  # fmt: skip


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("bench", help="load the site and report its cache behaviour (or --simulate it)")
    parser.error = _one_line_error  # a bad option is one line, exit 2
    add_site(parser)
    parser.add_argument("--url", type=server_url, help="a running server to load (default: start `isr serve SITE` on a free port)")
    parser.add_argument("--cache", metavar="DIR", help="cache of the server bench starts (default: a fresh temporary folder)")
    what = parser.add_argument_group("what to request")
    what.add_argument("--path", action="append", default=[], metavar="P", help="a path to request (repeatable; the first is the most popular)")
    what.add_argument("--paths-from", choices=("routes",), help="every prerendered path of SITE")
    what.add_argument("--new-paths", type=_count, default=0, metavar="N", help="with --paths-from routes: N never-seen paths under dynamic routes")
    what.add_argument("--trace", type=Path, metavar="FILE", help="replay an access log (combined format or JSON lines {\"t\", \"path\"})")
    what.add_argument("--speed", type=_positive, default=1.0, metavar="X", help="trace replay speed (default 1)")
    what.add_argument("--zipf", type=_non_negative, default=1.0, metavar="S", help="popularity exponent over the paths (default 1.0; 0: uniform)")
    how = parser.add_argument_group("how hard")
    how.add_argument("--rate", type=_positive, metavar="R", help="open loop: R requests per second (default 100 without --connections)")
    how.add_argument("--connections", type=_count, metavar="C", help="closed loop with C clients; with --rate: the pool size (default 64)")
    how.add_argument("--duration", type=_duration, metavar="D", help="measured time, e.g. 10s, 2m (default 10s; a trace: its length)")
    how.add_argument("--warmup", type=_duration, default=0.0, metavar="D", help="unmeasured load first (default 0)")
    how.add_argument("--timeout", type=_duration, default=10.0, metavar="D", help="per request (default 10s)")
    changes = parser.add_argument_group("what changes meanwhile")
    changes.add_argument("--revalidate-rate", type=_non_negative, default=0.0, metavar="R", help="on-demand revalidations of requested paths per second")
    changes.add_argument("--tag-rate", type=_non_negative, default=0.0, metavar="R", help="tag marks per second, of the --tag tags")
    changes.add_argument("--tag", action="append", default=[], metavar="TAG", help="a tag for --tag-rate (repeatable)")
    changes.add_argument("--token", default=os.environ.get(TOKEN_VARIABLE, ""), help=f"revalidate token (default ${TOKEN_VARIABLE})")
    out = parser.add_argument_group("report")
    out.add_argument("--json", type=Path, metavar="FILE", help="write the whole report as JSON")
    out.add_argument("--html", type=Path, metavar="FILE", help="write a self-contained HTML report with charts")
    out.add_argument("--threshold", type=_threshold, action="append", default=[], metavar="EXPR", help="e.g. p99<50ms, hit_ratio>0.95, errors==0 (repeatable): exit 1 when one fails")
    out.add_argument("--compare", nargs="+", type=Path, metavar="JSON", help="print saved --json reports side by side, with ratios to the first")
    sim = parser.add_argument_group("simulation")
    sim.add_argument("--simulate", action="store_true", help="run the workload through the site's freshness rules on a virtual clock: no server")
    sim.add_argument("--render-ms", type=_non_negative, default=50.0, metavar="MS", help="time a render is assumed to take (default 50)")
    sim.add_argument("--revalidate", type=_non_negative, metavar="S", help="what if every cached route had revalidate = S")


def run(args: argparse.Namespace) -> int:
    try:
        if args.compare:
            return compare(args.compare)
        for path in (args.json, args.html):
            if path is not None:
                check_writable(path)  # now, not after a run of minutes
        report = simulated(args) if args.simulate else measured(args)
        print_report(report)
        return finish(report, args)
    except IsrError as exc:
        print(f"isr: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def workload(args: argparse.Namespace) -> Workload:
    rate = args.rate if args.rate is not None or args.connections is None else None
    common: dict[str, Any] = {"zipf": args.zipf, "rate": rate if rate is not None or args.connections else 100.0, "warmup_s": args.warmup, "speed": args.speed}
    if args.trace is not None:
        trace = read_trace(args.trace)
        for message in trace.messages:
            print(f"isr: warning: {message}", file=sys.stderr)
        length = trace.span_s / args.speed - args.warmup + 1e-9
        duration = length if args.duration is None else min(args.duration, length)
        return Workload(trace=tuple(trace.arrivals), duration_s=duration, **common)
    paths = list(args.path)
    if args.paths_from == "routes":
        paths += uvloop.run(server.site_paths(load_site(args.site), args.new_paths))
    elif args.new_paths:
        _usage("--new-paths needs --paths-from routes")
    duration = DEFAULT_DURATION_S if args.duration is None else args.duration
    return Workload(paths=tuple(dict.fromkeys(paths or ["/"])), duration_s=duration, **common)


def measured(args: argparse.Namespace) -> Report:
    if (args.revalidate_rate or args.tag_rate) and not args.token:
        _usage(f"--revalidate-rate and --tag-rate need the token (${TOKEN_VARIABLE} or --token)")
    if args.tag_rate and not args.tag:
        _usage("--tag-rate needs the tags to mark (--tag TAG)")
    work = workload(args)
    pool = args.connections or 64
    target = Target("", pool, args.timeout, args.token, args.revalidate_rate, args.tag_rate, tuple(args.tag))
    if args.url:
        return _load(work, _at(target, args.url))
    site = Path(args.site)
    if not (site / "pages").is_dir():
        _usage(f"{site} is not a site (no pages/ folder); give SITE or --url")
    with server.started(site, args.cache, args.token) as url:
        return _load(work, _at(target, url))


def _at(target: Target, url: str) -> Target:
    return Target(url, target.connections, target.timeout_s, target.token, target.revalidate_rate, target.tag_rate, target.tags)


def _load(work: Workload, target: Target) -> Report:
    out = console()
    if not out.is_terminal:
        return uvloop.run(load.run(work, target))
    with Live(console=out, refresh_per_second=4, transient=True) as live:
        return uvloop.run(load.run(work, target, lambda p: live.update(progress_line(p))))


def progress_line(p: Progress) -> str:
    states = "  ".join(f"{state} {p.states[state]:,}" for state in STATES)
    return f"{p.elapsed_s:5.1f}/{p.total_s:g} s  sent {p.sent:,}  done {p.done:,}  {states}  errors {p.errors:,}"


def simulated(args: argparse.Namespace) -> Report:
    simulate = importlib.import_module("isr.bench.simulate")  # the simulation, loaded only when asked for
    report: Report = simulate.simulate(workload(args), load_site(args.site), args.render_ms, revalidate=args.revalidate)
    return report


def finish(report: Report, args: argparse.Namespace) -> int:
    if args.json:
        write_json(report, args.json)
    if args.html:
        importlib.import_module("isr.bench.html").write_html(report, args.html)
    failed = failures(args.threshold, report.as_dict())
    for line in failed:
        print(f"threshold failed: {line}")
    if args.threshold and not failed:
        print(f"thresholds: all {len(args.threshold)} met")
    return EXIT_FAILED if failed else 0


def print_report(report: Report) -> None:
    out = console()
    summary = report.as_dict()
    target = f" of {report.target_rate:,.0f} asked" if report.target_rate else " (closed loop)" if report.workload.get("mode") == "closed" else ""
    out.print(f"{report.requests:,} requests in {report.duration_s:g} s: {report.achieved_rate:,.0f} req/s{target}")
    table = Table(title_justify="left")
    for column in ("state", "count", "share", "p50 ms", "p90 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "state" else "right")
    served = sum(report.states.values())
    for name in ("all", *STATES):
        points = report.latency_ms[name]
        count = report.requests if name == "all" else report.states[name]
        share = f"{count / served:.1%}" if served and name != "all" else ""
        table.add_row(name, f"{count:,}", share, *(f"{points[p]:.2f}" for p in ("p50", "p90", "p99", "max")))
    out.print(table)
    s = report.staleness_s
    out.print(f"staleness served: p50 {s['p50']:g} s, p99 {s['p99']:g} s, max {s['max']:g} s; stale share {s['stale_share']:.1%}; hit ratio {metric(summary, 'hit_ratio'):.1%}")
    out.print(f"regenerations seen: {report.regenerations:,}")
    fresh = report.revalidation_to_fresh_ms
    if report.revalidations:
        out.print(f"revalidations: {report.revalidations:,}; to the first fresh response: p50 {fresh['p50']:.0f} ms, p99 {fresh['p99']:.0f} ms, max {fresh['max']:.0f} ms ({fresh['count']} seen)")
    errors = ", ".join(f"{key}: {n:,}" for key, n in report.errors_by.items())
    out.print(f"errors: {report.errors:,}" + (f" ({errors})" if errors else ""))
    for warning in report.warnings:
        out.print(f"warning: {warning}")


def compare(paths: list[Path]) -> int:
    reports = [_read_report(path) for path in paths]
    table = Table(title_justify="left")
    table.add_column("metric")
    for n, path in enumerate(paths):
        table.add_column(path.name + ("" if n == 0 else " (x first)"), justify="right")
    for name in COMPARED:
        values = [metric(report, name) for report in reports]
        table.add_row(name, *(_cell(value, values[0], n) for n, value in enumerate(values)))
    console().print(table)
    return 0


def _cell(value: float, first: float, n: int) -> str:
    text = f"{value:,.4g}" if abs(value) < 10_000 else f"{value:,.0f}"
    if n == 0:
        return text
    return f"{text} ({value / first:.2f})" if first else f"{text} (-)"


def _read_report(path: Path) -> dict[str, Any]:
    try:
        report = orjson.loads(path.read_bytes())
        metric(report, COMPARED[0])
        metric(report, "p99")
    except OSError as exc:
        raise IsrError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        raise IsrError(f"{path} is not a report written by isr bench --json") from None
    if not isinstance(report, dict):
        raise IsrError(f"{path} is not a report written by isr bench --json")
    return report


def _usage(message: str) -> NoReturn:
    raise IsrError(message)


def _one_line_error(message: str) -> NoReturn:
    print(f"isr bench: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def _duration(text: str) -> float:
    match = DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 10s, 2m or 500ms")
    return float(match.group(1)) * UNITS[match.group(2)]


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _positive(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def _non_negative(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _threshold(text: str) -> Threshold:
    try:
        return parse_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
