"""`isr bench --html`: the report opens in headless Chromium with its four charts drawn and no
JS errors (offline: everything is inlined). Uses the dashboard test's Chromium fixture."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from e2e_support import REPO
from test_e2e_dashboard_browser import browser  # noqa: F401  (the fixture)

SITE = REPO / "tests" / "sites" / "bench"


def test_html_report_renders_its_charts_in_chromium(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    out = tmp_path / "report.html"
    command = [sys.executable, "-m", "isr", "bench", str(SITE), "--simulate", "--path", "/fresh", "--path", "/static",
               "--rate", "200", "--duration", "20s", "--html", str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    browser.get(out.as_uri())
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-charts") == "4")
    canvases = browser.find_elements(By.CSS_SELECTOR, ".chart .uplot canvas")
    assert len(canvases) == 4
    assert all(int(c.get_attribute("width") or 0) > 100 for c in canvases)
    summary = browser.find_element(By.ID, "summary").text
    assert "HIT" in summary and "STALE" in summary and "4,000" in summary, summary
    legend = browser.find_element(By.ID, "states").text
    assert "HIT" in legend and "+ STALE" in legend, legend
    errors = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert not errors, f"errors in the browser console: {errors}"
    browser.save_screenshot(str(tmp_path / "report.png"))
