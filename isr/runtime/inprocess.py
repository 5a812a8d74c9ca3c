"""Invocations in threads of the server process, each with a deadline.

The deadline answers the request on time, but a thread cannot be killed: a hung
function keeps its thread until it returns. Worker processes lift that limit.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from isr.errors import FunctionTimeout
from isr.runtime import capture
from isr.runtime.invocation import Invocation, Result
from isr.runtime.renderer import Renderer
from isr.site.site import Site


class InProcessInvoker:
    def __init__(self, site: Site, threads: int = 8) -> None:
        capture.install()
        self._renderer = Renderer(site)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="isr-invoke")

    async def invoke(self, invocation: Invocation) -> Result:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, self._run, invocation)
        try:
            value, logs = await asyncio.wait_for(future, invocation.limits.max_duration)
        except TimeoutError:
            raise FunctionTimeout(
                f"{invocation.file} ran past its maxDuration of {invocation.limits.max_duration:g} s"
            ) from None
        return Result(value, logs, (time.perf_counter() - started) * 1000)

    def _run(self, invocation: Invocation) -> tuple[Any, list[str]]:
        with capture.captured() as lines:
            value = asyncio.run(self._renderer.run(invocation))
        return value, lines

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
