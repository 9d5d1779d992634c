#!/usr/bin/env python3
"""constraints_bench: live migration under a bandwidth cap, the matrix of
docs/migration.md's "Under a bandwidth cap": each workload with XBZRLE off, on and auto,
at max-bandwidth unlimited and 8 MiB/s (ferry's own cap, held on the wire);
at 8 MiB/s also auto with the whole cache budget at once (auto-full:
x-xbzrle-auto-fit off) against auto's cache sized to the dirty set and
grown (the default), and XBZRLE off with auto-converge on.
downtime-limit 300 ms.

Two instances (QEMU TCG, `-netdev socket` on 127.0.0.1); every guest starts
fresh on A, runs WARM seconds, migrates to B and is dropped there. For each
run: total time, downtime against the limit, stream bytes, rounds and why
pre-copy stopped, the XBZRLE hit rate, the highest throttle, and what the
source decided (its `decisions:`). Ratios: total time and bytes against
XBZRLE off at the same cap, measured in the same run of this script.

    /usr/bin/python3 tests/bench/constraints_bench.py [--only sparse] [--caps 8M] [--warm 2]
"""
import argparse
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from ferrylib import Instances, info_fields, start_linked_pair, wait_status  # noqa: E402

WORKLOADS = [
    ("synthetic", "synthetic 256M"),
    ("sparse", "sparse 64M 20"),
    ("hotset", "hotset 64M 20"),
    ("idle", "idle 64M"),
    ("stamp", "stamp 64M"),
]
# (label, xbzrle, auto-converge, x-xbzrle-auto-fit)
MODES = [("off", "off", False, "on"), ("on", "on", False, "on"), ("auto", "auto", False, "on")]
CAPPED = [("auto-full", "auto", False, "off"), ("off+ac", "off", True, "on")]
IPS = {"a": "10.0.0.1", "b": "10.0.0.2"}
PORT = 4444
MIG_TIMEOUT = 600  # s: one migration, a bound on a hung emulator


def decisions(out):
    _, _, rest = out.partition("\ndecisions:")
    return [ln.strip() for ln in rest.splitlines()[1:] if ln.startswith("  ")]


def run(a, b, guest, xbzrle, converge, fit, cap, warm):
    for c in (f"migrate_set_capability xbzrle {xbzrle}",
              f"migrate_set_capability auto-converge {'on' if converge else 'off'}",
              f"migrate_set_parameter x-xbzrle-auto-fit {fit}",
              f"migrate_set_parameter max-bandwidth {cap}"):
        out = a.cmd(c)
        if out.strip():
            raise RuntimeError(f"{c}: {out}")
    if "running" not in a.cmd(f"guest start {guest}"):
        raise RuntimeError(f"guest start {guest}")
    time.sleep(warm)
    if "listening" not in b.cmd(f"migrate_incoming tcp:0:{PORT}"):
        raise RuntimeError("migrate_incoming")
    a.cmd(f"migrate tcp:{IPS['b']}:{PORT}")
    d, out = wait_status(a, ("completed", "failed", "cancelled"), MIG_TIMEOUT)
    rows = a.cmd("info migrate iterations")
    thr = [int(x) for x in re.findall(r"^\s*\d+(?:\s+\S+){10}\s+(\d+)\s+\d+\s*$", rows, re.M)]
    st = d["Migration status"].split(" ")[0]
    if st != "completed":
        raise RuntimeError(f"migration {st}: {d.get('result')}\n{out}")
    b.cmd("guest quit")
    log = decisions(out)
    miss = float(d.get("xbzrle cache miss rate", "nan"))
    return {
        "total": int(d["total time"].split()[0]),
        "downtime": int(d["downtime"].split()[0]),
        "mb": int(d["transferred ram"].split()[0]) / 1024,
        "rounds": d["rounds"].split(",")[0],
        "stopped": d["rounds"].partition("stopped: ")[2],
        "hit": "-" if miss != miss else f"{100 * (1 - miss):.0f}%",
        "throttle": max(thr) if thr else 0,
        "xbzrle": "; ".join(re.sub(r"^round (\d+): ", r"r\1 ", x) for x in log
                            if "xbzrle" in x)[:200],
        "end": re.sub(r"^round (\d+): switch-over: ", r"r\1 ", log[-1]) if log else "",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="one workload (synthetic, sparse, hotset, idle, stamp)")
    ap.add_argument("--caps", default="0,8M", help="max-bandwidth values, comma-separated (0: unlimited)")
    ap.add_argument("--warm", type=float, default=2.0, help="s the guest runs before the migration")
    a = ap.parse_args()
    caps = a.caps.split(",")
    results = []
    with tempfile.TemporaryDirectory(prefix="ferry-cbench-") as tmp, Instances(tmp) as qemu:
        def start(**kw):
            return qemu(mem="1G", **kw)
        src, dst, _ = start_linked_pair(start, "virtio-net-pci")
        for i, n in ((src, "a"), (dst, "b")):
            if "net:" not in i.cmd(f"net config {IPS[n]}/24"):
                raise RuntimeError("net config")
        for name, guest in WORKLOADS:
            if a.only and name != a.only:
                continue
            for cap in caps:
                modes = MODES + (CAPPED if cap != "0" else [])
                for label, x, conv, fit in modes:
                    r = run(src, dst, guest, x, conv, fit, cap, a.warm)
                    r.update(workload=name, cap="unlimited" if cap == "0" else cap + "iB/s", mode=label)
                    results.append(r)
                    print(f"  {name} {r['cap']} {label}: {r['total']} ms, downtime {r['downtime']} ms, "
                          f"{r['mb']:.0f} MiB, rounds {r['rounds']} ({r['stopped']})", flush=True)
    ref = {(r["workload"], r["cap"]): r for r in results if r["mode"] == "off"}
    print("\n| workload | max-bandwidth | xbzrle | total | vs off | downtime (limit 300 ms) | MiB | vs off "
          "| rounds | hit rate | throttle | what it decided |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        o = ref[(r["workload"], r["cap"])]
        over = " (over)" if r["downtime"] > 300 else ""
        what = "; ".join(x for x in (r["xbzrle"], r["end"]) if x)
        print(f"| {r['workload']} | {r['cap']} | {r['mode']} | {r['total'] / 1000:.1f} s | "
              f"{r['total'] / o['total']:.2f} | {r['downtime']} ms{over} | {r['mb']:.0f} | {r['mb'] / o['mb']:.2f} | "
              f"{r['rounds']} ({r['stopped']}) | {r['hit']} | {r['throttle']}% | {what} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
