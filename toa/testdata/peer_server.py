#!/usr/bin/python3
"""A TCP server that reports, for each connection, the peer address accept() returned and getpeername()
returns: what an unmodified server sees (toa/bpf tests: under the getpeername programs it is the client from
TOA). One JSON line per connection on stdout; answers each connection "ok\\n" after its first bytes (which the line also shows: a PROXY header).

Usage: peer_server.py ADDR PORT [ADDR PORT ...]   (one listener per pair; prints {"event": "listening"})
"""
import json
import select
import socket
import sys


def main():
    args = sys.argv[1:]
    listeners = []
    for i in range(0, len(args), 2):
        host, port = args[i], int(args[i + 1])
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(1024)
        listeners.append(s)
    print(json.dumps({"event": "listening"}), flush=True)
    while True:
        ready, _, _ = select.select(listeners, [], [])
        for s in ready:
            c, addr = s.accept()
            try:
                peer = c.getpeername()
            except OSError as e:
                peer = [str(e)]
            c.settimeout(3)
            data = b""
            try:
                data = c.recv(200)
                c.sendall(b"ok\n")
            except OSError:
                pass
            print(json.dumps({"event": "conn", "accept": list(addr[:2]), "getpeername": list(peer[:2]),
                              "data": data.decode(errors="replace")}), flush=True)
            c.close()


main()
