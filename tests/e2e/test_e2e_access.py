"""Who may open the operator pages (SPEC §5; issue 9, item 1), against a real `isr serve`.

Open without a token only to a loopback request that names a loopback host and carries
no proxy header, whatever address the server listens on: a reverse proxy on the same
machine and DNS rebinding must not open them. Everyone else shows the revalidate token
(Bearer) or the sign-in form's session cookie, which is signed, expiring and never the
token; wrong tokens are slowed down.

The logs site's .env sets ISR_REVALIDATE_TOKEN. Wrong tokens are counted per client
address (127.0.0.1 for every request here), so the module server sees fewer than
FREE_FAILURES of them; the throttle and the token-change tests use servers of their own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from e2e_support import TRACEBACK, Response, Server, Site, raw_request, wait_for
from logs_support import SSE, TOKEN, has_line, logs_site, unique

from isr.http.session import SESSION_S, Sessions
from isr.http.throttle import FREE_FAILURES

PAGES = ("/_isr/", "/_isr", "/_isr/stats", "/_isr/metrics", "/_isr/logs", "/_isr/logs?follow=1")
PROXIED = (
    {"X-Forwarded-For": "203.0.113.7"},
    {"Forwarded": "for=203.0.113.7;proto=https"},
    {"X-Real-IP": "203.0.113.7"},
)
FOREIGN_HOSTS = ("evil.example", "evil.example:3000", "localhost.evil.example", "127.0.0.1.nip.io")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# What the pages show when open: the dashboard's stream, the stats, the metrics.
DATA_MARKERS = ('id="stream"', '"functions"', "isr_requests", '"hit_ratio"')


@pytest.fixture(scope="module")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The default listener (127.0.0.1), which today's code opens to every request."""
    with Server(logs_site(tmp_path_factory.mktemp("access"))).running() as server:
        yield server


@pytest.fixture
def live(loopback: Server, request: pytest.FixtureRequest) -> Iterator[Server]:
    with loopback.watched(request) as server:
        yield server


@pytest.fixture
def own(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    """A server of the test's own (its wrong-token count starts at zero)."""
    with Server(logs_site(tmp_path)).running() as server, server.watched(request):
        yield server


def fetch(server: Server, path: str, headers: dict[str, str]) -> Response:
    """GET; an open log stream is read up to its first comment, then closed."""
    if "follow=1" not in path:
        return server.get(path, headers=headers)
    stream = SSE(server.port, headers=headers)
    try:
        if stream.status == 200:
            stream.wait_comment("connected")
            return Response(200, stream.headers, b"", 0.0)
        return Response(stream.status, stream.headers, stream.response.read(), 0.0)
    finally:
        stream.close()


def assert_refused(resp: Response, path: str, sent: dict[str, str], status: int = 401) -> None:
    what = f"GET {path} with {sent}"
    assert resp.status == status, f"{what}: {resp.describe()}"
    for marker in (*DATA_MARKERS, TOKEN, TRACEBACK):
        assert marker not in resp.text, f"{what} shows {marker!r}: {resp.describe()}"
    if path in ("/_isr", "/_isr/"):
        assert "text/html" in (resp.header("content-type") or ""), resp.describe()
    else:
        assert resp.json()["error"]["code"] in ("UNAUTHORIZED", "FORBIDDEN"), resp.describe()


def sign_in(server: Server, token: str, headers: dict[str, str] | None = None) -> Response:
    body = urlencode({"token": token}).encode()
    return server.request("POST", "/_isr/login", headers={**FORM, **(headers or {})}, body=body)


def session_cookie(resp: Response) -> str:
    """The `isr_session=...` pair of a successful sign-in's Set-Cookie."""
    assert resp.status == 303 and resp.header("location") == "/_isr/", resp.describe()
    set_cookie = resp.header("set-cookie") or ""
    assert set_cookie.startswith("isr_session="), resp.describe()
    return set_cookie.split(";", 1)[0]


def test_a_request_through_a_proxy_gets_no_data_without_the_token(live: Server) -> None:
    tag = unique("proxied")
    live.page(f"/api/hello?tag={tag}")  # a log line the logs must not show
    for sent in PROXIED:
        for path in PAGES:
            resp = fetch(live, path, sent)
            assert_refused(resp, path, sent)
            assert tag not in resp.text, resp.describe()


def test_a_foreign_host_gets_no_data_without_the_token(live: Server) -> None:
    """DNS rebinding: a page of evil.example resolved to 127.0.0.1 reads what its Host names."""
    for host in FOREIGN_HOSTS:
        for path in PAGES:
            sent = {"Host": host}
            assert_refused(fetch(live, path, sent), path, sent)


def test_a_request_without_host_gets_no_data(live: Server) -> None:
    status, _, body = raw_request(live.port, b"GET /_isr/stats HTTP/1.0\r\n\r\n")
    assert status == 401 and b'"functions"' not in body, body


def test_a_bare_nginx_proxy_pass_gets_no_data(live: Server) -> None:
    """What nginx's `proxy_pass http://127.0.0.1:PORT;` sends by default: HTTP/1.0, Host
    127.0.0.1:PORT, Connection: close and no proxy header, from loopback."""
    request = f"GET /_isr/stats HTTP/1.0\r\nHost: 127.0.0.1:{live.port}\r\nConnection: close\r\n\r\n".encode()
    status, _, body = raw_request(live.port, request)
    assert status == 401 and b'"functions"' not in body, body


def test_a_loopback_request_naming_a_loopback_host_is_open(live: Server) -> None:
    port = live.port
    for host in ("127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", f"LocalHost:{port}", f"[::1]:{port}"):
        for path in PAGES:
            resp = fetch(live, path, {"Host": host})
            assert resp.status == 200, f"GET {path} with Host {host}: {resp.describe()}"
    assert 'id="stream"' in live.get("/_isr/").text


def test_the_bearer_token_opens_every_page_through_a_proxy(live: Server) -> None:
    for sent in (*PROXIED, {"Host": "evil.example"}):
        for path in PAGES:
            resp = fetch(live, path, {**sent, "Authorization": f"Bearer {TOKEN}"})
            assert resp.status == 200, f"GET {path} with {sent} and the token: {resp.describe()}"
    stats = live.get("/_isr/stats", headers={**PROXIED[0], "Authorization": f"Bearer {TOKEN}"})
    assert "functions" in stats.json(), stats.describe()


def test_a_wrong_or_undecodable_bearer_is_401(live: Server) -> None:
    """Two wrong tries of this module's budget: a wrong token, and one that is no UTF-8."""
    wrong = live.get("/_isr/stats", headers={**PROXIED[0], "Authorization": "Bearer not-the-token"})
    assert_refused(wrong, "/_isr/stats", {"Authorization": "Bearer not-the-token"})
    raw = (
        b"GET /_isr/stats HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n"
        b"Authorization: Bearer \xff\xfe\r\n\r\n"
    )
    status, headers, body = raw_request(live.port, raw)
    assert status == 401, (status, headers, body[:500])
    assert b'"functions"' not in body and TRACEBACK.encode() not in body, body[:500]
    assert json.loads(body)["error"]["code"] == "UNAUTHORIZED", body[:500]


def test_the_sign_in_cookie_is_a_session_not_the_token(live: Server) -> None:
    """One wrong try of this module's budget: the wrong sign-in."""
    wrong = sign_in(live, "nope", PROXIED[0])
    assert wrong.status == 401 and "isr_session" not in (wrong.header("set-cookie") or ""), wrong.describe()
    assert "<form" in wrong.text and "wrong token" in wrong.text.lower(), wrong.describe()

    resp = sign_in(live, TOKEN, PROXIED[0])
    cookie = session_cookie(resp)
    flags = [f.strip().lower() for f in (resp.header("set-cookie") or "").split(";")[1:]]
    assert TOKEN not in (resp.header("set-cookie") or ""), resp.describe()
    assert "httponly" in flags and "samesite=strict" in flags and "path=/_isr" in flags, flags
    assert f"max-age={SESSION_S}" in flags, flags
    assert "secure" not in flags, f"plain http must not mark it Secure: {flags}"
    for sent in (*PROXIED, {"Host": "evil.example"}):
        for path in PAGES:
            resp = fetch(live, path, {**sent, "Cookie": cookie})
            assert resp.status == 200, f"GET {path} with {sent} and the session: {resp.describe()}"
    dashboard = live.get("/_isr/", headers={**PROXIED[0], "Cookie": cookie})
    assert 'id="stream"' in dashboard.text and 'id="filter"' in dashboard.text, dashboard.text[:1500]


def test_a_sign_in_over_https_marks_the_cookie_secure(live: Server) -> None:
    for sent in ({"X-Forwarded-Proto": "https"}, {"Forwarded": "for=203.0.113.7;proto=https"}):
        resp = sign_in(live, TOKEN, sent)
        session_cookie(resp)
        flags = [f.strip().lower() for f in (resp.header("set-cookie") or "").split(";")[1:]]
        assert "secure" in flags, f"{sent}: {flags}"


def test_an_expired_tampered_or_raw_token_cookie_is_refused(live: Server) -> None:
    good = session_cookie(sign_in(live, TOKEN, PROXIED[0])).split("=", 1)[1]
    expiry, nonce, mac = good.split(".")
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    bad = {
        "expired": Sessions(TOKEN).issue(time.time() - SESSION_S - 5),
        "expiry moved later": f"{int(expiry) + 3600}.{nonce}.{mac}",
        "mac changed": f"{expiry}.{nonce}.{flipped}",
        "signed with another token": Sessions("another-token").issue(time.time()),
        "the raw token": TOKEN,
        "empty": "",
    }
    for what, value in bad.items():
        for path in ("/_isr/", "/_isr/stats"):
            sent = {**PROXIED[0], "Cookie": f"isr_session={value}"}
            assert_refused(live.get(path, headers=sent), path, {"cookie": what})
    ok = live.get("/_isr/stats", headers={**PROXIED[0], "Cookie": f"isr_session={good}"})
    assert ok.status == 200, ok.describe()


def test_an_odd_sign_in_body_is_a_wrong_try_not_an_error(own: Server) -> None:
    bodies = {
        "broken multipart": ("multipart/form-data; boundary=zz", b"--zz\r\ngarbage"),
        "not UTF-8": ("application/x-www-form-urlencoded", b"token=\xff"),
        "JSON": ("application/json", b'{"token": "%s"}' % TOKEN.encode()),
        "too large": ("application/x-www-form-urlencoded", b"token=" + b"a" * 100_000),
    }
    for what, (content_type, body) in bodies.items():
        head = (
            f"POST /_isr/login HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        status, _, reply = raw_request(own.port, head.encode() + body)
        assert status == 401, f"{what}: {status} {reply[:300]!r}"
        assert TRACEBACK.encode() not in reply, reply[:300]
    assert TRACEBACK not in own.output()


def test_repeated_wrong_tokens_get_429_and_a_session_still_works(own: Server) -> None:
    cookie = session_cookie(sign_in(own, TOKEN, PROXIED[0]))
    for n in range(FREE_FAILURES):
        resp = sign_in(own, f"guess-{n}", PROXIED[0])
        assert resp.status == 401, f"wrong try {n + 1}: {resp.describe()}"
    slowed = sign_in(own, "guess-again", PROXIED[0])
    assert slowed.status == 429, slowed.describe()
    assert int(slowed.header("retry-after") or "0") >= 1, slowed.describe()
    assert "isr_session" not in (slowed.header("set-cookie") or ""), slowed.describe()
    wait_for(lambda: "wrong tokens for the operator pages from 127.0.0.1" in own.output(), 5.0, what="a warning in the log")
    right = sign_in(own, TOKEN, PROXIED[0])
    assert right.status == 429, f"while slowed even the right token waits: {right.describe()}"
    bearer = own.get("/_isr/stats", headers={**PROXIED[0], "Authorization": f"Bearer {TOKEN}"})
    assert bearer.status == 429 and bearer.header("retry-after"), bearer.describe()
    assert '"functions"' not in bearer.text, bearer.describe()

    assert own.get("/_isr/stats", headers={**PROXIED[0], "Cookie": cookie}).status == 200
    assert own.get("/_isr/stats").status == 200, "loopback access is never slowed"
    assert own.page("/api/hello").status == 200

    def signed_in() -> bool:
        return sign_in(own, TOKEN, PROXIED[0]).status == 303

    wait_for(signed_in, timeout=5.0, interval=0.2, what="the wait to end and the right token to work")
    again = own.get("/_isr/stats", headers={**PROXIED[0], "Authorization": "Bearer still-wrong"})
    assert again.status == 401, again.describe()
    slower = own.get("/_isr/stats", headers={**PROXIED[0], "Authorization": "Bearer wrong-again"})
    assert slower.status == 429 and int(slower.header("retry-after") or "0") >= 2, slower.describe()


def test_a_new_token_ends_the_sessions_a_restart_keeps(own: Server) -> None:
    """A restarted server (like another process of --workers N) accepts the session; a new token does not."""
    cookie = {**PROXIED[0], "Cookie": session_cookie(sign_in(own, TOKEN, PROXIED[0]))}
    own.restart()
    assert own.get("/_isr/stats", headers=cookie).status == 200
    env = own.site.root / ".env"
    env.write_text(env.read_text().replace(TOKEN, "a-new-token-31f0"))
    own.restart()
    assert_refused(own.get("/_isr/stats", headers=cookie), "/_isr/stats", {"cookie": "of the old token"})
    assert session_cookie(sign_in(own, "a-new-token-31f0", PROXIED[0]))


def test_a_session_is_accepted_by_every_process_of_workers(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    server = Server(logs_site(tmp_path), extra_args=("--workers", "2"))
    server.start()
    try:
        cookie = {**PROXIED[0], "Cookie": session_cookie(sign_in(server, TOKEN, PROXIED[0]))}
        # both processes are up (a row each), and 40 new connections, which the kernel spreads
        # over them, all get in with the one session
        wait_for(lambda: len(server.get("/_isr/stats").json()["servers"]) == 2, 30, interval=0.2, what="both processes")
        for _ in range(40):
            resp = server.get("/_isr/", headers=cookie)  # a new connection: either process
            assert resp.status == 200, resp.describe()
    finally:
        server.stop()
        server.show_output_if_failed(request)


def test_without_a_token_only_loopback_gets_in(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    site: Site = logs_site(tmp_path)
    (site.root / ".env").unlink()
    server = Server(site)
    server.start()
    try:
        assert server.get("/_isr/stats").status == 200
        for sent in (*PROXIED, {"Host": "evil.example"}):
            for path in PAGES:
                resp = fetch(server, path, {**sent, "Authorization": "Bearer anything"})
                assert_refused(resp, path, sent, status=403)
        page = server.get("/_isr/", headers=PROXIED[0])
        assert "ISR_REVALIDATE_TOKEN" in page.text and "<form" not in page.text, page.describe()
        refused = sign_in(server, "", PROXIED[0])
        assert refused.status == 403 and "isr_session" not in (refused.header("set-cookie") or ""), refused.describe()
    finally:
        server.stop()
        server.show_output_if_failed(request)


def test_a_loopback_stream_is_still_live(live: Server) -> None:
    tag = unique("live")
    stream = SSE(live.port)
    try:
        stream.wait_comment("connected")
        live.page(f"/api/hello?tag={tag}")
        event = stream.events_until(lambda e: has_line(e, f"hello-line-1:{tag}"))[-1]
        assert event["path"] == "/api/hello"
    finally:
        stream.close()
