"""Starts `sleep 987`, tells its pid (marker ?name=), then ?then= what ends the invocation:
hang (past maxDuration), crash (SIGKILL of its own worker), memory (over its 256 MB),
exit (SystemExit: the worker is replaced), return (answers 200; the sleep stays).
?daemon=1 starts it as a daemon instead: double fork and setsid, out of the worker's group."""
import asyncio
import os
import signal
import subprocess

from pages._lib.mark import mark


def start_daemon():
    read, write = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.setsid()
        pid = os.fork()
        if pid == 0:
            os.execvp("sleep", ["sleep", "987"])
        os.write(write, str(pid).encode())
        os._exit(0)
    os.close(write)
    pid = int(os.read(read, 32))
    os.close(read)
    os.waitpid(middle, 0)
    return pid


async def handler(request, response):
    if request.query.get("daemon"):
        pid = start_daemon()
    else:
        pid = subprocess.Popen(["sleep", "987"]).pid
    mark(request.query["name"], str(pid))
    then = request.query.get("then", "return")
    if then == "hang":
        await asyncio.sleep(60)
    elif then == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    elif then == "memory":
        hog = bytearray(2 * 2**30)
        print(len(hog))
    elif then == "exit":
        raise SystemExit(3)
    response.json({"pid": pid})
