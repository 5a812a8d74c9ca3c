"""`isr dev`: renders every request, shows errors in the browser, reloads on change."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from e2e_support import REPO, Response, Site, free_port, request, wait_for


class Dev:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.port = free_port()
        self.log = site.workdir / "dev.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "isr", "dev", str(site.root), "--port", str(self.port)],
                cwd=REPO, env=site.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def get(self, path: str, **kw: Any) -> Response:
        return request(self.port, path, **kw)

    def answers(self) -> bool:
        try:
            return self.get("/ssr", timeout=2).status == 200
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def dev(tmp_path: Any) -> Iterator[Dev]:
    server = Dev(Site.copy("revalidate", tmp_path))
    try:
        wait_for(server.answers, 20, what="isr dev to answer")
        yield server
    finally:
        server.stop()


def value(response: Response) -> str:
    return response.text.split('<p id="value">')[1].split("</p>")[0]


def test_every_request_renders(dev: Dev) -> None:
    dev.site.control("a", value="one")
    first = dev.get("/data/a")
    dev.site.control("a", value="two")
    second = dev.get("/data/a")
    assert first.status == second.status == 200
    assert first.cache == second.cache == "MISS"
    assert first.generation != second.generation and value(second) == "two"
    assert dev.site.count("a") == 2


def test_errors_show_their_traceback_in_the_browser(dev: Dev) -> None:
    dev.site.control("a", fail=True)
    answer = dev.get("/data/a")
    assert answer.status == 500 and answer.header("x-isr-error-code") == "FUNCTION_INVOCATION_FAILED"
    assert "Traceback" in answer.text and "the data source is down" in answer.text


def test_a_template_change_reloads_the_server(dev: Dev) -> None:
    dev.site.control("a", value="x")
    assert value(dev.get("/data/a")) == "x"
    (dev.site.pages / "data" / "[name].html").write_text('<html><body><p id="value">new {{ value }}</p></body></html>')

    def reloaded() -> bool:
        try:
            return value(dev.get("/data/a", timeout=2)) == "new x"
        except (OSError, IndexError):
            return False

    wait_for(reloaded, 20, what="the new template to be served")


def test_revalidation_needs_no_token(dev: Dev) -> None:
    answer = dev.get("/_isr/revalidate", method="POST", body=b'{"paths": ["/data/a"]}')
    assert answer.status == 200, answer.describe()
    assert answer.json()["revalidated"] == ["/data/a"]
