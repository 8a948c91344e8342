#!/usr/bin/python3
"""Two connections to an echo service for the idle-timeout test: one echoes once and then stays silent, the
other echoes a line every 0.5 s for CHATTY seconds. Prints one line:

  idle_eof_ms=MS chatty_echoes=N chatty_eof_ms=MS

where idle_eof_ms is the time from the silent connection's last echo to the EOF (or reset) that ended it,
and chatty_eof_ms the same for the chatty one after its last echo (-1 when it was not closed within LIMIT s).

Usage: idle_client.py ADDR PORT CHATTY LIMIT
"""
import socket
import sys
import threading
import time


def wait_eof(s, limit):
    """ms until EOF/reset on `s`, -1 after `limit` seconds."""
    t0 = time.monotonic()
    s.settimeout(limit)
    try:
        while s.recv(4096):
            pass
    except socket.timeout:
        return -1
    except ConnectionError:
        pass
    return round((time.monotonic() - t0) * 1000)


def echo(s, msg):
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        d = s.recv(len(msg) - len(got))
        if not d:
            raise SystemExit(f"closed during echo of {msg!r}")
        got += d
    if got != msg:
        raise SystemExit(f"echo {got!r} != {msg!r}")


def main(addr, port, chatty_s, limit):
    quiet = socket.create_connection((addr, port), timeout=5)
    chatty = socket.create_connection((addr, port), timeout=5)
    echo(quiet, b"quiet\n")
    out = {}

    def quiet_wait():
        out["idle_eof_ms"] = wait_eof(quiet, limit)

    t = threading.Thread(target=quiet_wait)
    t.start()
    n = 0
    end = time.monotonic() + chatty_s
    while time.monotonic() < end:
        echo(chatty, f"chatty {n}\n".encode())
        n += 1
        time.sleep(0.5)
    out["chatty_echoes"] = n
    out["chatty_eof_ms"] = wait_eof(chatty, limit)
    t.join()
    print(" ".join(f"{k}={out[k]}" for k in ("idle_eof_ms", "chatty_echoes", "chatty_eof_ms")), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
