#!/usr/bin/env python3
"""netinject: send malformed Ethernet frames onto a QEMU `-netdev dgram` link.

A dgram netdev takes every UDP datagram arriving at its local port as one
Ethernet frame, so this program only needs a UDP socket on 127.0.0.1.

    tools/netinject.py PORT --dst-mac M --dst-ip A [--src-ip B] [--only NAME,...]

Prints one line per frame sent ("sent NAME LEN") and, with --list, the
frames it knows with what each one breaks. Importable: frames(...) returns
the (name, bytes, what) table the integration tests use.
"""
import argparse
import socket
import struct
import sys

ETH_IP, ETH_ARP, ETH_UNKNOWN = 0x0800, 0x0806, 0x1234
SRC_MAC = bytes.fromhex("020000c0ffee")  # locally administered, not a ferry's


def mac(s):
    b = bytes.fromhex(s.replace(":", ""))
    if len(b) != 6:
        raise argparse.ArgumentTypeError(f"bad MAC '{s}'")
    return b


def ip4(s):
    return socket.inet_aton(s)


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def eth(dst, ethertype, payload, src=SRC_MAC):
    return dst + src + struct.pack("!H", ethertype) + payload


def ip_hdr(src, dst, proto, payload_len, total=None, ihl=5, bad_sum=False):
    total = 20 + payload_len if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 0x1234, 0, 64, proto, 0, src, dst)
    s = csum(h)
    if bad_sum:
        s ^= 0x5A5A
    return h[:10] + struct.pack("!H", s) + h[12:]


def icmp_echo(bad_sum=False):
    body = struct.pack("!BBHHH", 8, 0, 0, 0x4242, 1) + bytes(range(32))
    s = csum(body) ^ (0x1111 if bad_sum else 0)
    return body[:2] + struct.pack("!H", s) + body[4:]


def tcp_syn(src, dst, dport, bad_sum=False):
    seg = struct.pack("!HHIIBBHHH", 40000, dport, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(seg))
    s = csum(pseudo + seg) ^ (0x2222 if bad_sum else 0)
    return seg[:16] + struct.pack("!H", s) + seg[18:]


def frames(dst_mac, dst_ip, src_ip="10.9.9.9", tcp_port=5001):
    """The malformed frames: (name, frame bytes, what it breaks)."""
    d, dip, sip = dst_mac, ip4(dst_ip), ip4(src_ip)
    echo = icmp_echo()
    syn = tcp_syn(sip, dip, tcp_port)
    return [
        ("runt", d + SRC_MAC[:4], "10 bytes: shorter than an Ethernet header"),
        ("unknown-ethertype", eth(d, ETH_UNKNOWN, bytes(46)), "ethertype 0x1234"),
        ("oversize", eth(d, ETH_IP, ip_hdr(sip, dip, 1, 1600 - 34) + bytes(1600 - 34)),
         "1600-byte frame, over the 1514-byte maximum"),
        ("short-arp", eth(d, ETH_ARP, bytes(8)), "ARP with 8 of its 28 header bytes"),
        ("truncated-ip", eth(d, ETH_IP, ip_hdr(sip, dip, 1, len(echo))[:12]),
         "IPv4 header cut at 12 bytes"),
        ("ip-bad-header-checksum", eth(d, ETH_IP, ip_hdr(sip, dip, 1, len(echo), bad_sum=True) + echo),
         "IPv4 header checksum wrong"),
        ("ip-length-past-frame", eth(d, ETH_IP, ip_hdr(sip, dip, 1, len(echo), total=1400) + echo),
         "IPv4 total length 1400 in a 74-byte frame"),
        ("ip-bad-ihl", eth(d, ETH_IP, ip_hdr(sip, dip, 1, len(echo), ihl=3) + echo),
         "IPv4 header length 12 bytes (< 20)"),
        ("icmp-bad-checksum", eth(d, ETH_IP, ip_hdr(sip, dip, 1, len(echo)) + icmp_echo(bad_sum=True)),
         "ICMP echo with a wrong checksum"),
        ("tcp-bad-checksum", eth(d, ETH_IP, ip_hdr(sip, dip, 6, len(syn)) + tcp_syn(sip, dip, tcp_port, True)),
         "TCP SYN with a wrong checksum"),
    ]


def send(port, frame_list, host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name, f, _ in frame_list:
            s.sendto(f, (host, port))
            print(f"sent {name} {len(f)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int, help="the dgram netdev's local UDP port on 127.0.0.1")
    ap.add_argument("--dst-mac", type=mac, required=True)
    ap.add_argument("--dst-ip", required=True)
    ap.add_argument("--src-ip", default="10.9.9.9")
    ap.add_argument("--only", default="", help="comma-separated frame names")
    ap.add_argument("--list", action="store_true", help="list the frames and exit")
    a = ap.parse_args()
    fl = frames(a.dst_mac, a.dst_ip, a.src_ip)
    if a.list:
        for name, f, what in fl:
            print(f"{name:24} {len(f):5}  {what}")
        return 0
    if a.only:
        want = a.only.split(",")
        unknown = [w for w in want if w not in {n for n, _, _ in fl}]
        if unknown:
            print(f"netinject: unknown frame(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
        fl = [x for x in fl if x[0] in want]
    send(a.port, fl)
    return 0


if __name__ == "__main__":
    sys.exit(main())
