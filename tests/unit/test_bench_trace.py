"""`--trace FILE`: nginx/Apache combined-format lines and JSON lines become (seconds since the
first request, path); a bad line is counted and skipped with a message naming its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from isr.bench.trace import QUOTED_BAD, TraceError, parse_line, parse_lines, read_trace

COMBINED = '203.0.113.94 - - [01/Dec/2026:12:00:{s:02d} +0000] "{method} {path} HTTP/1.1" 200 512 "-" "Mozilla/5.0"'


def combined(second: int, path: str, method: str = "GET") -> str:
    return COMBINED.format(s=second, method=method, path=path)


def test_combined_format_lines_give_times_from_the_first_request_and_paths() -> None:
    lines = [combined(5, "/items/p9"), combined(7, "/about?utm=x"), combined(5, "/"), combined(30, "/late", "HEAD")]
    trace = parse_lines(lines)
    # In time order; equal times keep the log's order; the query string stays (the server ignores it).
    assert trace.arrivals == [(0.0, "/items/p9"), (0.0, "/"), (2.0, "/about?utm=x"), (25.0, "/late")]
    assert (trace.bad, trace.ignored, trace.messages) == (0, 0, [])
    assert trace.span_s == 25.0


def test_combined_format_keeps_the_time_zone_and_needs_no_referrer_or_agent() -> None:
    utc = parse_line('1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET /a HTTP/1.0" 200 2326')
    east = parse_line('1.2.3.4 - frank [10/Oct/2000:15:55:36 +0200] "GET /a HTTP/1.0" 200 2326')
    assert utc is not None and east is not None and utc == east  # the same moment
    assert utc[1] == "/a"


def test_methods_that_do_not_read_the_cache_are_ignored_not_bad() -> None:
    trace = parse_lines([combined(0, "/a"), combined(1, "/form", "POST"), combined(2, "/b", "DELETE")])
    assert [path for _, path in trace.arrivals] == ["/a"]
    assert (trace.bad, trace.ignored) == (0, 2)


def test_json_lines_with_seconds_and_paths() -> None:
    trace = parse_lines(
        ['{"t": 100.5, "path": "/b"}', '{"t": 100, "path": "/a", "status": 200}', "", '  {"t": 103, "path": "/c"}']
    )
    assert trace.arrivals == [(0.0, "/a"), (0.5, "/b"), (3.0, "/c")]
    assert trace.bad == 0  # the blank line is not a bad one


def test_both_formats_in_one_file() -> None:
    trace = parse_lines([combined(0, "/a"), '{"t": 1, "path": "/b"}'])
    assert [path for _, path in trace.arrivals] == ["/b", "/a"]  # JSON t=1 is 1970: the oldest


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("garbage", "neither a combined-format log line nor JSON"),
        ('{"t": 1, "path": "/a"', "not valid JSON"),
        ('{"path": "/a"}', 'no number "t"'),
        ('{"t": "1", "path": "/a"}', 'no number "t"'),
        ('{"t": true, "path": "/a"}', 'no number "t"'),
        ('{"t": 1, "path": "a"}', "path must start with /"),
        ('{"t": 1}', "path must start with /"),
        ('["t", 1]', "neither a combined-format log line nor JSON"),  # JSON lines are objects
        ('1.2.3.4 - - [32/Foo/2000:13:55:36 +0000] "GET /a HTTP/1.0" 200 1', "bad time"),
        ('1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET http://x/a HTTP/1.0" 200 1', "path must start with /"),
    ],
)
def test_a_bad_line_is_counted_and_skipped_with_a_message_naming_it(line: str, reason: str) -> None:
    trace = parse_lines([combined(0, "/ok"), line, combined(1, "/ok2")], "access.log")
    assert [path for _, path in trace.arrivals] == ["/ok", "/ok2"]
    assert trace.bad == 1
    assert len(trace.messages) == 1
    assert trace.messages[0].startswith("access.log:2: skipped: ") and reason in trace.messages[0], trace.messages


def test_many_bad_lines_quote_the_first_few_and_count_all() -> None:
    lines = [combined(0, "/ok")] + [f"junk {n}" for n in range(10)]
    trace = parse_lines(lines, "x.log")
    assert trace.bad == 10
    assert len(trace.messages) == QUOTED_BAD + 1
    assert [m.split(":")[1] for m in trace.messages[:QUOTED_BAD]] == ["2", "3", "4"]
    assert trace.messages[-1] == "x.log: 10 bad lines skipped in all"


def test_read_trace_from_a_file(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes((combined(0, "/a") + "\n" + "bad \xff line\n" + combined(2, "/b") + "\n").encode("latin-1"))
    trace = read_trace(log)
    assert trace.arrivals == [(0.0, "/a"), (2.0, "/b")]
    assert trace.bad == 1 and trace.messages[0].startswith(f"{log}:2: skipped")


def test_a_missing_file_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"^cannot read trace .*missing\.log: No such file or directory$"):
        read_trace(tmp_path / "missing.log")


def test_a_file_with_no_request_is_one_error(tmp_path: Path) -> None:
    log = tmp_path / "posts.log"
    log.write_text(combined(0, "/form", "POST") + "\nnot a line\n")
    with pytest.raises(TraceError, match=r"no GET or HEAD request in trace .* \(1 bad lines\)"):
        read_trace(log)
