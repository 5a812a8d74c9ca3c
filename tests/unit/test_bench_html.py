"""The HTML report: self-contained (uPlot and the data inlined, nothing fetched), with its table."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from isr.bench.html import write_html
from isr.bench.report import Outcome, summarize
from isr.errors import IsrError


def test_html_report_is_self_contained_with_the_summary(tmp_path: Path) -> None:
    outcomes = [
        Outcome(t / 10, 1.0 + t % 7, "HIT" if t % 5 else "STALE", "", 0.5 if t % 5 == 0 else 0.0) for t in range(100)
    ]
    report = summarize(outcomes, 10.0, 10.0)
    report.warnings = ["a <b>warning</b>"]
    path = tmp_path / "report.html"
    write_html(report, path)
    html = path.read_text()
    assert "uPlot" in html and ".uplot" in html  # the library and its CSS inlined
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "something is loaded from the network"
    data = re.search(r'<script type="application/json" id="report">(.*?)</script>', html, re.S)
    assert data is not None and orjson.loads(data.group(1))["series"] == report.series
    assert "80.0%" in html and "20.0%" in html  # HIT and STALE shares in the table
    assert "a &lt;b&gt;warning&lt;/b&gt;" in html
    for chart in ("states", "latency", "staleness", "regenerations"):
        assert f'id="{chart}"' in html


def test_unwritable_file_is_one_error(tmp_path: Path) -> None:
    report = summarize([Outcome(0.0, 1.0, "HIT")], 1.0)
    with pytest.raises(IsrError, match="cannot write"):
        write_html(report, tmp_path / "missing" / "report.html")
