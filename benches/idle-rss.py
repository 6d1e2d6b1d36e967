#!/usr/bin/env python3
"""Open N IMAP sessions (TLS, LOGIN, SELECT INBOX, IDLE) and hold them.

usage: idle-rss.py PORT USER PASSWORD N READY_FILE
Writes READY_FILE once all N are idling, then waits for SIGTERM.
"""
import asyncio, signal, ssl, sys

PORT, USER, PW, N, READY = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]


async def session(i, ctx, writers):
    r, w = await asyncio.open_connection("127.0.0.1", PORT, ssl=ctx)
    await r.readline()
    for tag, cmd in ((b"a", b'LOGIN "%s" "%s"' % (USER.encode(), PW.encode())), (b"b", b"SELECT INBOX")):
        w.write(tag + b" " + cmd + b"\r\n")
        while True:
            line = await r.readline()
            if not line:
                raise EOFError(f"session {i} closed")
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(line)
                break
    w.write(b"c IDLE\r\n")
    while not (await r.readline()).startswith(b"+"):
        pass
    writers.append((r, w))


async def main():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    writers = []
    sem = asyncio.Semaphore(50)

    async def one(i):
        async with sem:
            await session(i, ctx, writers)

    await asyncio.gather(*(one(i) for i in range(N)))
    open(READY, "w").write(f"{len(writers)}\n")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


asyncio.run(main())
