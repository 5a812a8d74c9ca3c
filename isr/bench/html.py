"""`isr bench --html FILE`: the report as one self-contained page with charts over time.

uPlot (isr/http/vendor, the dashboard's copy) and the report's data are inlined, so the
file opens anywhere with no network.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files
from pathlib import Path

import orjson

from isr.bench.report import STATES, Report
from isr.errors import IsrError

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>isr bench report</title>
<style>{css}
body {{ font:14px/1.45 system-ui, sans-serif; margin:24px; color:#1f2328; max-width:1100px; }}
table {{ border-collapse:collapse; font-variant-numeric:tabular-nums; margin:8px 0 20px; }}
th, td {{ padding:4px 10px; border-bottom:1px solid #d0d7de; text-align:right; }}
th:first-child, td:first-child {{ text-align:left; }}
.chart {{ margin:12px 0 24px; }} .warn {{ color:#9a6700; }}
</style></head>
<body>
<h1>isr bench report</h1>
<p id="headline">{headline}</p>
{warnings}
<table id="summary"><thead><tr><th>state</th><th>count</th><th>share</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr></thead>
<tbody>{rows}</tbody></table>
<p>{staleness}</p>
<h2>Requests by state (per second, stacked)</h2><div class="chart" id="states"></div>
<h2>Latency p50 / p99 (ms)</h2><div class="chart" id="latency"></div>
<h2>Staleness served, p99 (s)</h2><div class="chart" id="staleness"></div>
<h2>Regenerations (per second)</h2><div class="chart" id="regenerations"></div>
<script type="application/json" id="report">{data}</script>
<script>{js}</script>
<script>
"use strict";
const report = JSON.parse(document.getElementById("report").textContent);
const s = report.series, t = s.map(b => b.t), col = k => s.map(b => b[k]);
const width = Math.min(1050, document.body.clientWidth || 1050);
function chart(id, series, data, bands) {{
  const opts = {{width, height: 220, scales: {{x: {{time: false}}, y: {{range: (u, lo, hi) => [0, Math.max(hi, 1)]}}}}, axes: [{{label: "s"}}, {{}}],
                 series: [{{label: "t"}}, ...series], bands: bands || []}};
  return new uPlot(opts, [t, ...data], document.getElementById(id));
}}
const hit = col("HIT"), stale = col("STALE"), miss = col("MISS"), errors = col("errors");
const sum = (...cs) => t.map((_, i) => cs.reduce((a, c) => a + c[i], 0));
chart("states", [
  {{label: "HIT", stroke: "#1a7f37", fill: "#1a7f3755"}},
  {{label: "+ STALE", stroke: "#9a6700", fill: "#9a670055"}},
  {{label: "+ MISS", stroke: "#0969da", fill: "#0969da55"}},
  {{label: "+ errors", stroke: "#cf222e", fill: "#cf222e55"}},
], [hit, sum(hit, stale), sum(hit, stale, miss), sum(hit, stale, miss, errors)],
   [{{series: [2, 1]}}, {{series: [3, 2]}}, {{series: [4, 3]}}]);
chart("latency", [{{label: "p50", stroke: "#0969da"}}, {{label: "p99", stroke: "#cf222e"}}], [col("p50_ms"), col("p99_ms")]);
chart("staleness", [{{label: "staleness p99", stroke: "#9a6700"}}], [col("staleness_p99_s")]);
chart("regenerations", [{{label: "regenerations", stroke: "#8250df"}}], [col("regenerations")]);
document.body.dataset.charts = document.querySelectorAll(".uplot").length;
</script>
</body></html>
"""


def vendored(name: str) -> str:
    """A file of the vendored uPlot (one copy, shared with the dashboard)."""
    return files("isr.http").joinpath("vendor", name).read_text()


def render_html(report: Report) -> str:
    served = sum(report.states.values())
    rows = []
    for name in ("all", *STATES):
        points = report.latency_ms[name]
        count = report.requests if name == "all" else report.states[name]
        share = f"{count / served:.1%}" if served and name != "all" else ""
        cells = "".join(f"<td>{points[p]:.2f}</td>" for p in ("p50", "p90", "p99", "max"))
        rows.append(f"<tr><td>{name}</td><td>{count:,}</td><td>{share}</td>{cells}</tr>")
    mode = report.workload.get("mode", "")
    headline = f"{report.requests:,} requests in {report.duration_s:g} s: {report.achieved_rate:,.0f} req/s"
    headline += f"; {report.errors:,} errors; {report.regenerations:,} regenerations seen" + (
        f" ({mode})" if mode else ""
    )
    if mode == "simulated":
        headline += f"; {report.workload['renders']:,} renders ({report.workload['renders_per_path']:g} per path)"
    s = report.staleness_s
    staleness = f"staleness served: p50 {s['p50']:.3g} s, p99 {s['p99']:.3g} s, max {s['max']:.3g} s; stale share {s['stale_share']:.1%}"
    warnings = "".join(f"<p class='warn'>warning: {escape(w)}</p>" for w in report.warnings)
    data = orjson.dumps(report.as_dict()).decode().replace("</", "<\\/")  # no early </script>
    return _PAGE.format(
        css=vendored("uPlot.min.css"), js=vendored("uPlot.iife.min.js"), headline=escape(headline),
        warnings=warnings, rows="".join(rows), staleness=escape(staleness), data=data,
    )  # fmt: skip


def write_html(report: Report, path: Path) -> None:
    try:
        path.write_text(render_html(report))
    except OSError as exc:
        raise IsrError(f"cannot write {path}: {exc.strerror or exc}") from None
