#!/usr/bin/python3
"""Long-lived TCP connections for the defence tests (tests/e2e_defence_test.ts): an echo server on a real
server, and two clients that hold one connection through the gateway. Every event is one JSON line on
stdout, flushed at once, with `at` = time.time() (the tests compare it with their own clock).

Usage:
  tcp_hold.py serve --bind ADDR --port N
      echo server (a thread per connection); prints {"event": "listening"}.
  tcp_hold.py drip --dst ADDR --port N --seconds S
      connects, then sends one byte every 100 ms and reads the echoes; prints "connected", then "error"
      (errno name) as soon as a send or receive fails, or "timeout" after S seconds without one.
  tcp_hold.py hold --dst ADDR --port N --wait S
      connects, one echo round trip, prints "ready" with its local port, sleeps S seconds, then one more
      round trip (3 s bound): prints "ok" or "error".
"""
import argparse
import errno
import json
import select
import socket
import sys
import threading
import time


def say(event, **kw):
    print(json.dumps({"event": event, "at": time.time(), **kw}), flush=True)


def serve(args):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.bind, args.port))
    srv.listen(128)
    say("listening")

    def echo(c):
        with c:
            while True:
                try:
                    b = c.recv(65536)
                except OSError:
                    return
                if not b:
                    return
                try:
                    c.sendall(b)
                except OSError:
                    return

    while True:
        c, _ = srv.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()


def errname(e):
    return errno.errorcode.get(e.errno or 0, str(e))


def drip(args):
    s = socket.create_connection((args.dst, args.port), timeout=3)
    s.setblocking(False)
    say("connected", sport=s.getsockname()[1])
    end = time.time() + args.seconds
    sent = echoed = 0
    while time.time() < end:
        try:
            s.send(b"x")
            sent += 1
            r, _, _ = select.select([s], [], [], 0.1)
            if r:
                b = s.recv(65536)
                if not b:
                    say("error", errno="EOF", sent=sent, echoed=echoed)
                    return
                echoed += len(b)
        except OSError as e:
            say("error", errno=errname(e), sent=sent, echoed=echoed)
            return
    say("timeout", sent=sent, echoed=echoed)


def round_trip(s, msg):
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        b = s.recv(65536)
        if not b:
            raise ConnectionResetError(errno.ECONNRESET, "EOF")
        got += b
    return got == msg


def hold(args):
    s = socket.create_connection((args.dst, args.port), timeout=3)
    s.settimeout(3)
    round_trip(s, b"ping-1\n")
    say("ready", sport=s.getsockname()[1])
    time.sleep(args.wait)
    try:
        ok = round_trip(s, b"ping-2\n")
        say("ok" if ok else "error", errno="" if ok else "garbled")
    except OSError as e:
        say("error", errno=errname(e) if not isinstance(e, socket.timeout) else "timeout")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["serve", "drip", "hold"])
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--dst")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--wait", type=float, default=5)
    args = p.parse_args()
    {"serve": serve, "drip": drip, "hold": hold}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
