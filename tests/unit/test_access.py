"""Who may see the operator pages without a token, and the throttle on wrong tokens."""

from unittest import mock

import pytest
from aiohttp import HttpVersion, HttpVersion10, HttpVersion11, web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from isr.http.access import CLOSED, SIGN_IN, WRONG, Gate, client_of, is_local, loopback_address, loopback_host
from isr.http.throttle import FIRST_WAIT_S, FORGET_S, FREE_FAILURES, MAX_WAIT_S, Throttle


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:3000", "127.0.0.1", "127.0.0.1:8080", "[::1]", "[::1]:3000", " localhost "])
def test_loopback_hosts(host: str) -> None:
    assert loopback_host(host)


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "127.0.0.1.nip.io", "::1", "localhost:", "localhost:x", "127.0.0.2", "", "[::1]x", "localhost:3000:1", "\udcff"])
def test_other_hosts(host: str) -> None:
    assert not loopback_host(host)


def test_loopback_addresses() -> None:
    for remote in ("127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"):
        assert loopback_address(remote), remote
    for remote in ("10.0.0.1", "::ffff:10.0.0.1", "2001:db8::1", "", None, "not-an-address"):
        assert not loopback_address(remote), remote


def test_an_ipv6_client_counts_by_its_64() -> None:
    assert client_of("2001:db8:1:2::1") == client_of("2001:db8:1:2:ffff::9") != client_of("2001:db8:1:3::1")
    assert client_of("10.0.0.1") != client_of("10.0.0.2")


def test_a_few_wrong_tries_are_free_then_the_wait_doubles() -> None:
    throttle, now = Throttle(), 1000.0
    for _ in range(FREE_FAILURES):
        assert throttle.wait("a", now) == 0
        throttle.failed("a", now)
    assert throttle.wait("a", now) == FIRST_WAIT_S
    assert throttle.wait("b", now) == 0, "another client is not slowed"
    now += FIRST_WAIT_S
    assert throttle.wait("a", now) == 0
    throttle.failed("a", now)
    assert throttle.wait("a", now) == 2 * FIRST_WAIT_S


def test_the_wait_is_capped_and_forgotten_after_a_quiet_hour() -> None:
    throttle = Throttle()
    for _ in range(FREE_FAILURES + 5_000):  # a guesser that never stops: 2.0 ** 5000 would overflow
        throttle.failed("a", 0.0)
    assert throttle.wait("a", 0.0) == MAX_WAIT_S
    assert throttle.wait("a", FORGET_S + 1) == 0
    throttle.failed("a", FORGET_S + 1)
    assert throttle.wait("a", FORGET_S + 1) == 0, "it starts afresh"


def test_the_table_is_bounded() -> None:
    throttle = Throttle(max_clients=100)
    for n in range(1000):
        for _ in range(FREE_FAILURES):
            throttle.failed(f"c{n}", 0.0)
    assert len(throttle) == 100
    assert throttle.wait("c999", 0.0) > 0 and throttle.wait("c0", 0.0) == 0, "the oldest are dropped"


def mocked(headers: list[tuple[str, str]], remote: str = "127.0.0.1", version: HttpVersion = HttpVersion11) -> web.BaseRequest:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda key, default=None: (remote, 5555) if key == "peername" else default
    return make_mocked_request("GET", "/_isr/stats", headers=CIMultiDict(headers), transport=transport, version=version)


def test_local_is_loopback_peer_loopback_host_and_no_proxy() -> None:
    assert is_local(mocked([("Host", "localhost:3000")]))
    assert not is_local(mocked([("Host", "localhost:3000")], remote="10.1.2.3"))
    assert not is_local(mocked([]))
    assert not is_local(mocked([("Host", "localhost"), ("Host", "evil.example")]))
    for proxy in ("Forwarded", "X-Forwarded-For", "X-Real-IP", "x-forwarded-for", "X-Forwarded-Host", "X-Forwarded-Proto"):
        assert not is_local(mocked([("Host", "127.0.0.1"), (proxy, "")])), proxy
    # nginx's bare `proxy_pass http://127.0.0.1:3000`: no proxy header, a loopback Host, HTTP/1.0
    assert not is_local(mocked([("Host", "127.0.0.1:3000"), ("Connection", "close")], version=HttpVersion10))


def test_the_gate_without_a_token_is_closed_to_all_but_local() -> None:
    gate = Gate("")
    assert gate.check(mocked([("Host", "localhost")]), 0.0) is None
    assert gate.check(mocked([("Host", "evil.example"), ("Authorization", "Bearer ")]), 0.0) is CLOSED


def test_the_gate_asks_for_the_token_and_refuses_a_wrong_one() -> None:
    gate = Gate("tok")
    proxied = [("Host", "example.com"), ("X-Forwarded-For", "1.2.3.4")]
    assert gate.check(mocked(proxied), 0.0) is SIGN_IN
    assert gate.check(mocked([*proxied, ("Authorization", "Bearer tok")]), 0.0) is None
    for wrong in ("Bearer tok2", "Basic tok", "tok", "Bearer tök"):
        assert gate.check(mocked([*proxied, ("Authorization", wrong)]), 0.0) is WRONG, wrong
    cookie = ("Cookie", f"isr_session={gate.sessions.issue(0.0)}")
    assert gate.check(mocked([*proxied, cookie]), 1.0) is None
