#!/usr/bin/python3
"""Many concurrent connections to an echo service, held open together: the client side of the toa-proxy
concurrency test. Its open-file limit is raised to the hard limit first.

  1. opens N connections at once (asyncio.gather) and keeps every one open;
  2. sends a message unique to each connection on all of them, and checks each echo, byte for byte —
     while all N are open;
  3. waits for SIGUSR1 (so the test can read the proxy's counters and memory meanwhile), or --hold seconds;
  4. half-closes each (write_eof), reads to the proxy's EOF, closes.

Each phase prints one line on stdout, `phase key=value …`; outcomes per connection are counted, never
raised: ok, eof (closed before the whole echo), reset, timeout, bad (wrong bytes), error.

Usage: many_clients.py ADDR PORT N [--echo-timeout S] [--hold S] [--close-timeout S] [--source ADDR]

--source binds every connection to that local address, so a test can play two different clients.
"""
import argparse
import asyncio
import collections
import os
import resource
import signal
import sys
import time


def outcome(exc):
    if isinstance(exc, asyncio.IncompleteReadError):
        return "eof"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    return "error"


def line(phase, t0, counts, **extra):
    fields = {**extra, **counts, "ms": round((time.monotonic() - t0) * 1000)}
    print(phase + "".join(f" {k}={v}" for k, v in fields.items()), flush=True)


async def main(a):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    token = os.urandom(8).hex()
    local = (a.source, 0) if a.source else None

    t0 = time.monotonic()
    opened = await asyncio.gather(
        *[asyncio.wait_for(asyncio.open_connection(a.addr, a.port, local_addr=local), a.open_timeout)
          for _ in range(a.n)],
        return_exceptions=True,
    )
    conns = [c for c in opened if not isinstance(c, BaseException)]
    errors = collections.Counter(outcome(c) for c in opened if isinstance(c, BaseException))
    for c in opened:
        if isinstance(c, BaseException):
            print(f"open failed: {c!r}", file=sys.stderr)
            break
    line("opened", t0, {"ok": len(conns), **errors}, nofile=hard)

    async def echo(i, reader, writer):
        msg = f"conn {i} of {a.n} token {token} {'x' * (i % 97)}\n".encode()
        try:
            writer.write(msg)
            await writer.drain()
            got = await asyncio.wait_for(reader.readexactly(len(msg)), a.echo_timeout)
            return "ok" if got == msg else "bad"
        except Exception as e:  # noqa: BLE001 — counted, never raised
            return outcome(e)

    t0 = time.monotonic()
    results = await asyncio.gather(*[echo(i, r, w) for i, (r, w) in enumerate(conns)])
    line("echoed", t0, dict(collections.Counter(results)))

    go = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, go.set)
    print("holding", flush=True)
    try:
        await asyncio.wait_for(go.wait(), a.hold)
    except asyncio.TimeoutError:
        pass

    async def close(reader, writer):
        try:
            writer.write_eof()
            rest = await asyncio.wait_for(reader.read(), a.close_timeout)  # to the proxy's FIN
            return "ok" if rest == b"" or rest.endswith(b"\n") else "bad"
        except Exception as e:  # noqa: BLE001
            return outcome(e)
        finally:
            writer.close()

    t0 = time.monotonic()
    results = await asyncio.gather(*[close(r, w) for r, w in conns])
    line("closed", t0, dict(collections.Counter(results)))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("n", type=int)
    p.add_argument("--open-timeout", type=float, default=20)
    p.add_argument("--echo-timeout", type=float, default=20)
    p.add_argument("--hold", type=float, default=60)
    p.add_argument("--close-timeout", type=float, default=20)
    p.add_argument("--source", default=None)
    asyncio.run(main(p.parse_args()))
