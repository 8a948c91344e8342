#!/usr/bin/python3
"""A backend that holds thousands of connections: asyncio, its open-file limit raised to the hard limit,
listen backlog 4096. Per connection it reads the PROXY v1 line toa-proxy sends (`--pp v1`) and checks its
shape, then echoes every byte until EOF, then closes. A bad header closes the connection without an echo.

Usage: echo_server.py ADDR PORT [--pp v1|none]
"""
import asyncio
import resource
import sys


async def main(addr, port, pp):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def handle(reader, writer):
        try:
            if pp == "v1":
                line = await reader.readline()
                if not line.startswith(b"PROXY TCP") or not line.endswith(b"\r\n"):
                    return
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, addr, port, backlog=4096)
    print(f"listening nofile={hard}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    pp = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--pp" else "none"
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), pp))
