#!/usr/bin/env python3
"""Rebuild the seeds of fuzz_stream_reader (tests/fuzz/seeds/fuzz_stream_reader).

Each seed is the mode byte fuzz_stream_reader.c reads first (bits 0-1: fed
whole, a byte at a time, or in chunks; 0x10: a reply stream; 0x20: a live
destination, given the agreement after HELLO), then a stream
(docs/stream-format.md). The name ends in -mXX, XX that byte in hex.

- pN-*: saved files from `ferry-stream gen` (N guest pages);
- live-*: what a source sends (no SAVED flag, no HELLO_ACK inside), cut
  from a gen file and ended the classic way (DIGEST, END, GO) or with
  verification after the switch-over (END, GO, REGION_DIGEST: a guest of
  one region, whose hash is the DIGEST's value);
- reply-*: a destination's answers (HELLO_ACK, READY, COMMIT, VERIFIED,
  NACK, a refusal).

Run from the repository root after `make host` whenever the format changes:
    python3 tests/fuzz/make_stream_seeds.py
"""
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOL = Path(os.environ.get("FERRY_STREAM", ROOT / "build/host/tools/ferry-stream"))
OUT = ROOT / "tests/fuzz/seeds/fuzz_stream_reader"
sys.path.insert(0, str(ROOT / "tools"))
import streamrec  # noqa: E402  (tools/ is not a package)
from streamrec import record  # noqa: E402

VERSION = 2
HELLO, HELLO_ACK, DIGEST, END, COMMIT, NACK = 0x01, 0x02, 0x08, 0x09, 0x0A, 0x0B
READY, GO, VERIFIED, REGION_DIGEST = 0x0F, 0x10, 0x11, 0x12
CAP_CRC32C, CAP_XSAVE, CAP_ITER_STATS, CAP_VERIFY_AFTER = 1, 2, 4, 16
HELLO_CAPS_OFF, HELLO_ID_OFF = 16, 72      # struct stream_hello
MIG_ID = 0x5EED5EED00000001                # of the reply seeds

def header(saved):
    return streamrec.header(1 if saved else 0)


def records(stream):
    """(type, body) of each record of a saved --no-crc stream."""
    pos, out = 32, []
    while pos < len(stream):
        rtype, length = struct.unpack_from("<II", stream, pos)
        out.append((rtype, stream[pos + 8:pos + 8 + length]))
        pos += 8 + length + (-length % 8) + (8 if rtype in (HELLO, HELLO_ACK) else 0)
    return out


def gen(*args):
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "s.fst"
        subprocess.run([str(TOOL), "gen", "-o", str(f), *map(str, args)], check=True,
                       stdout=subprocess.DEVNULL)
        return f.read_bytes()


def live(stream, verify_after):
    """A saved --no-crc gen stream as its source sends it, GO included."""
    out = header(False)
    for rtype, body in records(stream):
        if rtype == HELLO:
            mig_id, = struct.unpack_from("<Q", body, HELLO_ID_OFF)
            if verify_after:
                caps, = struct.unpack_from("<Q", body, HELLO_CAPS_OFF)
                body = bytearray(body)
                struct.pack_into("<Q", body, HELLO_CAPS_OFF, caps | CAP_VERIFY_AFTER)
                body = bytes(body)
        elif rtype == HELLO_ACK:
            continue                       # the destination's, on the reply stream
        elif rtype == DIGEST:
            hash128 = body[16:32]
            if verify_after:
                continue                   # replaced by REGION_DIGEST after GO
        out += record(rtype, body, False)
    out += record(GO, struct.pack("<Q", mig_id), False)
    if verify_after:
        out += record(REGION_DIGEST, struct.pack("<IIQII", 1, 512, 0, 1, 0) + hash128, False)
    return out


def ack(caps, status=0, reason=b""):
    return struct.pack("<IIQQQII64sQ", status, 7 if status == 0 else 0, 8 if status == 0 else 0,
                       caps, 0, 1 if status == 0 else 0, 4096 if status == 0 else 0, reason, MIG_ID)


def reply(caps, *rest, status=0, reason=b""):
    crc = status == 0 and bool(caps & CAP_CRC32C)
    out = header(False) + record(HELLO_ACK, ack(caps, status, reason), crc)
    for rtype, body in rest:
        out += record(rtype, body, crc)
    return out


def ctl():
    return struct.pack("<Q", MIG_ID)


def main():
    if not TOOL.exists():
        sys.exit(f"{TOOL} not built (make host)")
    base = CAP_XSAVE | CAP_ITER_STATS
    seeds = {
        "p1-nocrc-m00": (0x00, gen("--pages", 1, "--seed", 3, "--iterations", 3, "--no-crc")),
        "p2-crc-m01": (0x01, gen("--pages", 2, "--seed", 5, "--iterations", 2)),
        "p2-nocrc-m02": (0x02, gen("--pages", 2, "--seed", 4, "--iterations", 3, "--no-crc")),
        "p3-raw-m00": (0x00, gen("--pages", 3, "--seed", 6, "--iterations", 1, "--no-crc", "--no-xbzrle")),
        "p8-nocrc-m20": (0x20, gen("--pages", 8, "--seed", 2, "--iterations", 2, "--no-crc")),
        "live-p2-classic-m20": (0x20, live(gen("--pages", 2, "--seed", 7, "--iterations", 1, "--no-crc"), False)),
        "live-p4-verify-m22": (0x22, live(gen("--pages", 4, "--seed", 8, "--iterations", 2, "--no-crc"), True)),
        "reply-commit-m10": (0x10, reply(base | CAP_CRC32C, (READY, ctl()), (COMMIT, ctl()))),
        "reply-nack-m10": (0x10, reply(base, (NACK, struct.pack("<IIQ", 1, 0, MIG_ID) + b"digest mismatch"))),
        "reply-refused-m10": (0x10, reply(0, status=2, reason=b"too big")),
        "reply-verified-m11": (0x11, reply(base | CAP_CRC32C | CAP_VERIFY_AFTER, (READY, ctl()),
                                           (COMMIT, ctl()), (VERIFIED, ctl()))),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (mode, stream) in seeds.items():
        (OUT / name).write_bytes(bytes([mode]) + stream)
        print(f"{OUT / name}: {1 + len(stream)} bytes")


if __name__ == "__main__":
    main()
