"""The dashboard in a real browser (issue 5): headless Chromium from Debian, driven by
Selenium, against `isr serve` on the logs site (loopback: no token).

It opens /_isr/, waits for the live stream, sees a request made after the page loaded
appear, then filters by function with the drop-down. It needs /usr/bin/chromium and
/usr/bin/chromedriver (`apt-get install chromium chromium-driver`); without them it fails.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Server, Site
from logs_support import HELLO, ISR, OTHER, SSR, logs_site, unique

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
README_SCREENSHOT = Path("/tmp/isr-dashboard.png")
WAIT_S = 15.0


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return logs_site(tmp_path)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"the dashboard browser test needs Debian's Chromium and its driver; missing: {', '.join(missing)}. "
            "Install them with: apt-get update && apt-get install -y chromium chromium-driver",
            pytrace=False,
        )
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def live(site: Site, request: pytest.FixtureRequest) -> Iterator[Server]:
    """The server; stopped gracefully at teardown although the page's log stream is open."""
    with Server(site).running() as server, server.watched(request):
        yield server


def lines(driver: Any) -> list[tuple[str, str]]:
    """(data-function, text) of every line of the live log stream, newest first."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    found = []
    for element in driver.find_elements(By.CSS_SELECTOR, "#stream .line"):
        try:
            found.append((element.get_attribute("data-function") or "", element.text))
        except StaleElementReferenceException:  # the stream was just re-rendered
            continue
    return found


def test_dashboard_streams_live_logs_and_filters_by_function(live: Server, browser: Any, tmp_path: Path) -> None:
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    # the functions table and the stream are re-rendered while we look: retry those reads
    wait = WebDriverWait(browser, WAIT_S, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,))

    def until(check: Any, what: str) -> Any:
        try:
            return wait.until(lambda d: check())
        except TimeoutException as exc:  # say what did not happen, keep a picture of the page
            browser.save_screenshot(str(tmp_path / "failure.png"))
            raise AssertionError(
                f"{what} did not happen within {WAIT_S}s ({type(exc).__name__}); stream: {lines(browser)[:10]}\n"
                f"status: {browser.find_element(By.ID, 'status').text!r}"
            ) from None

    # a few invocations before the page loads: the dashboard shows recent ones too
    live.page("/isr/home")
    live.page("/ssr?tag=dash")
    live.get("/api/boom/dash")

    browser.get(live.url + "/_isr/")
    assert "isr" in browser.title, browser.title
    until(
        lambda: browser.find_element(By.ID, "status").text == "live",
        "the live log stream connecting",
    )
    until(
        lambda: len(browser.find_elements(By.CSS_SELECTOR, "#functions tbody tr")) >= 7,
        "the functions table filling",
    )
    table = browser.find_element(By.ID, "functions").text
    for column in ("route", "kind", "bundle", "invocations", "errors", "p50", "p99"):
        assert column in table, f"no {column!r} column in the functions list:\n{table}"
    for route in ("/isr/[name]", "/api/hello", "/api/other", "/ssr"):
        assert route in table, f"{route} not in the functions list:\n{table}"
    cache = browser.find_element(By.ID, "cache").text.lower()
    for figure in (
        "hit",
        "stale",
        "miss",
        "hit ratio",
        "regenerations",
        "failures",
        "records",
        "bytes",
    ):
        assert figure in cache, f"{figure!r} not in the cache statistics:\n{cache}"

    # the charts over time: four uPlot canvases, fed per-second buckets by the stats sampler
    until(lambda: int(browser.find_element(By.ID, "charts").get_attribute("data-points") or 0) >= 2,
          "the charts receiving per-second buckets")  # fmt: skip
    charts = browser.find_elements(By.CSS_SELECTOR, "#charts .uplot canvas")
    assert len(charts) == 4, f"{len(charts)} chart canvases, not 4"
    labels = ("HIT", "STALE", "MISS", "pages/isr/[name].py", "pages/isr/[name].py p99")
    until(  # a function's first invocations reach the stats with the next log flush, then the next poll draws them
        lambda: all(label in browser.find_element(By.ID, "charts").text for label in labels),
        f"the charts' legends naming {labels}",
    )
    series = live.get("/_isr/stats").json()["series"]
    assert sum(b["MISS"] for b in series) >= 1 and any(b["functions"] for b in series), series

    # a request made after the page loaded shows up in the stream
    fresh = unique("after-load")
    live.page(f"/isr/{fresh}")
    until(
        lambda: any(f"/isr/{fresh}" in text for _, text in lines(browser)),
        f"a log line for /isr/{fresh}",
    )
    line = next(text for _, text in lines(browser) if f"/isr/{fresh}" in text)
    assert "render" in line and "200" in line and "MISS" in line, line
    assert f"isr-print:{fresh}" in line, f"the printed lines are not shown with the record: {line!r}"

    # filter by one function with the drop-down
    until(lambda: any(o.get_attribute("value") == ISR for o in browser.find_elements(By.CSS_SELECTOR, "#filter option")),
          "the function filter listing pages/isr/[name].py")  # fmt: skip
    Select(browser.find_element(By.ID, "filter")).select_by_value(ISR)
    until(lambda: any(f"/isr/{fresh}" in text for _, text in lines(browser)) and all(f == ISR for f, _ in lines(browser)),
          "the stream showing only pages/isr/[name].py")  # fmt: skip
    until(
        lambda: browser.find_element(By.ID, "status").text == "live",
        "the filtered stream connecting",
    )

    other, chosen = unique("other"), unique("chosen")
    live.page(f"/api/other?tag={other}")
    live.page(f"/api/hello?tag={other}")
    live.page(f"/isr/{chosen}")
    until(
        lambda: any(f"/isr/{chosen}" in text for _, text in lines(browser)),
        f"a log line for /isr/{chosen} (the chosen function)",
    )
    shown = lines(browser)
    assert all(function == ISR for function, _ in shown), f"lines of other functions under the filter: {shown}"
    assert not any(other in text for _, text in shown), shown
    browser.save_screenshot(str(tmp_path / "dashboard-filtered.png"))
    assert (tmp_path / "dashboard-filtered.png").stat().st_size > 10_000

    errors = [
        e for e in browser.get_log("browser") if e.get("level") == "SEVERE" and "favicon" not in e.get("message", "")
    ]
    assert not errors, f"errors in the browser console: {errors}"

    # for the README (not asserted): all functions, a little of everything
    Select(browser.find_element(By.ID, "filter")).select_by_value("")
    live.page(f"/api/hello?tag={unique('readme')}")
    until(lambda: {HELLO, ISR, SSR} <= {f for f, _ in lines(browser)}, "the unfiltered stream")
    live.page(f"/api/other?tag={unique('readme')}")
    until(lambda: OTHER in {f for f, _ in lines(browser)}, "the unfiltered stream")

    def row(route: str) -> list[str]:
        for tr in browser.find_elements(By.CSS_SELECTOR, "#functions tbody tr"):
            cells = [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            if cells and cells[0] == route:
                return cells
        return []

    # the functions list refreshes itself: 3 renders of /isr/[name], 2 calls of /api/hello
    until(lambda: row("/isr/[name]")[3:5] == ["3", "0"] and row("/api/hello")[3:5] == ["2", "0"]
          and row("/api/boom/[n]")[3:5] == ["1", "1"], "the functions list counting the invocations")  # fmt: skip
    browser.save_screenshot(str(tmp_path / "dashboard.png"))
    try:
        shutil.copyfile(tmp_path / "dashboard.png", README_SCREENSHOT)
    except OSError:
        pass
