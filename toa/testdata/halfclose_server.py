#!/usr/bin/python3
"""A backend for the relay's half-close and backpressure test: per connection, reads to EOF (slowly at
first, so the proxy's buffer toward it fills), then answers with the byte count and SHA-256 of everything
it read (PROXY header included) and closes.

Usage: halfclose_server.py ADDR PORT
"""
import hashlib
import socket
import sys
import threading
import time


def handle(c):
    h = hashlib.sha256()
    n = 0
    slow_until = time.monotonic() + 1.0
    while True:
        d = c.recv(4096 if time.monotonic() < slow_until else 1 << 20)
        if not d:
            break
        h.update(d)
        n += len(d)
        if time.monotonic() < slow_until:
            time.sleep(0.01)
    c.sendall(f"{n} {h.hexdigest()}\n".encode())
    c.close()


def main():
    s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(sys.argv[2])))
    s.listen(64)
    print("listening", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
