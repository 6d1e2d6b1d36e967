#!/usr/bin/env python3
"""A TCP proxy that delays every chunk by DELAY_MS in each direction, so that
a loopback connection has the round trip time of a real one.

usage: delay_proxy.py LISTEN_PORT TARGET_PORT DELAY_MS
"""
import asyncio, sys


async def pump(reader, writer, delay):
    loop = asyncio.get_running_loop()
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            due = loop.time() + delay
            # Keep order: each chunk leaves DELAY after it arrived.
            await asyncio.sleep(max(0, due - loop.time()))
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(listen, target, delay):
    async def handle(r1, w1):
        r2, w2 = await asyncio.open_connection('127.0.0.1', target)
        await asyncio.gather(pump(r1, w2, delay), pump(r2, w1, delay))

    srv = await asyncio.start_server(handle, '127.0.0.1', listen)
    print('ready', flush=True)
    async with srv:
        await srv.serve_forever()


asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000))
