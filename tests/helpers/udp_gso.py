#!/usr/bin/python3
"""UDP peers for the gateway's UDP tests, able to send with UDP segmentation offload (UDP_SEGMENT): one
send() of K segments leaves the socket as one GSO super-packet that the kernel splits as late as it can —
here, after the gateway, when it reads super-packets from its TUN (USO).

  server PORT [--gro]
      Echoes every datagram to its sender, on [::]:PORT (IPv4 and IPv6). With --gro the socket takes
      coalesced datagrams (UDP_GRO) and echoes each batch as one UDP_SEGMENT send of the same segment size,
      so the replies can be super-packets too. Prints `peer ADDR PORT` once per new sender.
  client HOST PORT [--flows F] [--rounds R] [--segments K] [--size S] [--gso] [--timeout T]
      F connected sockets (F flows); each sends R rounds of K datagrams of S bytes — with --gso each round
      is one send() — and waits for that round's echoes before the next. Every datagram carries its flow,
      round and index and a payload derived from them; an echo counts ok only if byte-identical.
      Prints `sent=N ok=N bad=N missing=N dup=N`; exit 0 when every datagram came back intact.

Standard library only.
"""
import argparse
import hashlib
import select
import socket
import struct
import sys
import time

SOL_UDP = 17
UDP_SEGMENT = 103
UDP_GRO = 104


def datagram(flow: int, rnd: int, idx: int, size: int) -> bytes:
    head = struct.pack("!HIH", flow, rnd, idx)
    seed = hashlib.sha256(head).digest()
    body = (seed * (size // len(seed) + 1))[: size - len(head)]
    return head + body


def server(a) -> int:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    if a.gro:
        s.setsockopt(SOL_UDP, UDP_GRO, 1)
    s.bind(("::", a.port))
    print("listening", flush=True)
    seen = set()
    while True:
        data, anc, _flags, peer = s.recvmsg(65535, socket.CMSG_SPACE(4))
        key = (peer[0].removeprefix("::ffff:"), peer[1])
        if key not in seen:
            seen.add(key)
            print(f"peer {key[0]} {key[1]}", flush=True)
        seg = 0
        for level, typ, val in anc:
            if level == SOL_UDP and typ == UDP_GRO:
                seg = struct.unpack("=H", val[:2])[0] if len(val) < 4 else struct.unpack("=i", val[:4])[0]
        if seg and len(data) > seg:
            s.sendmsg([data], [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", seg))], 0, peer)
        else:
            s.sendto(data, peer)


def client(a) -> int:
    family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    socks = []
    for _ in range(a.flows):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.connect((a.host, a.port))
        s.setblocking(False)
        if a.gso:
            s.setsockopt(SOL_UDP, UDP_SEGMENT, a.size)
        socks.append(s)
    sent = ok = bad = dup = 0
    missing = 0
    for rnd in range(a.rounds):
        want = {}
        for f, s in enumerate(socks):
            grams = [datagram(f, rnd, i, a.size) for i in range(a.segments)]
            for i, g in enumerate(grams):
                want[(f, i)] = g
            if a.gso:
                s.send(b"".join(grams))
            else:
                for g in grams:
                    s.send(g)
            sent += len(grams)
        got = set()
        deadline = time.monotonic() + a.timeout
        while len(got) < len(want):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select(socks, [], [], left)
            for s in ready:
                while True:
                    try:
                        data = s.recv(65535)
                    except BlockingIOError:
                        break
                    if len(data) < 8:
                        bad += 1
                        continue
                    f, r, i = struct.unpack("!HIH", data[:8])
                    if r != rnd or (f, i) not in want:
                        bad += 1
                    elif want[(f, i)] != data:
                        bad += 1
                    elif (f, i) in got:
                        dup += 1
                    else:
                        got.add((f, i))
                        ok += 1
        missing += len(want) - len(got)
    print(f"sent={sent} ok={ok} bad={bad} missing={missing} dup={dup}", flush=True)
    return 0 if ok == sent and bad == 0 and dup == 0 else 1


def main() -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    ps = sub.add_parser("server")
    ps.add_argument("port", type=int)
    ps.add_argument("--gro", action="store_true")
    pc = sub.add_parser("client")
    pc.add_argument("host")
    pc.add_argument("port", type=int)
    pc.add_argument("--flows", type=int, default=4)
    pc.add_argument("--rounds", type=int, default=20)
    pc.add_argument("--segments", type=int, default=16)
    pc.add_argument("--size", type=int, default=1200)
    pc.add_argument("--gso", action="store_true")
    pc.add_argument("--timeout", type=float, default=3.0)
    a = p.parse_args()
    return server(a) if a.cmd == "server" else client(a)


if __name__ == "__main__":
    sys.exit(main())
