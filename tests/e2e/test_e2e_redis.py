"""Many instances on one Redis (SPEC §7): three `isr serve` instances, one of them
`--workers 2`, on a redis-server of the test's own, behave as one site: one render per
path, one regeneration per stale path, revalidations (paths and tags) served by every
instance within the target, a dead lease holder replaced, and Redis killed under load
without an error on the pages the instances hold."""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from e2e_support import Server, Site, cli_output, concurrently, free_port, wait_for
from redis_support import RedisCluster, RedisServer, have_redis_server

pytestmark = pytest.mark.skipif(not have_redis_server(), reason="redis-server is not installed")

TOKEN = "redis-e2e-token"
TARGET_S = 1.0  # asserted generously: the target is 100 ms, the figure is printed


class Cluster:
    """A Redis and the instances on it, over one copy of the basic site."""

    def __init__(self, site: Site, redis: RedisServer) -> None:
        self.site = site
        self.redis = redis
        self.servers: list[Server] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.redis.port}/0"

    def instance(self, name: str, *args: str) -> Server:
        server = Server(self.site, extra_args=("--cache", self.url, "--instance", name, "--region", "test", *args))
        self.servers.append(server)
        return server.start()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.redis.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("redis-e2e")
    site = Site.copy("basic", tmp)
    with open(site.root / ".env", "a", encoding="utf-8") as env:
        env.write(f"ISR_REVALIDATE_TOKEN={TOKEN}\n")
    shared = Cluster(site, RedisServer(tmp / "redis").start())
    try:
        for name, args in (("a", ()), ("b", ()), ("c", ("--workers", "2"))):
            shared.instance(name, *args)
        yield shared
    finally:
        shared.stop()


@pytest.fixture
def abc(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[list[Server]]:
    servers = cluster.servers[:3]
    yield servers
    for server in servers:
        server.show_output_if_failed(request)


def revalidate(server: Server, paths: list[str] = [], tags: list[str] = []) -> dict[str, list[str]]:  # noqa: B006
    answer = server.request("POST", "/_isr/revalidate", body=json.dumps({"paths": paths, "tags": tags}).encode(), headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status == 200, answer.describe()
    result: dict[str, list[str]] = answer.json()
    return result


def test_a_herd_on_a_new_path_across_instances_gives_one_render(abc: list[Server], cluster: Cluster) -> None:
    cluster.site.control("herd", value="v1", sleep=0.5)
    answers = concurrently([lambda s=s: s.get("/ctl/herd") for s in abc for _ in range(10)])
    assert all(a.status == 200 for a in answers), [a.describe() for a in answers if a.status != 200]
    assert len({a.generation for a in answers}) == 1
    assert cluster.site.count("ctl:herd") == 1


def test_every_server_process_shares_its_counters_through_redis(abc: list[Server], cluster: Cluster) -> None:
    """The rows of a cluster-wide dashboard: one per server process (c runs two), with the instance's labels."""
    client = redis.Redis(port=cluster.redis.port)
    try:
        def rows() -> dict[str, dict[str, object]] | None:
            found = {k.decode(): json.loads(v)["counters"] for k, v in client.hgetall("isr:reports").items()}
            return found if sorted(str(v["instance"]) for v in found.values()) == ["a", "b", "c", "c"] else None

        found = wait_for(rows, 10, what="a row per server process")
    finally:
        client.close()
    assert {v["region"] for v in found.values()} == {"test"}
    assert all(isinstance(v["hit"], int) and "in_flight" in v for v in found.values())
    abc[1].page("/about")
    servers = abc[0].get("/_isr/stats").json()["servers"]  # any instance's dashboard shows the whole cluster
    assert sorted(row["instance"] for row in servers) == ["a", "b", "c", "c"]
    assert {row["server"] for row in servers} == set(found)


def test_a_stale_path_is_regenerated_once_across_instances(abc: list[Server], cluster: Cluster) -> None:
    site = cluster.site
    site.control("stale", value="v1", revalidate=1)
    first = abc[0].page("/ctl/stale").generation
    for server in abc:
        for _ in range(4):  # every instance (and both processes of c) holds it
            assert server.page("/ctl/stale").generation == first
    site.control("stale", value="v2", revalidate=60, sleep=0.5)
    wait_for(lambda: abc[1].get("/ctl/stale").cache == "STALE", 5, what="the page to go stale")
    answers = concurrently([lambda s=s: s.get("/ctl/stale") for s in abc for _ in range(10)])
    assert all(a.status == 200 for a in answers)
    wait_for(lambda: all(s.get("/ctl/stale").generation != first for s in abc), 5, what="the new generation everywhere")
    assert site.count("ctl:stale") == 2  # the first render and one regeneration


def _propagation(abc: list[Server], path: str) -> float:
    """Revalidate on A; seconds from the call's return until B and C serve the new generation."""
    old = abc[0].page(path).generation
    revalidate(abc[0], [path])
    returned = time.monotonic()
    for server in abc[1:]:
        wait_for(lambda s=server: s.get(path).generation != old, 5, interval=0.005, what=f"{path} on port {server.port}")
    return time.monotonic() - returned


def test_a_revalidation_on_one_instance_is_served_by_the_others_within_the_target(abc: list[Server], cluster: Cluster) -> None:
    cluster.site.control("fanout", revalidate=600)
    for server in abc:
        for _ in range(4):
            server.page("/ctl/fanout")
    times = [_propagation(abc, "/ctl/fanout") for _ in range(10)]
    print(f"propagation to B and C: median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms")
    assert max(times) < TARGET_S


def test_a_tag_revalidated_on_one_instance_marks_the_page_stale_on_all(abc: list[Server], cluster: Cluster) -> None:
    site = cluster.site
    before = {s.port: s.page("/blog/tagged").generation for s in abc}
    assert len(set(before.values())) == 1
    renders = site.count("blog:tagged")
    assert revalidate(abc[0], tags=["blog"])["stale"] == ["/blog/tagged"]
    marked = time.monotonic()

    def told(server: Server) -> bool:
        """It serves the page STALE, or already the generation that a STALE answer set off on
        another instance (both news may reach it in one sync): not the old one as a HIT."""
        answer = server.get("/blog/tagged")
        return answer.cache == "STALE" or answer.generation not in before.values()

    for server in abc[1:]:  # on their next requests
        wait_for(lambda s=server: told(s), TARGET_S, interval=0.005, what="the mark on another instance")
    print(f"tag mark seen by B and C after {(time.monotonic() - marked) * 1000:.1f} ms")
    wait_for(lambda: all(s.get("/blog/tagged").generation not in before.values() for s in abc), 5, what="the regeneration everywhere")
    assert site.count("blog:tagged") == renders + 1  # one regeneration, whichever instance ran it


def test_a_killed_lease_holder_is_replaced_once_its_lease_lapses(abc: list[Server], cluster: Cluster) -> None:
    site = cluster.site
    site.control("orphan", value="v1", hold=True)
    holder = cluster.instance("holder")
    threading.Thread(target=_quietly, args=(lambda: holder.get("/ctl/orphan", timeout=30),), daemon=True).start()
    wait_for(lambda: site.count("ctl:orphan") == 1, 10, what="the holder's render to start")  # it holds the lease
    holder.kill9()
    killed = time.monotonic()
    site.control("orphan", value="v2")
    answer = abc[0].page("/ctl/orphan", timeout=40)
    waited = time.monotonic() - killed
    print(f"another instance regenerated {waited:.1f} s after the lease holder's kill -9")
    assert "v2" in answer.text and answer.cache == "MISS"
    assert site.count("ctl:orphan") == 2
    assert waited < 15  # the lease lapses 10 s after its last renewal


def _quietly(call: Callable[[], object]) -> None:
    """A request to a server the test kills meanwhile: its connection error is expected."""
    try:
        call()
    except OSError:
        pass


def test_a_build_into_redis_is_served_as_hits_by_fresh_instances(cluster: Cluster, tmp_path: Path) -> None:
    site = Site.copy("basic", tmp_path)
    for name in ("moved.py", "moved.html", "moved_perm.py", "moved_perm.html"):  # a redirect fails a build
        (site.pages / name).unlink()
    url = f"{cluster.url}?prefix=build"
    built = site.cli("build", str(site.root), "--cache", url)
    assert built.returncode == 0, cli_output(built)
    renders = site.count("blog:hello")
    assert renders == 1
    fresh = [Server(site, extra_args=("--cache", url)).start() for _ in range(2)]
    try:
        for server in fresh:
            answer = server.page("/blog/hello")
            assert answer.cache == "HIT", answer.describe()
        assert site.count("blog:hello") == renders  # nothing rendered again
    finally:
        for server in fresh:
            server.stop()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://127.0.0.1:{free}/0", "cannot reach redis"),
        ("redis://:sekrit-xyz@127.0.0.1:{guarded}/0", "refused the credentials"),
        ("redis://127.0.0.1:notaport", "not a Redis URL"),
        ("redis://127.0.0.1:6379/0?timeout=-1", "timeout='-1'"),
    ],
)
def test_a_bad_redis_url_is_one_line_and_a_failed_start(cluster: Cluster, tmp_path: Path, url: str, message: str) -> None:
    guarded = RedisServer(tmp_path / "guarded", args=("--requirepass", "right")).start() if "guarded" in url else None
    try:
        target = url.format(free=free_port(), guarded=guarded.port if guarded else 0)
        proc = cluster.site.cli("serve", str(cluster.site.root), "--port", str(free_port()), "--cache", target, timeout=30)
    finally:
        if guarded is not None:
            guarded.stop()
    assert proc.returncode != 0, cli_output(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr, cli_output(proc)
    assert "sekrit-xyz" not in lines[0]


def test_redis_killed_under_load_leaves_held_pages_served_and_recovers(abc: list[Server], cluster: Cluster) -> None:
    """Last: it kills the module's Redis (and starts it again, empty)."""
    site = cluster.site
    held = [f"/ctl/held-{n}" for n in range(5)]
    for path in held:
        site.control(path.rsplit("/", 1)[1], revalidate=600)
        for server in abc:
            for _ in range(3):
                server.page(path)
    cluster.redis.kill9()
    down = time.monotonic()
    errors, answers = [], 0
    while time.monotonic() - down < 3.0:
        for server in abc:
            for path in held:
                answer = server.get(path, timeout=5)
                answers += 1
                if answer.status != 200:
                    errors.append(answer.describe())
    assert not errors, errors[:3]
    print(f"{answers} requests for held pages while Redis was down: none failed")
    new = abc[1].get("/ctl/while-down", timeout=10)  # a miss renders locally and is served
    assert new.status == 200 and new.cache == "MISS", new.describe()
    for server in abc:
        assert "unavailable" in server.output()
    refused = abc[0].request("POST", "/_isr/revalidate", body=b'{"tags": ["blog"]}', headers={"Authorization": f"Bearer {TOKEN}"})
    assert refused.status == 503 and refused.json()["error"]["code"] == "CACHE_UNAVAILABLE", refused.describe()  # a mark no other instance would see
    cluster.redis.start()  # the same port, empty
    for server in abc:
        wait_for(lambda s=server: "is back" in s.output(), 10, what=f"port {server.port} to reconnect")
    site.control("after", revalidate=600)
    for server in abc:
        server.page("/ctl/after")
    assert _propagation(abc, "/ctl/after") < TARGET_S  # one Redis again: revalidations reach everyone
    metrics = abc[0].page("/_isr/metrics").text
    assert 'isr_instance{build="' in metrics and 'isr_instance="a",region="test"' in metrics
    outages = re.search(r"^isr_cache_outages_total (\S+)$", metrics, re.M)
    assert outages is not None and float(outages[1]) >= 1, metrics  # a restart under load may count two
    assert "isr_cache_available 1.0" in metrics
    assert '"region":"test"' in abc[0].page("/_isr/logs").text  # log records carry the region


def test_instances_on_a_redis_cluster_behave_as_one(cluster: Cluster, tmp_path: Path) -> None:
    """Three masters: every key of a build hashes to one slot; pub/sub reaches every node's subscribers."""
    nodes = RedisCluster.start(tmp_path / "cluster")
    site = Site.copy("basic", tmp_path / "cluster-site")
    (site.root / ".env").write_text(f"ISR_REVALIDATE_TOKEN={TOKEN}\n")
    url = nodes.nodes[1].url  # any node: the cluster is found by itself
    servers = [Server(site, extra_args=("--cache", url)).start() for _ in range(2)]
    try:
        site.control("herd", value="v1", sleep=0.3)
        answers = concurrently([lambda s=s: s.get("/ctl/herd") for s in servers for _ in range(8)])
        assert all(a.status == 200 for a in answers) and site.count("ctl:herd") == 1
        site.control("herd", revalidate=600)
        took = _propagation(servers, "/ctl/herd")
        print(f"propagation on a cluster: {took * 1000:.1f} ms")
        assert took < TARGET_S
    finally:
        for server in servers:
            server.stop()
        nodes.stop()
