#!/usr/bin/env python3
"""net_bench: TCP goodput between two ferry instances next to the driver's
raw frame-send rate, per NIC model, measured in the same run (QEMU TCG).

For each NIC: boot two instances on a `-netdev socket` link, ping (RTT),
then ROUNDS times: blast RAW_FRAMES MTU-sized frames from A through the
driver alone (`net bench raw`), and move MIB MiB over TCP from A to B
(`net bench send`, payload checksum verified by B). The two alternate so
both see the same host load; the table gives each one's median over the
rounds and their ratio (TCP goodput / raw rate, both in MB/s: 10^6
bytes/s of Ethernet frame bytes for raw, of TCP payload for TCP), with the
range of the per-round ratios. This shared 2-core host moves single runs
by 10-30%.

Rates come from each guest's TSC clock; the host's wall time of the same
transfer is printed next to them as a cross-check.

    /usr/bin/python3 tests/bench/net_bench.py [--mib 64] [--raw-frames 100000] [--rounds 3] [--nic e1000]
"""
import argparse
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from ferrylib import Instances, bench_transfer, median, start_linked_pair  # noqa: E402

NICS = ["virtio-net-pci", "e1000"]


def raw_round(a, model, raw_frames):
    t0 = time.monotonic()
    out = a.cmd(f"net bench raw {raw_frames}", timeout=600)
    raw_wall = time.monotonic() - t0
    m = re.search(r"bench raw: (\d+) frames of (\d+) bytes in ([0-9.]+) s, (\d+) frames/s, ([0-9.]+) MB/s, dropped (\d+)", out)
    if not m:
        raise RuntimeError(f"{model}: raw bench failed:\n{out}")
    return dict(raw_fps=float(m.group(4)), raw_mbs=float(m.group(5)),
                raw_host_mbs=int(m.group(1)) * int(m.group(2)) / raw_wall / 1e6)


def tcp_round(a, b, mib):
    t = bench_transfer(a, b, "10.0.0.2", 5001, mib, timeout=1200)
    return dict(send_mbs=t["send_mbs"], recv_mbs=t["recv_mbs"], tcp_host_mbs=(mib << 20) / t["wall_s"] / 1e6)


def run_one(model, mib, raw_frames, nrounds, workdir, link):
    with Instances(workdir) as start:
        a, b, _ = start_linked_pair(start, model, link=link)
        a.cmd("net config 10.0.0.1/24")
        b.cmd("net config 10.0.0.2/24")
        # A first ping resolves ARP and waits out QEMU e1000's 1 s receive
        # hold-off after boot: not part of the round-trip figure.
        a.cmd("ping 10.0.0.2 1", timeout=60)
        out = a.cmd("ping 10.0.0.2 10", timeout=60)
        m = re.search(r"rtt min/avg/max ([0-9.]+)/([0-9.]+)/([0-9.]+) ms", out)
        rtt = tuple(float(x) for x in m.groups()) if m else None

        b.cmd("net bench listen 5001")
        rounds = []
        for _ in range(nrounds):
            rounds.append(dict(raw_round(a, model, raw_frames), **tcp_round(a, b, mib)))
        return dict(model=model, rtt=rtt, rounds=rounds)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=int(os.environ.get("FERRY_BENCH_MIB", "64")))
    ap.add_argument("--raw-frames", type=int, default=int(os.environ.get("FERRY_BENCH_RAW", "100000")))
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("FERRY_BENCH_ROUNDS", "3")))
    ap.add_argument("--nic", action="append", choices=NICS)
    ap.add_argument("--link", default="socket", choices=["socket", "stream", "dgram"])
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    rows = []
    with tempfile.TemporaryDirectory(prefix="ferry-net-bench-") as wd:
        for model in a.nic or NICS:
            rows.append(run_one(model, a.mib, a.raw_frames, a.rounds, wd, a.link))
            for i, r in enumerate(rows[-1]["rounds"]):
                print(f"{model} round {i + 1}: raw {r['raw_fps']:.0f} frames/s {r['raw_mbs']:.2f} MB/s, "
                      f"tcp send {r['send_mbs']:.2f} recv {r['recv_mbs']:.2f} MB/s, "
                      f"ratio {r['recv_mbs'] / r['raw_mbs']:.2f}", flush=True)
    print(f"\nnet bench: TCP {a.mib} MiB A->B vs raw blast of {a.raw_frames} x 1514-byte frames, "
          f"medians of {a.rounds} alternating rounds (QEMU TCG, -netdev {a.link}; MB/s = 10^6 B/s; "
          f"guest clock, host wall in brackets)")
    print(f"{'nic':16} {'raw frames/s':>12} {'raw MB/s':>16} {'TCP send MB/s':>14} {'TCP recv MB/s':>20} "
          f"{'ratio':>6} {'(rounds)':>11} {'ping avg ms':>11}")
    for row in rows:
        rs = row["rounds"]
        med = {k: median([r[k] for r in rs]) for k in rs[0]}
        ratio = med["recv_mbs"] / med["raw_mbs"] if med["raw_mbs"] else 0
        per = [r["recv_mbs"] / r["raw_mbs"] for r in rs if r["raw_mbs"]]
        span = f"{min(per):.2f}-{max(per):.2f}" if per else "-"
        rtt = f"{row['rtt'][1]:.3f}" if row["rtt"] else "-"
        print(f"{row['model']:16} {med['raw_fps']:12.0f} {med['raw_mbs']:7.2f} [{med['raw_host_mbs']:6.2f}] "
              f"{med['send_mbs']:14.2f} {med['recv_mbs']:9.2f} [{med['tcp_host_mbs']:7.2f}] {ratio:6.2f} "
              f"{span:>11} {rtt:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
