#!/usr/bin/env python3
"""mig_bench: live-migration speed between two ferry instances, as a ratio
to the raw TCP throughput of the same link measured in the same run
(QEMU TCG, `-netdev socket` on 127.0.0.1).

For each NIC: boot two instances, then ROUNDS times, alternating so both
see the same host load:

- TCP: `net bench send` of MIB MiB (lwIP TCP, payload checksum
  verified) in the direction the stopped guest will go: the reference.
- stopped: a SIZE guest with data in nearly every page (the `sparse`
  workload at full speed for a second, then `guest stop`) migrates: one
  bulk pass, no dirtying. Its rate is the stream bytes over the bulk
  pass's time (total time less setup and switch-over); ratio = that / the
  TCP rate.
- live: a running `stamp` guest (16 MiB rewritten in a loop) migrates the
  other way; its total time, downtime and rounds, and the switch-over's
  timeline.

Rounds alternate the direction (A->B first, then B->A). Every figure is
the guest's own clock
(`info migrate`, `bench recv`). This shared 2-core host moves single runs
by 10-30%: the table gives medians and the range of per-round ratios.

    /usr/bin/python3 tests/bench/mig_bench.py [--rounds 3] [--size 64M] [--mib 64] [--nic e1000]
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from ferrylib import Instances, bench_transfer, median, start_linked_pair, wait_status  # noqa: E402

NICS = ["virtio-net-pci", "e1000"]
IPS = {"a": "10.0.0.1", "b": "10.0.0.2"}
MIG_PORT, TCP_PORT = 4444, 5001
MIG_TIMEOUT = 300  # s: one migration, a bound on a hung emulator
FILL_S = 1.0       # s of the sparse workload at full speed before stopping it


def ms(v):
    return int(v.split()[0])


def migrate(src, dst):
    """Migrate src's guest to dst; return src's final `info migrate` dict."""
    out = dst.cmd(f"migrate_incoming tcp:0:{MIG_PORT}")
    if "listening" not in out:
        raise RuntimeError(f"migrate_incoming: {out}")
    out = src.cmd(f"migrate tcp:{IPS[dst.name]}:{MIG_PORT}")
    if "connecting" not in out:
        raise RuntimeError(f"migrate: {out}")
    d, _ = wait_status(src, ("completed", "failed", "cancelled"), MIG_TIMEOUT)
    st = d["Migration status"].split(" ")[0]
    if st != "completed":
        raise RuntimeError(f"migration {st}: {d.get('result')}")
    if "guest: none" not in src.cmd("info guest"):
        raise RuntimeError("the source still has a guest after completing")
    return d


def stopped_round(src, dst, size):
    out = src.cmd(f"guest start sparse {size} 1000000 7")
    if "running" not in out:
        raise RuntimeError(f"guest start: {out}")
    time.sleep(FILL_S)
    src.cmd("guest stop")
    d = migrate(src, dst)
    dst.cmd("guest quit")
    total, setup, down = ms(d["total time"]), ms(d["setup"]), ms(d["downtime"])
    stream = ms(d["transferred ram"]) * 1024
    bulk_s = max(total - setup - down, 1) / 1e3
    return dict(stream_mib=stream / 2**20, normal=int(d["normal"].split()[0]),
                duplicate=int(d["duplicate"].split()[0]), total_ms=total, setup_ms=setup, down_ms=down,
                mig_mbs=stream / bulk_s / 1e6)


def live_round(src, dst, size):
    out = src.cmd(f"guest start stamp {size}")
    if "running" not in out:
        raise RuntimeError(f"guest start: {out}")
    time.sleep(1)
    d = migrate(src, dst)
    time.sleep(0.5)
    g = dst.cmd("info guest")
    if "stamp, running" not in g or "MISMATCH" in dst.console_text():
        raise RuntimeError(f"the stamp guest is not running cleanly after migration:\n{g}")
    dst.cmd("guest quit")
    return dict(live_total_ms=ms(d["total time"]), live_down_ms=ms(d["downtime"]),
                live_rounds=int(d["rounds"].split(",")[0]),
                live_mib=ms(d["transferred ram"]) / 1024, live_switch=d.get("switch-over", "?"),
                live_digests=d.get("digests", "?"), live_mbps=d.get("mbps", "?"))


def run_one(model, args, workdir):
    with Instances(workdir) as start:
        a, b, _ = start_linked_pair(start, model)  # named "a" and "b"
        a.cmd(f"net config {IPS['a']}/24")
        b.cmd(f"net config {IPS['b']}/24")
        a.cmd(f"ping {IPS['b']} 1", timeout=60)
        a.cmd(f"net bench listen {TCP_PORT}")
        b.cmd(f"net bench listen {TCP_PORT}")
        rounds = []
        src, dst = a, b
        for _ in range(args.rounds):
            r = dict(direction=f"{src.name}->{dst.name}")
            r["tcp_mbs"] = bench_transfer(src, dst, IPS[dst.name], TCP_PORT, args.mib)["recv_mbs"]
            r.update(stopped_round(src, dst, args.size))
            r.update(live_round(dst, src, args.size))  # and back: the live guest ends where it began
            rounds.append(r)
            print(f"{model} {r['direction']}: TCP {r['tcp_mbs']:.1f} MB/s; stopped guest {r['stream_mib']:.1f} MiB "
                  f"({r['normal']} raw, {r['duplicate']} zero pages) in {r['total_ms']} ms "
                  f"(setup {r['setup_ms']}, switch-over {r['down_ms']}), bulk {r['mig_mbs']:.1f} MB/s, "
                  f"ratio {r['mig_mbs'] / r['tcp_mbs']:.2f}; live stamp guest {r['live_total_ms']} ms, "
                  f"downtime {r['live_down_ms']} ms, {r['live_rounds']} rounds\n"
                  f"    live switch-over: {r['live_switch']}; digests {r['live_digests']}; "
                  f"bandwidth estimate {r['live_mbps']} mbps", flush=True)
            src, dst = dst, src
        return rounds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("FERRY_BENCH_ROUNDS", "3")))
    ap.add_argument("--size", default="64M")
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--nic", action="append", choices=NICS)
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    rows = []
    with tempfile.TemporaryDirectory(prefix="ferry-mig-bench-") as wd:
        for model in args.nic or NICS:
            rows.append((model, run_one(model, args, wd)))
    print(f"\nmig bench: a stopped {args.size} guest (every page data) and a live {args.size} stamp guest, "
          f"against TCP of {args.mib} MiB on the same link; medians of {args.rounds} rounds "
          f"(QEMU TCG, -netdev socket; MB/s = 10^6 B/s of stream or payload)")
    print(f"{'nic':16} {'TCP MB/s':>9} {'migration MB/s':>15} {'ratio':>6} {'(rounds)':>10} "
          f"{'stopped total ms':>17} {'live total ms':>14} {'live downtime ms':>17}")
    for model, rs in rows:
        per = [r["mig_mbs"] / r["tcp_mbs"] for r in rs]
        tcp, mig = median([r["tcp_mbs"] for r in rs]), median([r["mig_mbs"] for r in rs])
        print(f"{model:16} {tcp:9.1f} {mig:15.1f} {mig / tcp:6.2f} {min(per):.2f}-{max(per):.2f} "
              f"{median([r['total_ms'] for r in rs]):17.0f} {median([r['live_total_ms'] for r in rs]):14.0f} "
              f"{median([r['live_down_ms'] for r in rs]):17.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
