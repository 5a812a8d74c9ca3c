"""Worker processes: results, printed lines, and every way an invocation can fail."""

import asyncio
from pathlib import Path

import pytest

from isr.errors import FunctionFailed, FunctionTimeout, NoResponse, Throttled
from isr.runtime.invocation import Invocation, Result
from isr.runtime.pool import WorkerInvoker
from isr.site.site import load_site

HANDLERS = {
    "hello": 'def handler(request, response):\n    print("line one")\n    print("line two")\n    response.send("hi " + request.query.get("name", ""))\n',
    "spin": "def handler(request, response):\n    while True:\n        pass\n",
    "sleepy": "import asyncio\nasync def handler(request, response):\n    await asyncio.sleep(0.3)\n    response.send('done')\n",
    "crash": "import os\ndef handler(request, response):\n    os._exit(3)\n",
    "silent": "def handler(request, response):\n    pass\n",
    "env": "import os\ndef handler(request, response):\n    response.json([os.environ.get('FROM_DOTENV'), os.environ.get('BOTH')])\n",
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    api = tmp_path / "pages" / "api"
    api.mkdir(parents=True)
    for name, source in HANDLERS.items():
        (api / f"{name}.py").write_text(source)
    (tmp_path / ".env").write_text("FROM_DOTENV=dotenv\nBOTH=dotenv\n")
    (tmp_path / "isr.json").write_text('{"functions": {"pages/api/spin.py": {"maxDuration": 1}, "pages/api/sleepy.py": {"maxConcurrency": 1}}}')
    return tmp_path


async def call(invoker: WorkerInvoker, function: str, **query: str) -> Result:
    route = invoker.site.routes.by_page[f"/api/{function}"]
    event = {"method": "GET", "path": route.page, "params": {}, "query": query, "headers": {}, "cookies": {}, "body": b""}
    return await invoker.invoke(Invocation(route.file, "api", event, route.function))


async def test_result_carries_value_and_printed_lines(site: Path) -> None:
    invoker = WorkerInvoker(load_site(site))
    try:
        result = await call(invoker, "hello", name="ann")
        assert result.value["body"] == b"hi ann" and result.value["status"] == 200
        assert result.logs == ["line one", "line two"]
        assert result.memory_mb > 0
        assert (await call(invoker, "hello")).logs == ["line one", "line two"]  # per invocation
    finally:
        await invoker.close()


async def test_a_spinning_function_is_killed_and_replaced(site: Path) -> None:
    invoker = WorkerInvoker(load_site(site))
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(FunctionTimeout):
            await call(invoker, "spin")
        assert asyncio.get_running_loop().time() - started < 2.5
        assert (await call(invoker, "hello")).value["body"] == b"hi "
    finally:
        await invoker.close()


async def test_a_process_that_dies_is_a_failure_and_is_replaced(site: Path) -> None:
    invoker = WorkerInvoker(load_site(site))
    try:
        with pytest.raises(FunctionFailed, match="exited with code 3"):
            await call(invoker, "crash")
        with pytest.raises(NoResponse):
            await call(invoker, "silent")
    finally:
        await invoker.close()


async def test_a_full_queue_throttles(site: Path) -> None:
    invoker = WorkerInvoker(load_site(site))
    try:
        results = await asyncio.gather(*(call(invoker, "sleepy") for _ in range(12)), return_exceptions=True)
        throttled = [r for r in results if isinstance(r, Throttled)]
        assert len(throttled) == 12 - 1 - 8  # one runs, eight wait per worker slot
    finally:
        await invoker.close()


async def test_dotenv_loads_under_the_environment(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTH", "environment")
    invoker = WorkerInvoker(load_site(site))
    try:
        assert (await call(invoker, "env")).value["body"] == b'["dotenv","environment"]'
    finally:
        await invoker.close()


async def test_close_leaves_no_worker_process(site: Path) -> None:
    invoker = WorkerInvoker(load_site(site))
    await call(invoker, "hello")
    pids = [w.process.pid for b in invoker._bundles.values() for w in b._all]  # noqa: SLF001
    assert pids
    await invoker.close()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} is still there (or a zombie)"


async def test_a_worker_killed_while_idle_is_replaced_without_failing_a_call(site: Path) -> None:
    invoker = WorkerInvoker(load_site(site))
    try:
        await call(invoker, "hello")
        idle = [w for b in invoker._bundles.values() for w in b._idle]  # noqa: SLF001
        for worker in idle:
            worker.process.kill()
            worker.process.join(5)
        assert (await call(invoker, "hello")).value["status"] == 200
    finally:
        await invoker.close()
