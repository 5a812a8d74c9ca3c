"""Stale-while-revalidate: stale answers at once, one regeneration per path, failed
regenerations keep the last good page and are retried with back-off (issue item 6)."""

from __future__ import annotations

import time

from e2e_support import (
    Server,
    Site,
    concurrently,
    data_path,
    embedded_data,
    rendered_value,
    wait_for,
    wait_until,
)


def test_stale_page_is_served_at_once_and_regenerated_once(server: Server, site: Site) -> None:
    site.control("swr", value="old", revalidate=1)
    first = server.page("/ctl/swr")
    produced = time.monotonic()
    assert first.cache == "MISS" and rendered_value(first.text) == "old"
    # The next generation takes 4 s to render and is fresh for a minute.
    site.control("swr", value="new", revalidate=60, sleep=4)
    wait_until(produced + 1.3)

    stale = server.page("/ctl/swr")
    assert stale.cache == "STALE", stale.describe()
    assert stale.generation == first.generation
    assert rendered_value(stale.text) == "old"
    assert stale.elapsed < 2.5, f"a stale request waited {stale.elapsed:.2f}s for the regeneration"
    wait_for(lambda: site.count("ctl:swr") >= 2, timeout=3, what="the regeneration to start")

    burst = concurrently([lambda: server.get("/ctl/swr") for _ in range(30)])
    for resp in burst:
        assert resp.status == 200, resp.describe()
        assert resp.cache == "STALE", resp.describe()
        assert resp.generation == first.generation
        assert resp.elapsed < 2.5, f"stale request took {resp.elapsed:.2f}s"
    assert site.count("ctl:swr") == 2, "more than one regeneration ran for one path"

    fresh = wait_for(
        lambda: (r := server.get("/ctl/swr")).generation != first.generation and r,
        timeout=10, interval=0.1, what="the regenerated page",
    )  # fmt: skip
    assert fresh.status == 200
    assert rendered_value(fresh.text) == "new"
    assert fresh.cache in ("HIT", "MISS"), fresh.describe()
    again = server.page("/ctl/swr")
    assert again.cache == "HIT" and again.generation == fresh.generation
    assert site.count("ctl:swr") == 2


def test_stale_json_request_also_triggers_one_regeneration(server: Server, site: Site) -> None:
    site.control("swrjson", value="old", revalidate=1)
    first = server.page("/ctl/swrjson")
    produced = time.monotonic()
    build_id = embedded_data(first.text)["build_id"]
    site.control("swrjson", value="new", revalidate=60, sleep=1)
    wait_until(produced + 1.3)
    url = data_path(build_id, "/ctl/swrjson")
    burst = concurrently([lambda: server.get(url) for _ in range(10)] + [lambda: server.get("/ctl/swrjson") for _ in range(10)])
    for resp in burst:
        assert resp.status == 200 and resp.cache == "STALE", resp.describe()
        assert resp.generation == first.generation
    fresh = wait_for(
        lambda: (r := server.get(url)).generation != first.generation and r,
        timeout=10, interval=0.1, what="the regenerated JSON",
    )  # fmt: skip
    assert fresh.json()["props"]["value"] == "new"
    html = server.page("/ctl/swrjson")
    assert html.generation == fresh.generation
    assert embedded_data(html.text) == fresh.json()
    assert site.count("ctl:swrjson") == 2


def test_regeneration_of_one_path_does_not_block_others(server: Server, site: Site) -> None:
    site.control("slowregen", value="old", revalidate=1)
    first = server.page("/ctl/slowregen")
    produced = time.monotonic()
    site.control("slowregen", hold=True, revalidate=60)
    wait_until(produced + 1.3)
    assert server.page("/ctl/slowregen").cache == "STALE"
    wait_for(lambda: site.count("ctl:slowregen") >= 2, timeout=3, what="the regeneration to start")
    other = server.page("/blog/unblocked")
    assert other.elapsed < 3, f"another path waited {other.elapsed:.2f}s behind a held regeneration"
    assert server.page("/ctl/slowregen").generation == first.generation
    site.control("slowregen", value="released", revalidate=60)
    wait_for(
        lambda: rendered_value(server.page("/ctl/slowregen").text) == "released",
        timeout=10, interval=0.1, what="the held regeneration to finish",
    )  # fmt: skip


def test_failed_regeneration_keeps_last_good_page_and_is_retried(server: Server, site: Site) -> None:
    site.control("flaky", value="good", revalidate=1)
    first = server.page("/ctl/flaky")
    produced = time.monotonic()
    site.control("flaky", fail=True, revalidate=1)
    wait_until(produced + 1.3)
    stale = server.page("/ctl/flaky")
    assert stale.cache == "STALE" and stale.generation == first.generation, stale.describe()
    wait_for(lambda: site.count("ctl:flaky") >= 2, timeout=3, what="the failing regeneration")
    failed_at = time.monotonic()

    # The data source recovers. Until the 1 s back-off is over, requests get the last good
    # page and start nothing; then a request retries and the new page appears.
    site.control("flaky", value="recovered", revalidate=60)
    while time.monotonic() < failed_at + 0.7:
        resp = server.get("/ctl/flaky")
        assert resp.status == 200, resp.describe()
        assert resp.cache == "STALE" and resp.generation == first.generation, resp.describe()
        assert rendered_value(resp.text) == "good"
        time.sleep(0.1)
    assert site.count("ctl:flaky") == 2, "retried during the back-off"
    fresh = wait_for(
        lambda: (r := server.get("/ctl/flaky")).generation != first.generation and r,
        timeout=4, interval=0.1, what="a successful retry",
    )  # fmt: skip
    assert fresh.status == 200 and rendered_value(fresh.text) == "recovered"
    assert server.page("/ctl/flaky").cache == "HIT"
    assert site.count("ctl:flaky") == 3


def test_back_off_resets_after_a_success(server: Server, site: Site) -> None:
    site.control("reset", value="one", revalidate=1)
    first = server.page("/ctl/reset")
    produced = time.monotonic()
    site.control("reset", fail=True, revalidate=1)
    wait_until(produced + 1.3)
    assert server.page("/ctl/reset").cache == "STALE"
    wait_for(lambda: site.count("ctl:reset") >= 2, timeout=3, what="the failing regeneration")
    # Succeed on the next retry (after the 1 s back-off), with a 1 s revalidate.
    site.control("reset", value="two", revalidate=1)
    second = wait_for(
        lambda: (r := server.get("/ctl/reset")).generation != first.generation and r,
        timeout=6, interval=0.1, what="the retry to succeed",
    )  # fmt: skip
    assert rendered_value(second.text) == "two"
    assert site.count("ctl:reset") == 3

    def poke(attempts: int) -> bool:
        server.get("/ctl/reset")
        return site.count("ctl:reset") >= attempts

    # Fail again. After a success the back-off starts over at 1 s: the attempt after the
    # next failure comes ~1 s later, not 2 s.
    site.control("reset", fail=True, revalidate=1)
    wait_for(lambda: poke(4), timeout=4, interval=0.1, what="a new failing regeneration")
    wait_for(lambda: poke(5), timeout=3, interval=0.1, what="its retry")
    attempts = site.renders("ctl:reset")
    assert attempts[4] - attempts[3] <= 1.7, f"back-off did not reset after success: {attempts}"


def test_back_off_doubles_up_to_ten_seconds(server: Server, site: Site) -> None:
    """While a regeneration keeps failing, retries come 1, 2, 4, 8, then 10 s apart."""
    site.control("cap", value="good", revalidate=1)
    first = server.page("/ctl/cap")
    produced = time.monotonic()
    site.control("cap", fail=True, revalidate=1)
    wait_until(produced + 1.3)
    started = time.monotonic()
    requests: list[tuple[float, float]] = []  # (sent, answered) in the render log's clock: a retry starts on a request
    while time.monotonic() - started < 27.5 and site.count("ctl:cap") < 7:
        sent = time.time()
        resp = server.get("/ctl/cap")
        requests.append((sent, time.time()))
        assert resp.status == 200 and resp.generation == first.generation, resp.describe()
        assert resp.cache == "STALE", resp.describe()
        time.sleep(0.2)
    attempts = site.renders("ctl:cap")[1:]
    gaps = [round(b - a, 2) for a, b in zip(attempts, attempts[1:])]
    assert len(attempts) >= 6, f"expected retries 1, 2, 4, 8, 10 s apart; gaps {gaps}"
    for before, after, expected in zip(attempts, attempts[1:], [1, 2, 4, 8, 10]):
        assert after - before >= expected - 0.15, f"retried early: gaps {gaps}, expected 1, 2, 4, 8, 10"
        # ...and on the first request sent once it was due (a late one, on a loaded machine, is late through no fault of the server's)
        answered = next(done for sent, done in requests if sent >= before + expected - 0.15)
        assert after <= answered + 0.9, f"not retried when due: gaps {gaps}, expected 1, 2, 4, 8, 10; requests {requests}"


def test_hung_regeneration_is_stopped_at_max_duration(server: Server, site: Site) -> None:
    """pages/hang/*.py have maxDuration 2 s in isr.json: a hung regeneration is stopped,
    the last good page stays, and a later request regenerates the path."""
    site.control("hung", value="before", revalidate=1)
    first = server.page("/hang/hung")
    produced = time.monotonic()
    site.control("hung", hold=True, revalidate=1)
    wait_until(produced + 1.3)
    assert server.page("/hang/hung").cache == "STALE"
    wait_for(lambda: site.count("hang:hung") >= 2, timeout=3, what="the hung regeneration")
    hung_at = time.monotonic()

    def poke(attempts: int) -> bool:
        resp = server.get("/hang/hung")
        assert resp.status == 200 and resp.generation == first.generation, resp.describe()
        assert rendered_value(resp.text) == "before"
        return site.count("hang:hung") >= attempts

    # Stopped after ~2 s, then retried after the back-off, although the first still "hangs".
    wait_for(lambda: poke(3), timeout=6, interval=0.1, what="a retry after the timeout")
    assert time.monotonic() - hung_at >= 2.5, "retried while the hung regeneration should still run"
    site.control("hung", value="after", revalidate=60)
    fresh = wait_for(
        lambda: (r := server.get("/hang/hung")).generation != first.generation and r,
        timeout=10, interval=0.1, what="a successful regeneration",
    )  # fmt: skip
    assert rendered_value(fresh.text) == "after"
