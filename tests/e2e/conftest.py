"""Fixtures of the end-to-end suite: a fresh copy of a test site and `isr serve` processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from e2e_support import Server, Site


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def site(tmp_path: Any) -> Site:
    """A writable copy of tests/sites/basic with its own cache, control folder and render log."""
    return Site.copy("basic", tmp_path)


@pytest.fixture
def serve(site: Site, request: pytest.FixtureRequest) -> Iterator[Callable[..., Server]]:
    """Start `isr serve` on the test site; every server is stopped at teardown.

    `serve()` starts and waits until it answers; `serve(start=False)` only builds the helper."""
    servers: list[Server] = []

    def start(*, start: bool = True, site_arg: str | None = None, args: tuple[str, ...] = ()) -> Server:
        server = Server(site, site_arg=site_arg, extra_args=args)
        servers.append(server)
        return server.start() if start else server

    yield start
    for server in servers:
        server.stop()
        server.show_output_if_failed(request)


@pytest.fixture
def server(serve: Callable[..., Server]) -> Server:
    """One running server on the test site."""
    return serve()


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server on one copy of the basic site, shared by a module's tests that use
    distinct paths (it saves a server start per test)."""
    with Server(Site.copy("basic", tmp_path_factory.mktemp("shared"))).running() as server:
        yield server


@pytest.fixture
def shared_server(module_server: Server, request: pytest.FixtureRequest) -> Iterator[Server]:
    """The module's shared server, restarted if an earlier test left it dead."""
    with module_server.watched(request) as server:
        yield server
