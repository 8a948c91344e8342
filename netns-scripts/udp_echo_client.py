#!/usr/bin/python3
"""Sends one UDP datagram and prints the reply as hex, so callers can compare it byte for byte.

Usage: udp_echo_client.py HOST PORT [--hex PAYLOAD_HEX | --text TEXT] [--timeout SECONDS]
Exit status: 0 reply received and identical to what was sent, 1 different reply, 2 no reply in time.
Standard library only, so any python3 works; the address family follows HOST.
"""
import argparse
import socket
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--hex", help="payload as hex digits")
    g.add_argument("--text", default="hello from the client namespace", help="payload as text")
    ap.add_argument("--timeout", type=float, default=2.0)
    args = ap.parse_args()
    payload = bytes.fromhex(args.hex) if args.hex is not None else args.text.encode()
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(args.timeout)
        s.connect((args.host, args.port))  # connected: only replies from HOST:PORT are accepted
        s.send(payload)
        try:
            reply = s.recv(65535)
        except socket.timeout:
            print(f"no reply from {args.host} port {args.port} within {args.timeout}s", file=sys.stderr)
            return 2
    print(reply.hex())
    same = reply == payload
    print(f"sent {len(payload)} bytes, got {len(reply)} bytes back, {'identical' if same else 'DIFFERENT'}",
          file=sys.stderr)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
