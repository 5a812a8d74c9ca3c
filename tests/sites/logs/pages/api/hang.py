"""Prints a line, then hangs past its maxDuration (1 s): FUNCTION_INVOCATION_TIMEOUT."""

import sys
import time


async def handler(request, response):
    print("hang-before", flush=True)
    sys.stdout.flush()
    time.sleep(30)  # noqa: ASYNC251 - blocks the worker: only killing it stops the call
    response.json({"never": True})
