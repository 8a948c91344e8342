#!/usr/bin/python3
"""UDP client for tests/e2e_fragments_test.ts: sends datagrams larger than the MTU (the kernel fragments
them) to HOST PORT and waits for each echo, which must come back byte-identical. Bounded: `--rounds` rounds
of each size in `--sizes`, each datagram sent at most 3 times, 2 s wait each. Prints one line of counts:
`sent=N ok=N bad=N missing=N`.
"""
import argparse
import hashlib
import socket
import struct


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--sizes", default="4000")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.connect((a.host, a.port))
    s.settimeout(2.0)
    sent = ok = bad = missing = 0
    for rnd in range(a.rounds):
        for size in (int(x) for x in a.sizes.split(",")):
            head = struct.pack("!II", rnd, size)
            seed = hashlib.sha256(head).digest()
            data = head + (seed * (size // len(seed) + 1))[: size - len(head)]
            sent += 1
            for _ in range(3):
                s.send(data)
                try:
                    got = s.recv(65535)
                except socket.timeout:
                    continue
                if got == data:
                    ok += 1
                else:
                    bad += 1
                break
            else:
                missing += 1
    print(f"sent={sent} ok={ok} bad={bad} missing={missing}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
