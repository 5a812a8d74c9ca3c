"""Starts a 64 MB reply to the server on its worker's pipe, sends ten bytes of it and stalls."""
import gc
import struct
import time
from multiprocessing.connection import Connection

from pages._lib.mark import mark


async def handler(request, response):
    conn = next(o for o in gc.get_objects() if isinstance(o, Connection) and not o.closed)  # its pipe to the server
    conn._send(struct.pack("!i", 64 * 2**20) + b"0123456789")
    mark("stall", "stalled")
    time.sleep(30)
