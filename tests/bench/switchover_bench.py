#!/usr/bin/env python3
"""switchover_bench: the switch-over's downtime against the guest's size,
with the memory verified after the pause (verify-after on, the default)
and, as the reference measured in the same run, in it (verify-after off:
the whole-memory DIGEST is hashed at both ends while the guest is stopped,
as before).

For each size: two instances (QEMU TCG, -netdev socket on 127.0.0.1), a
running `stamp` guest of that size; ROUNDS times, alternating the mode and
the direction so both see the same host load, migrate and take the
source's `info migrate`. Per size: the median downtime in each mode, their
ratio (after / in the pause), and for verify-after the time from the
source's COMMIT to its VERIFIED (the verification after the pause) and the
destination's regions hashed at a guest write.

    /usr/bin/python3 tests/bench/switchover_bench.py [--rounds 2] [--size 64M --size 1G ...]
"""
import argparse
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from ferrylib import Instances, info_fields, median, start_linked_pair, wait_status  # noqa: E402

IPS = {"a": "10.0.0.1", "b": "10.0.0.2"}
PORT = 4444
MIG_TIMEOUT = 600  # s: one migration of the largest guest, a bound on a hung emulator
SIZES = ["64M", "256M", "1G"]


def ms(v):
    return int(v.split()[0])


def migrate(src, dst, verify_after):
    src.cmd(f"migrate_set_capability verify-after {'on' if verify_after else 'off'}")
    out = dst.cmd(f"migrate_incoming tcp:0:{PORT}")
    if "listening" not in out:
        raise RuntimeError(f"migrate_incoming: {out}")
    out = src.cmd(f"migrate tcp:{IPS[dst.name]}:{PORT}")
    if "connecting" not in out:
        raise RuntimeError(f"migrate: {out}")
    d, text = wait_status(src, ("completed", "failed", "cancelled", "in-doubt"), MIG_TIMEOUT)
    if not d["Migration status"].startswith("completed"):
        raise RuntimeError(f"migration: {text}")
    db, textb = wait_status(dst, ("completed", "failed"), 60)
    if not db["Migration status"].startswith("completed"):
        raise RuntimeError(f"destination: {textb}")
    time.sleep(0.5)
    g = dst.cmd("info guest")
    if "stamp, running" not in g or "errors 0" not in g:
        raise RuntimeError(f"the stamp guest is not running cleanly after migration:\n{g}")
    r = dict(down=ms(d["downtime"]), total=ms(d["total time"]), verify_ms=None, at_write=None)
    if verify_after:
        m = re.search(r"VERIFIED at \+(\d+) ms", text)
        r["verify_ms"] = int(m.group(1)) - r["down"] if m else None
        m = re.search(r"^verification: (\d+) regions, hashed in (\d+) ms \((\d+) at a guest write, which waited"
                      r" (\d+) ms\)", textb, re.M)
        r["at_write"] = f"{m.group(3)}/{m.group(1)} ({m.group(4)} ms)" if m else "?"
    return r


def run_size(size, rounds, workdir):
    mem = {"64M": "256M", "256M": "512M", "1G": "1536M"}.get(size, "2G")
    with Instances(workdir) as start:
        def qemu(**kw):
            return start(mem=mem, **kw)
        a, b, _ = start_linked_pair(qemu, "virtio-net-pci")
        a.cmd(f"net config {IPS['a']}/24")
        b.cmd(f"net config {IPS['b']}/24")
        out = a.cmd(f"guest start stamp {size}")
        if "running" not in out:
            raise RuntimeError(f"guest start: {out}")
        time.sleep(2)
        res = {True: [], False: []}
        src, dst = a, b
        for i in range(2 * rounds):
            mode = i % 2 == 0
            r = migrate(src, dst, mode)
            res[mode].append(r)
            print(f"{size} {src.name}->{dst.name} verify-after {'on ' if mode else 'off'}: downtime {r['down']} ms, "
                  f"total {r['total']} ms" + (f", verified {r['verify_ms']} ms after COMMIT, regions hashed at a "
                                              f"guest write {r['at_write']}" if mode else ""), flush=True)
            src, dst = dst, src
        return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("FERRY_BENCH_ROUNDS", "2")))
    ap.add_argument("--size", action="append")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ferry-switchover-bench-") as wd:
        for size in args.size or SIZES:
            rows.append((size, run_size(size, args.rounds, wd)))
    print(f"\nswitchover bench: downtime of a running stamp guest by size, memory verified after the pause "
          f"(verify-after on) and in it (off, the reference); medians of {args.rounds} migrations each "
          f"(QEMU TCG, -netdev socket)")
    print(f"{'size':>6} {'after ms':>9} {'in pause ms':>12} {'ratio':>6} {'verified after COMMIT ms':>25}")
    for size, res in rows:
        on, off = median([r["down"] for r in res[True]]), median([r["down"] for r in res[False]])
        ver = median([r["verify_ms"] for r in res[True] if r["verify_ms"] is not None] or [0])
        print(f"{size:>6} {on:9.0f} {off:12.0f} {on / off:6.2f} {ver:25.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
