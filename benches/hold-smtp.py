#!/usr/bin/env python3
"""Open N SMTP sessions (plain, EHLO) and hold them idle.

usage: hold-smtp.py PORT N READY_FILE
Writes READY_FILE with the number held once all are open, then waits for SIGTERM.
"""
import asyncio, signal, sys

PORT, N, READY = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]


async def session(i, held):
    r, w = await asyncio.open_connection("127.0.0.1", PORT)
    greeting = await r.readline()
    if not greeting.startswith(b"220"):
        raise RuntimeError(f"session {i}: {greeting!r}")
    w.write(b"EHLO load.test\r\n")
    while True:
        line = await r.readline()
        if not line:
            raise EOFError(f"session {i} closed")
        if line[3:4] == b" ":
            break
    held.append((r, w))


async def main():
    held = []
    sem = asyncio.Semaphore(100)

    async def one(i):
        async with sem:
            await session(i, held)

    await asyncio.gather(*(one(i) for i in range(N)))
    open(READY, "w").write(f"{len(held)}\n")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


asyncio.run(main())
