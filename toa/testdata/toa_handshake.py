#!/usr/bin/python3
"""One TCP connection made by hand with scapy, so that TOA can be put where a gateway would: in the SYN, in
the ACK that completes the handshake, or both (dpvs ≥ 1.9.6 puts it in the ACK only). Sends the SYN, the ACK,
then "hi\\n" (or --payload, backslash escapes allowed), waits for the server's first data, and resets the connection. The kernel of the sending host
must not answer the server itself: drop its outgoing RSTs (the test does, with nftables).

Usage: toa_handshake.py --src ADDR --dst ADDR --dport N --sport N [--syn-option KIND:HEX ...]
                        [--ack-option KIND:HEX ...] [--payload TEXT]
Prints {"synack": bool, "reply": str} as JSON.
"""
import argparse
import json

from scapy.all import IP, TCP, IPv6, AsyncSniffer, conf, send, sr1

conf.verb = 0


def opts(specs):
    out = []
    for s in specs:
        kind, data = s.split(":", 1)
        out.append((int(kind), bytes.fromhex(data)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--dport", type=int, required=True)
    ap.add_argument("--sport", type=int, required=True)
    ap.add_argument("--syn-option", action="append", default=[])
    ap.add_argument("--ack-option", action="append", default=[])
    ap.add_argument("--payload", default="hi\n", help="bytes to send after the handshake (default hi + newline)")
    a = ap.parse_args()
    ip = IPv6(src=a.src, dst=a.dst) if ":" in a.dst else IP(src=a.src, dst=a.dst)
    syn = ip / TCP(sport=a.sport, dport=a.dport, flags="S", seq=1000,
                   options=[("MSS", 1400)] + opts(a.syn_option))
    synack = sr1(syn, timeout=3)
    if synack is None or TCP not in synack or (synack[TCP].flags & 0x12) != 0x12:
        print(json.dumps({"synack": False, "reply": ""}))
        return
    ack_no = synack[TCP].seq + 1
    iface = (conf.route6 if ":" in a.dst else conf.route).route(a.dst)[0]
    sniffer = AsyncSniffer(
        iface=iface, lfilter=lambda p: TCP in p and p[TCP].sport == a.dport and p[TCP].dport == a.sport
        and len(bytes(p[TCP].payload)) > 0, count=1, timeout=4)
    sniffer.start()
    send(ip / TCP(sport=a.sport, dport=a.dport, flags="A", seq=1001, ack=ack_no, options=opts(a.ack_option)))
    payload = a.payload.encode().decode("unicode_escape").encode("latin-1")
    send(ip / TCP(sport=a.sport, dport=a.dport, flags="PA", seq=1001, ack=ack_no) / payload)
    sniffer.join()
    got = sniffer.results
    reply = bytes(got[0][TCP].payload).decode(errors="replace") if got else ""
    send(ip / TCP(sport=a.sport, dport=a.dport, flags="R", seq=1001 + len(payload)))
    print(json.dumps({"synack": True, "reply": reply}))


main()
