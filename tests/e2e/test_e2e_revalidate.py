"""On-demand revalidation through the real server and CLI (issue 4)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e_support import Server, Site, cli_output, concurrently, wait_for

TOKEN = "e2e-revalidate-token"


@pytest.fixture
def rsite(tmp_path: Any) -> Site:
    site = Site.copy("revalidate", tmp_path)
    (site.root / ".env").write_text(f"ISR_REVALIDATE_TOKEN={TOKEN}\n")
    return site


@pytest.fixture
def rserver(rsite: Site) -> Iterator[Server]:
    server = Server(rsite).start()
    yield server
    server.stop()


def post(server: Server, body: Any, token: str | None = TOKEN) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return post_json(server, "/_isr/revalidate", body, headers)


def post_json(server: Server, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    headers = {"Content-Type": "application/json", **(headers or {})}
    return server.request("POST", path, body=json.dumps(body).encode(), headers=headers)


def value(server: Server, path: str) -> str:
    text = server.page(path).text
    return text.split('<p id="value">')[1].split("</p>")[0]


def cli(site: Site, server: Server, *args: str) -> Any:
    return site.cli("revalidate", *args, "--url", server.url, "--token", TOKEN)


def test_paths_are_regenerated_before_the_call_returns(rserver: Server, rsite: Site) -> None:
    rsite.control("a", value="v1")
    first = rserver.page("/data/a")
    rsite.control("a", value="v2")
    answer = post(rserver, {"paths": ["/data/a"]})
    assert answer.status == 200, answer.describe()
    assert answer.json() == {"revalidated": ["/data/a"], "stale": [], "errors": []}
    after = rserver.page("/data/a")
    assert after.generation != first.generation and after.cache == "HIT"
    assert value(rserver, "/data/a") == "v2"


def test_a_path_without_a_generation_is_generated(rserver: Server, rsite: Site) -> None:
    rsite.control("new", value="fresh")
    assert post(rserver, {"paths": ["/data/new", "/only/a"]}).json()["revalidated"] == ["/data/new", "/only/a"]
    assert rsite.count("new") == 1
    assert rserver.page("/data/new").cache == "HIT"


def test_wrong_or_missing_token_changes_nothing(rserver: Server, rsite: Site) -> None:
    generation = rserver.page("/data/a").generation
    for token in ("wrong", None, TOKEN + "x"):
        answer = post(rserver, {"paths": ["/data/a"], "tags": ["t"]}, token)
        assert answer.status == 401, answer.describe()
        assert "error" in answer.json()
    assert rsite.count("a") == 1
    assert rserver.page("/data/a").generation == generation


def test_no_token_configured_disables_the_endpoint(rsite: Site) -> None:
    (rsite.root / ".env").unlink()
    server = Server(rsite).start()
    try:
        assert post(server, {"paths": ["/data/a"]}).status == 404
        assert post(server, {"paths": ["/data/a"]}, token=None).status == 404
    finally:
        server.stop()


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"paths": "/a"}', b'{"paths": ["relative"]}', b'{"paths": [3]}', b'{"tags": [""]}', b"{}", b'{"path": ["/a"]}'],
)
def test_bad_bodies_get_400_with_a_message(rserver: Server, body: bytes) -> None:
    answer = rserver.request("POST", "/_isr/revalidate", body=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status == 400, answer.describe()
    assert answer.json()["error"]["message"]


def test_errors_are_entries_and_the_previous_generation_stays(rserver: Server, rsite: Site) -> None:
    rsite.control("a", value="good")
    before = rserver.page("/data/a")
    rsite.control("a", value="bad", fail=True)
    answer = post(rserver, {"paths": ["/data/a", "/nowhere/at/all", "/only/zzz", "/ssr", "/api/webhook", "/only/a"]})
    assert answer.status == 207, answer.describe()
    report = answer.json()
    codes = {e["path"]: e["code"] for e in report["errors"]}
    assert codes == {
        "/data/a": "FUNCTION_INVOCATION_FAILED", "/nowhere/at/all": "NOT_FOUND", "/only/zzz": "NOT_FOUND",
        "/ssr": "NOT_CACHED", "/api/webhook": "NOT_CACHED",
    }
    assert report["revalidated"] == ["/only/a"]
    assert all("Traceback" not in e["message"] for e in report["errors"])
    after = rserver.page("/data/a")
    assert after.generation == before.generation and value(rserver, "/data/a") == "good"


def test_tags_mark_cached_paths_stale(rserver: Server, rsite: Site) -> None:
    rsite.control("t1", value="one", tags=["blog"])
    rsite.control("t2", value="two", tags=["blog", "other"])
    rsite.control("t3", value="three", tags=["other"])
    for name in ("t1", "t2", "t3"):
        rserver.page(f"/data/{name}")
    rsite.control("t1", value="one-new", tags=["blog"])
    answer = post(rserver, {"tags": ["blog"]})
    assert answer.status == 200 and sorted(answer.json()["stale"]) == ["/data/t1", "/data/t2"]
    assert rserver.page("/data/t3").cache == "HIT"
    assert rserver.page("/data/t1").cache == "STALE"  # the next request regenerates it
    wait_for(lambda: value(rserver, "/data/t1") == "one-new", 10, what="t1 regenerated after its tag")
    assert rserver.page("/data/t1").cache == "HIT"


def test_stale_marks_survive_a_restart(rserver: Server, rsite: Site) -> None:
    rsite.control("t1", value="one", tags=["blog"])
    rserver.page("/data/t1")
    assert post(rserver, {"tags": ["blog"]}).json()["stale"] == ["/data/t1"]
    rserver.restart()
    assert rserver.page("/data/t1").cache == "STALE"


def test_a_revalidation_during_a_regeneration_is_not_lost(rserver: Server, rsite: Site) -> None:
    """A slow regeneration reads v1, the data changes to v2, a revalidation arrives: v2 wins."""
    rsite.control("race", value="v0")
    rserver.page("/data/race")
    rsite.control("race", value="v1", sleep=1.5)
    slow = threading.Thread(target=lambda: post(rserver, {"paths": ["/data/race"]}))
    slow.start()
    wait_for(lambda: rsite.count("race") == 2, 10, what="the slow regeneration started")
    rsite.control("race", value="v2")
    answer = post(rserver, {"paths": ["/data/race"]})
    slow.join(30)
    assert answer.status == 200, answer.describe()
    assert value(rserver, "/data/race") == "v2"
    assert rsite.count("race") == 3


def test_a_tag_revalidation_during_a_regeneration_is_not_lost(rserver: Server, rsite: Site) -> None:
    """A regeneration reads old data and takes 3 s; the data changes and its tag is revalidated
    meanwhile: what that regeneration stores is stale, so the next request brings the new data."""
    rsite.control("p", value="old", tags=["t"])
    rserver.page("/data/p")
    rsite.control("p", value="old", tags=["t"], sleep=3)
    slow = threading.Thread(target=lambda: post(rserver, {"paths": ["/data/p"]}))
    slow.start()
    wait_for(lambda: rsite.count("p") == 2, 10, what="the slow regeneration started")
    rsite.control("p", value="new", tags=["t"])
    answer = post(rserver, {"tags": ["t"]})
    assert answer.status == 200 and answer.json()["stale"] == ["/data/p"], answer.describe()
    slow.join(30)
    assert rserver.page("/data/p").cache == "STALE"  # the generation that read "old" is stale at once
    wait_for(lambda: value(rserver, "/data/p") == "new", 10, what="the page regenerated with the new data")
    assert rserver.page("/data/p").cache == "HIT"


def test_many_revalidations_during_one_regeneration_collapse(rserver: Server, rsite: Site) -> None:
    rsite.control("many", value="v1")
    rserver.page("/data/many")
    rsite.control("many", value="v2", sleep=1.0)
    first = threading.Thread(target=lambda: post(rserver, {"paths": ["/data/many"]}))
    first.start()
    wait_for(lambda: rsite.count("many") == 2, 10, what="the first regeneration started")
    rsite.control("many", value="v3", sleep=0.5)
    answers = concurrently([lambda: post(rserver, {"paths": ["/data/many"]}) for _ in range(12)])
    first.join(30)
    assert all(a.status == 200 for a in answers)
    assert rsite.count("many") == 3  # the first one, then one follow-up for all twelve
    assert value(rserver, "/data/many") == "v3"


def test_readers_keep_the_previous_generation_while_it_regenerates(rserver: Server, rsite: Site) -> None:
    rsite.control("busy", value="old")
    before = rserver.page("/data/busy")
    rsite.control("busy", value="new", sleep=1.5)
    call = threading.Thread(target=lambda: post(rserver, {"paths": ["/data/busy"]}))
    call.start()
    wait_for(lambda: rsite.count("busy") == 2, 10, what="the regeneration started")
    started = time.monotonic()
    during = rserver.page("/data/busy")
    assert time.monotonic() - started < 0.5
    assert during.generation == before.generation and during.status == 200
    call.join(30)
    assert value(rserver, "/data/busy") == "new"


def test_cli_prints_a_line_per_path_and_exits_by_outcome(rserver: Server, rsite: Site) -> None:
    rsite.control("a", value="x", tags=["cli"])
    rserver.page("/data/a")
    ok = cli(rsite, rserver, "/data/a", "--tag", "cli")
    assert ok.returncode == 0, cli_output(ok)
    assert ok.stdout.startswith("revalidated /data/a in ") and "stale /data/a" not in ok.stdout
    failed = cli(rsite, rserver, "/data/a", "/ssr")
    assert failed.returncode == 1, cli_output(failed)
    assert "error /ssr NOT_CACHED" in failed.stdout and "revalidated /data/a" in failed.stdout


@pytest.mark.parametrize(
    "args",
    [("/data/a", "--token", "wrong"), ("relative",), (), ("/data/a", "--url", "http://127.0.0.1:9")],
)
def test_cli_usage_connection_and_token_errors_exit_2(rserver: Server, rsite: Site, args: tuple[str, ...]) -> None:
    proc = rsite.cli("revalidate", *args, *(() if "--url" in args else ("--url", rserver.url)), *(() if "--token" in args else ("--token", TOKEN)))
    assert proc.returncode == 2, cli_output(proc)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, cli_output(proc)


def test_webhook_function_revalidates_with_isr_revalidate(rserver: Server, rsite: Site) -> None:
    rsite.control("hooked", value="before")
    rserver.page("/data/hooked")
    rsite.control("hooked", value="after")
    refused = post_json(rserver, "/api/webhook?secret=nope", {"paths": ["/data/hooked"]})
    assert refused.status == 401
    answer = post_json(rserver, "/api/webhook?secret=hook-secret", {"paths": ["/data/hooked"]})
    assert answer.status == 200, answer.describe()
    assert answer.json()["revalidated"] == ["/data/hooked"]
    assert value(rserver, "/data/hooked") == "after"


def test_webhook_works_without_a_public_token(rsite: Site) -> None:
    (rsite.root / ".env").unlink()
    rsite.control("hooked", value="before")
    server = Server(rsite).start()
    try:
        server.page("/data/hooked")
        rsite.control("hooked", value="after")
        answer = post_json(server, "/api/webhook?secret=hook-secret", {"paths": ["/data/hooked"]})
        assert answer.status == 200, answer.describe()
        assert value(server, "/data/hooked") == "after"
    finally:
        server.stop()




def test_a_call_with_many_paths_regenerates_them_all_without_throttling(rserver: Server) -> None:
    paths = [f"/data/many{n}" for n in range(150)]
    answer = post(rserver, {"paths": paths})
    assert answer.status == 200, answer.describe()
    assert answer.json() == {"revalidated": paths, "stale": [], "errors": []}
    assert rserver.page("/data/many149").cache == "HIT"
