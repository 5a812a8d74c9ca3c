"""rediss:// against a redis-server of the test's own that speaks TLS only: certificates
checked against a CA or not at all, client certificates, and one line when TLS fails."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from isr.cache.redis import connect
from isr.errors import CacheError

from cache_support import stored

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from redis_support import RedisServer, TlsFiles, have_tls  # noqa: E402

pytestmark = pytest.mark.skipif(not have_tls(), reason="redis-server without TLS, or no openssl")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return TlsFiles.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server(tmp_path: Path, tls: TlsFiles) -> Iterator[RedisServer]:
    started = RedisServer(tmp_path / "redis", tls=tls).start()
    yield started
    started.stop()


async def round_trip(url: str) -> None:
    backend = connect(url)
    try:
        assert await backend.put("b1", [stored("/a", 1.0, ("t",), b"over TLS")]) == [True]
        assert await backend.get("b1", "/a") == b"over TLS"
        assert await backend.mark_tag("b1", "t", 5.0) == ["/a"]
        assert (await backend.changes("b1", -1))[0] > 0
    finally:
        await backend.close()


async def test_rediss_without_checking_the_certificate(server: RedisServer) -> None:
    await round_trip(f"{server.url}?ssl_cert_reqs=none")


async def test_rediss_checking_the_certificate_against_a_ca(server: RedisServer, tls: TlsFiles) -> None:
    await round_trip(f"{server.url}?ssl_ca_certs={tls.ca}&prefix=checked&timeout=2")


async def test_rediss_with_a_client_certificate(tmp_path: Path, tls: TlsFiles) -> None:
    mutual = RedisServer(tmp_path / "redis", tls=tls, args=("--tls-auth-clients", "yes")).start()
    try:
        await round_trip(f"{mutual.url}?ssl_ca_certs={tls.ca}&ssl_certfile={tls.client_cert}&ssl_keyfile={tls.client_key}")
        with pytest.raises(CacheError, match="cannot reach redis") as raised:  # no client certificate: refused
            connect(f"{mutual.url}?ssl_ca_certs={tls.ca}")
        assert "\n" not in str(raised.value)
    finally:
        mutual.stop()


@pytest.mark.parametrize(
    "query",
    ["", "?ssl_cert_reqs=required"],  # the default checks the certificate, and the system's CAs did not sign it
)
async def test_a_certificate_no_trusted_ca_signed_is_one_line(server: RedisServer, query: str) -> None:
    with pytest.raises(CacheError, match="cannot reach redis.*certificate verify failed") as raised:
        connect(f"{server.url}{query}")
    assert "\n" not in str(raised.value)


async def test_plain_redis_to_a_tls_port_is_one_line_within_the_timeout(server: RedisServer) -> None:
    began = time.monotonic()
    with pytest.raises(CacheError, match="cannot reach redis") as raised:
        connect(server.url.replace("rediss://", "redis://"))
    assert "\n" not in str(raised.value) and time.monotonic() - began < 2.0


@pytest.mark.parametrize(
    ("query", "message"),
    [("?ssl_cert_reqs=maybe", "maybe"), ("?ssl_ca_certs=/no/such/ca.pem", "No such file")],
)
async def test_bad_tls_options_are_one_line(server: RedisServer, query: str, message: str) -> None:
    with pytest.raises(CacheError, match=message) as raised:
        connect(f"{server.url}{query}")
    assert "\n" not in str(raised.value)
