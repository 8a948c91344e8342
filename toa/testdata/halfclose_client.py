#!/usr/bin/python3
"""Sends N random bytes, half-closes (shutdown SHUT_WR), then reads the answer to EOF: the relay must pass
the EOF on only after every byte, and still carry the answer back. Prints `SENT_SHA256 ANSWER`.

Usage: halfclose_client.py ADDR PORT NBYTES
"""
import hashlib
import os
import socket
import sys


def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    data = os.urandom(n)
    s = socket.create_connection((host, port), timeout=30)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    answer = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        answer += d
    print(hashlib.sha256(data).hexdigest(), answer.decode().strip())


if __name__ == "__main__":
    main()
