#!/usr/bin/env python3
"""linux_bench: the Linux guest (issue 16) under ferry's npt on QEMU TCG.

1. Boot: seconds from `guest start linux` to the guest's shell prompt
   (3 boots, each in a fresh ferry), against the same kernel and
   initramfs booted by QEMU itself (-kernel/-initrd, ferrylib.DirectLinux:
   QEMU start to the prompt); the ratio ferry/direct.
2. VM exits by reason per second (`info guest` deltas over ferry's own
   clock) while booting (counts at the prompt over the time up), with the
   shell waiting, and under each program of tests/linux (started from the
   shell, WINDOW_S seconds each), with the guest's run time per wall second
   and the interrupts ferry injected per second; then the guest's
   clocksource and tick mode, which every one of those counts follows.
3. Each program's dirty rate: `dirtylog start`, then a `dirtylog harvest`
   every second; `info dirty` gives each harvest's pages over ferry's time
   since the one before (distinct pages dirtied per ~1 s).
4. Live migration of the 256 MiB guest, one fresh boot per program and
   xbzrle setting, between two ferry instances linked by a QEMU socket
   netdev (virtio-net): total time, downtime, stream bytes, rounds and why
   pre-copy stopped, the xbzrle cache hit rate, the dirty rate migration
   saw; ratios against the idle guest with xbzrle off of the same run. Each
   migration is checked at the destination (the program's lines go on,
   stamp finds no stale page) and bounded at MIG_TIMEOUT.

One run each: this shared 2-core host moves single runs by 10-30%.
Numbers are nested-TCG numbers; ratios are what carry over.

    /usr/bin/python3 tests/bench/linux_bench.py [--quick] [--migrations-only] [--max-bandwidth 8M]

--quick: one boot, the shell and synthetic, 4 migrations (a smoke run).
--migrations-only: part 4 alone. --max-bandwidth: the source's cap on
each migration (migrate_set_parameter max-bandwidth), the table then also
says what the source decided.
Exit status 1 when a migration did not complete or failed its check.
"""
import argparse
import os
import re
import sys
import tempfile
import time

import pexpect

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from ferrylib import (DirectLinux, GuestShell, Qemu, free_port, info_fields, linux_boot_files,  # noqa: E402
                      median, nic_args, wait_tcp_listening)

MEM = "1G"            # QEMU's memory for ferry: the 256 MiB guest and ferry's own
GUEST_BOOT_S = 240    # s: bound on `guest start linux` to the shell (nested TCG)
WINDOW_S = 5          # s: each exit-count and dirty-rate window
WARM_S = 1.0          # s: a program runs this long past its first line before a window
MIG_TIMEOUT = 300     # s: bound on one migration
SEEN_S = 30           # s: bound on the program's next line at the destination
MIG_PORT = 4444
IPS = {"a": "10.0.0.1", "b": "10.0.0.2"}
NIC = "virtio-net-pci"

# label, shell command, a line it prints at least once a second.
PROGRAMS = {
    "idle": ("idle", r"idle: tick \d+ at"),
    "synthetic": ("synthetic", r"synthetic: pass \d+, \d+ passes/s"),
    "sparse 64 20": ("sparse 64 20", r"sparse: \d+ writes/s"),
    "stamp 64": ("stamp 64", r"stamp: pass \d+ errors \d+"),
}
MODES = ["off", "on", "auto"]
REF = ("idle", "off")  # the migration every other one is compared with


# ---------------------------------------------------------------------------
# ferry's console

def guest_state(f):
    """`info guest` as numbers: up and ran (s), exits {reason: count},
    interrupts injected, and the first line."""
    out = f.cmd("info guest")
    d = info_fields(out)
    m = re.search(r"up ([0-9.]+) s, ran ([0-9.]+) s", d.get("guest", ""))
    if not m or "exits" not in d:
        raise RuntimeError(f"info guest: no run times or exits in:\n{out}")
    toks = d["exits"].split()
    exits = {toks[i]: int(toks[i + 1]) for i in range(0, len(toks) - 1, 2)}
    irq = re.search(r"interrupts (\d+)", d.get("platform counters", ""))
    return dict(up=float(m.group(1)), ran=float(m.group(2)), exits=exits,
                irqs=int(irq.group(1)) if irq else 0, line=d["guest"])


def rates(g0, g1):
    """Per-second rates between two guest_state()s (g0 None: since the start)."""
    z = dict(up=0.0, ran=0.0, irqs=0, exits={k: 0 for k in g1["exits"]})
    g0 = g0 or z
    dt = g1["up"] - g0["up"]
    if dt <= 0:
        raise RuntimeError(f"ferry's clock did not move: {g0['line']} / {g1['line']}")
    r = {k: (v - g0["exits"].get(k, 0)) / dt for k, v in g1["exits"].items()}
    return dict(exits=r, total=sum(r.values()), irqs=(g1["irqs"] - g0["irqs"]) / dt,
                ran=(g1["ran"] - g0["ran"]) / dt, dt=dt)


def dirty_rates(f, seconds):
    """Harvest every second for seconds; returns [(pages/s, pages, cost us)]."""
    out = f.cmd("dirtylog start")
    if "dirty logging on" not in out:
        raise RuntimeError(f"dirtylog start: {out}")
    try:
        f.cmd("dirtylog harvest")  # what came before the window
        got = []
        for _ in range(seconds):
            time.sleep(1)
            out = f.cmd("dirtylog harvest")
            if "pages dirty" not in out:
                raise RuntimeError(f"dirtylog harvest: {out}")
            info = f.cmd("info dirty")
            m = re.search(r"last harvest: (\d+) pages dirty, cost ([0-9.]+) us \(\d+ entries\), (\d+) pages/s", info)
            if not m:
                raise RuntimeError(f"info dirty: {info}")
            got.append((int(m.group(3)), int(m.group(1)), float(m.group(2))))
        return got
    finally:
        f.cmd("dirtylog stop")


def read_more(serial, seconds):
    """Read what a SerialSocket has for seconds (into its log)."""
    try:
        serial.con.expect(pexpect.TIMEOUT, timeout=seconds)
    except pexpect.EOF:
        raise RuntimeError("COM2 closed")


def wait_text(serial, start, pattern, timeout):
    """Wait until pattern shows in what serial printed past offset start."""
    deadline = time.monotonic() + timeout
    while True:
        read_more(serial, 0.3)
        m = re.search(pattern, serial.text()[start:])
        if m:
            return m
        if time.monotonic() > deadline:
            tail = serial.text()[start:][-600:]
            raise RuntimeError(f"no /{pattern}/ on COM2 within {timeout} s; it printed:\n{tail}")


def start_linux(f):
    """`guest start linux` on f; returns (shell, seconds to the prompt, info at the prompt)."""
    shell = GuestShell(f.com2.con, f.com2.send)
    t0 = time.monotonic()
    out = f.cmd("guest start linux")
    if not re.search(r"guest: linux, 256 MiB, backend \S+: running", out):
        raise RuntimeError(f"guest start linux: {out}")
    shell.wait_ready(timeout=GUEST_BOOT_S)
    took = time.monotonic() - t0
    return shell, took, guest_state(f)


def start_program(f, shell, label):
    """Start a program in the background from the shell and wait for its
    first periodic line (past its set-up: MAP_POPULATE)."""
    cmd, pattern = PROGRAMS[label]
    start = len(f.com2.text())
    shell.run(f"{cmd} &")
    wait_text(f.com2, start, pattern, 60)
    time.sleep(WARM_S)


# ---------------------------------------------------------------------------
# 1-3: boots, exits and dirty rates in one instance at a time

def run_single(args, wd):
    """Boots ferry and direct QEMU alternately; the last ferry boot also
    measures the phases. Returns (ferry_s, direct_s, phases, clock) with
    phases [(label, rates, dirty)] and clock guest_clock()'s line."""
    ferry_s, direct_s, boot_rates, phases, clock = [], [], [], [], "?"
    for i in range(args.boots):
        f = Qemu(wd, name=f"ferry{i}", mem=MEM, boot_files=linux_boot_files(), com2=True)
        try:
            f.wait_ready()
            shell, took, g = start_linux(f)
            ferry_s.append(took)
            boot_rates.append(rates(None, g))
            print(f"boot {i + 1}: ferry `guest start linux` -> shell {took:.1f} s (ferry's clock: {g['line']})",
                  flush=True)
            if i == args.boots - 1:
                phases.append(("booting (to the prompt)", merge_boot(boot_rates), None))
                for label in ["shell waiting"] + args.programs:
                    if label != "shell waiting":
                        start_program(f, shell, label)
                    g0 = guest_state(f)
                    time.sleep(args.window)
                    r = rates(g0, guest_state(f))
                    d = dirty_rates(f, args.window)
                    if label != "shell waiting":
                        shell.run("kill $!")
                    if "MISMATCH" in f.com2.text():
                        raise RuntimeError("stamp found a stale page without any migration")
                    phases.append((label, r, d))
                    print(f"  {label}: {r['total']:.0f} exits/s, ran {r['ran']:.2f} s/s, "
                          f"dirty {median([x[0] for x in d]):.0f} pages/s", flush=True)
                clock = guest_clock(shell)
                print(f"  guest clock after the phases: {clock}", flush=True)
        finally:
            f.close()
        t0 = time.monotonic()
        d = DirectLinux(wd, name=f"direct{i}", com2=True)
        try:
            d.wait_ready(GUEST_BOOT_S)
            direct_s.append(time.monotonic() - t0)
        finally:
            d.close()
        print(f"boot {i + 1}: direct QEMU start -> shell {direct_s[-1]:.1f} s", flush=True)
    return ferry_s, direct_s, phases, clock


def guest_clock(shell):
    """The guest's clocksource and tick mode, printed with the exit table:
    an idle guest on high-resolution timers takes ~40 timer interrupts a
    second, one on a periodic tick 250, and every exit count follows."""
    # Between markers: the echoed command line wraps, programs may print.
    out = shell.run("echo @@$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
                    "@@$(grep -c 'hres_active.*: 1' /proc/timer_list)@@$(dmesg | grep -ci unstable)@@", timeout=30)
    m = re.search(r"@@([^@$\n]+)@@([^@$\n]+)@@([^@$\n]+)@@", out)
    if not m:
        return f"unreadable: {out!r}"
    return (f"clocksource {m.group(1)}, high-resolution timers {'on' if m.group(2) != '0' else 'OFF'}, "
            f"{m.group(3)} dmesg line(s) saying 'unstable'")


def merge_boot(rs):
    """The boots' rates pooled: every boot's counts over all their time."""
    dt = sum(r["dt"] for r in rs)
    ex = {k: sum(r["exits"][k] * r["dt"] for r in rs) / dt for k in rs[0]["exits"]}
    return dict(exits=ex, total=sum(ex.values()), irqs=sum(r["irqs"] * r["dt"] for r in rs) / dt,
                ran=sum(r["ran"] * r["dt"] for r in rs) / dt, dt=dt)


# ---------------------------------------------------------------------------
# 4: migrations

class Pair:
    """Two linked ferry instances with the Linux image; restart() replaces
    both (after a migration that did not complete)."""

    def __init__(self, wd):
        self.wd = wd
        self.started = []
        self.n = 0
        self.restart()

    def restart(self):
        self.close()
        self.n += 1
        port = free_port()
        files = linux_boot_files()
        self.a = Qemu(self.wd, name=f"a{self.n}", mem=MEM, boot_files=files, com2=True,
                      extra=nic_args(NIC, "52:54:00:fe:00:01", f"socket,id=n0,listen=127.0.0.1:{port}"))
        self.started.append(self.a)
        wait_tcp_listening(port)
        self.b = Qemu(self.wd, name=f"b{self.n}", mem=MEM, boot_files=files, com2=True,
                      extra=nic_args(NIC, "52:54:00:fe:00:02", f"socket,id=n0,connect=127.0.0.1:{port}"))
        self.started.append(self.b)
        self.a.wait_ready()
        self.b.wait_ready()
        self.a.ip, self.b.ip = IPS["a"], IPS["b"]
        for f in (self.a, self.b):
            out = f.cmd(f"net config {f.ip}/24")
            if "error" in out:
                raise RuntimeError(f"net config: {out}")
        self.a.cmd(f"ping {IPS['b']} 1", timeout=60)

    def close(self):
        for f in self.started:
            f.close()
        self.started = []


def kb(v):
    return int(v.split()[0]) * 1024


def ms(v):
    return int(v.split()[0])


def migrate_once(src, dst, label, mode, cap="0"):
    """Boot a guest on src, start the program, migrate to dst with xbzrle
    mode (and max-bandwidth cap); returns a result dict (status, numbers or
    the error)."""
    r = dict(prog=label, mode=mode, direction=f"{src.name}->{dst.name}")
    shell, r["boot_s"], _ = start_linux(src)
    start_program(src, shell, label)
    for f in (src, dst):
        for c in (f"migrate_set_capability xbzrle {mode}", f"migrate_set_parameter max-bandwidth {cap}"):
            out = f.cmd(c)
            if out.strip():
                raise RuntimeError(f"{c}: {out}")
    caps = src.cmd("info migrate")
    if f"capabilities: xbzrle: {mode}" not in caps:
        raise RuntimeError(f"xbzrle is not {mode}:\n{caps}")
    read_more(dst.com2, 0.2)
    dst_start = len(dst.com2.text())
    out = dst.cmd(f"migrate_incoming tcp:0:{MIG_PORT}")
    if "listening" not in out:
        raise RuntimeError(f"migrate_incoming: {out}")
    out = src.cmd(f"migrate tcp:{dst.ip}:{MIG_PORT}")
    if "connecting" not in out:
        raise RuntimeError(f"migrate: {out}")
    deadline = time.monotonic() + MIG_TIMEOUT
    while True:
        text = src.cmd("info migrate")
        d = info_fields(text)
        st = d.get("Migration status", "").split(" ")[0]
        if st in ("completed", "failed", "cancelled"):
            break
        if time.monotonic() > deadline:
            src.cmd("migrate_cancel")
            r.update(status=f"not done in {MIG_TIMEOUT} s (cancelled)", info=text)
            return r
        time.sleep(0.5)
    r["info"] = text
    r["status"] = st
    if st != "completed":
        r["status"] = f"{st}: {d.get('result', '?')}"
        return r
    r.update(total_ms=ms(d["total time"]), down_ms=ms(d["downtime"]), bytes=kb(d["transferred ram"]),
             rounds=d["rounds"].split(",")[0], stopped=d["rounds"].partition("stopped: ")[2] or "-",
             dirty_rate=int(d["dirty pages rate"].split()[0]), switch=d.get("switch-over", "?"),
             xbzrle=d.get("xbzrle", "not used"),
             decided="; ".join(re.sub(r"^\s*round (\d+): ", r"r\1 ", x) for x in
                               text.partition("\ndecisions:")[2].splitlines()[1:] if x.startswith("  ")))
    if "xbzrle cache miss rate" in d:
        # A rate of 0.00 with no lookups at all is no hit rate.
        if int(d["xbzrle pages"].split()[0]) or int(d["xbzrle cache miss"].split()[0]):
            r["hit"] = 1 - float(d["xbzrle cache miss rate"])
    # The destination: completed, the guest running, the program going on.
    dd = info_fields(dst.cmd("info migrate"))
    if not dd.get("Migration status", "").startswith("completed"):
        r["status"] = f"completed at the source, {dd.get('Migration status')} at the destination"
        return r
    if "guest: none" not in src.cmd("info guest"):
        r["status"] = "completed, but the source still has a guest"
    if not re.search(r"guest: linux, running", dst.cmd("info guest")):
        r["status"] = "completed, but the destination's guest is not running"
        return r
    wait_text(dst.com2, dst_start, PROGRAMS[label][1], SEEN_S)
    if "MISMATCH" in dst.com2.text()[dst_start:]:
        r["status"] = "completed, but stamp found stale pages at the destination"
    dst.cmd("guest quit")
    return r


def run_migrations(args, wd):
    combos = [REF] + [(p, m) for p in args.mig_programs for m in args.modes if (p, m) != REF]
    results = []
    pair = Pair(wd)
    try:
        flip = False
        for label, mode in combos:
            src, dst = (pair.b, pair.a) if flip else (pair.a, pair.b)
            flip = not flip
            try:
                r = migrate_once(src, dst, label, mode, args.max_bandwidth)
            except (RuntimeError, pexpect.ExceptionPexpect) as e:
                r = dict(prog=label, mode=mode, direction=f"{src.name}->{dst.name}",
                         status=f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", info=str(e))
            results.append(r)
            if r["status"] == "completed":
                print(f"migrate {label}, xbzrle {mode} ({r['direction']}): {r['total_ms']} ms, downtime "
                      f"{r['down_ms']} ms, {r['bytes'] / 2**20:.1f} MiB, rounds {r['rounds']} ({r['stopped']}), "
                      f"xbzrle {r['xbzrle']}; switch-over: {r['switch']}", flush=True)
            else:
                print(f"migrate {label}, xbzrle {mode} ({r['direction']}): {r['status']}\n{r.get('info', '')}",
                      flush=True)
                pair.restart()  # a clean pair for the next one
                flip = False
    finally:
        pair.close()
    return results


# ---------------------------------------------------------------------------
# Tables

def print_boot(ferry_s, direct_s):
    print(f"\n1. Boot to the shell prompt: ferry `guest start linux` (npt, 256 MiB guest; ferry itself "
          f"already up) vs QEMU -kernel/-initrd of the same image (256 MiB, QEMU start included); "
          f"{len(ferry_s)} boot(s) each, QEMU 7.2 TCG")
    print(f"   {'':20}{'median':>8}{'range':>14}")
    for name, v in (("ferry", ferry_s), ("direct QEMU", direct_s)):
        print(f"   {name:20}{median(v):7.1f} s{min(v):8.1f}-{max(v):.1f} s")
    per = [a / b for a, b in zip(ferry_s, direct_s)]
    print(f"   {'ratio ferry/direct':20}{median(ferry_s) / median(direct_s):7.2f} x{min(per):8.2f}-{max(per):.2f} x"
          f" (per boot pair)")


def print_exits(phases):
    reasons = list(phases[0][1]["exits"])
    shown = [k for k in reasons if any(p[1]["exits"].get(k, 0) > 0 for p in phases)]
    zero = [k for k in reasons if k not in shown]
    print(f"\n2. VM exits per second by reason (`info guest` deltas over ferry's clock; booting: counts at "
          f"the prompt over the time up, all boots pooled; else a {phases[-1][1]['dt']:.0f} s window), "
          f"guest run time per wall second, interrupts injected per second")
    head = "".join(f"{k:>11}" for k in shown)
    print(f"   {'phase':24}{head}{'all exits':>11}{'irqs':>9}{'ran s/s':>9}")
    for label, r, _ in phases:
        row = "".join(f"{r['exits'][k]:11.0f}" for k in shown)
        print(f"   {label:24}{row}{r['total']:11.0f}{r['irqs']:9.0f}{r['ran']:9.2f}")
    if zero:
        print(f"   (always 0: {', '.join(zero)})")


def print_dirty(phases):
    rows = [(label, d) for label, _, d in phases if d]
    print(f"\n3. Dirty rate from ferry's dirty log (`dirtylog harvest` every second for {len(rows[0][1])} s; "
          f"distinct pages dirtied since the harvest before, per second of ferry's clock: a program that "
          f"rewrites its whole buffer each second reads as its buffer (16 MiB = 4096 pages); 1 page = 4 KiB)")
    print(f"   {'phase':24}{'median pages/s':>15}{'range pages/s':>20}{'MiB/s':>8}{'harvest cost':>14}")
    for label, d in rows:
        ps = [x[0] for x in d]
        print(f"   {label:24}{median(ps):15.0f}{min(ps):11.0f}-{max(ps):<8.0f}{median(ps) * 4096 / 2**20:8.1f}"
              f"{median([x[2] for x in d]):11.0f} us")


def print_migrations(results):
    ref = next((r for r in results if (r["prog"], r["mode"]) == REF and r["status"] == "completed"), None)
    cap = results[0].get("cap", "0") if results else "0"
    print(f"\n4. Live migration of the Linux guest (256 MiB, {NIC}, QEMU socket netdev"
          f"{'' if cap == '0' else ', max-bandwidth ' + cap}), one fresh boot and "
          f"one run each; ratios against {REF[0]} with xbzrle {REF[1]} of this run"
          f"{'' if ref else ' (it failed: no ratios)'}")
    print(f"   {'program':14}{'xbzrle':>7}{'total':>9}{'downtime':>10}{'sent':>10}{'rounds':>7}  {'stopped':10}"
          f"{'xbzrle hit':>11}{'mig dirty':>13}{'time x':>8}{'bytes x':>8}  result")
    for r in results:
        if r["status"] != "completed" and "total_ms" not in r:
            print(f"   {r['prog']:14}{r['mode']:>7}  {r['status']}")
            continue
        hit = f"{r['hit'] * 100:.0f}%" if "hit" in r else "-"
        if r["xbzrle"].startswith("off"):
            hit += "*"
        tx = f"{r['total_ms'] / ref['total_ms']:.2f}" if ref else "-"
        bx = f"{r['bytes'] / ref['bytes']:.2f}" if ref else "-"
        print(f"   {r['prog']:14}{r['mode']:>7}{r['total_ms'] / 1e3:8.2f}s{r['down_ms']:7d} ms"
              f"{r['bytes'] / 2**20:6.1f} MiB{r['rounds']:>7}  {r['stopped']:10}{hit:>11}"
              f"{r['dirty_rate']:>7} pg/s{tx:>8}{bx:>8}  {r['status']}")
        if cap != "0":
            print(f"      decided: {r.get('decided', '')}")
    print("   (sent: the stream's bytes, `transferred ram`; xbzrle hit: 1 - cache miss rate, where xbzrle "
          "was used, - where not; * = used, then switched off; mig dirty: `dirty pages rate`, the "
          "last sync's pages over the time since the sync before: short rounds of a rewritten buffer read high)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: one boot, shell + synthetic, 4 migrations")
    ap.add_argument("--migrations-only", action="store_true", help="part 4 alone")
    ap.add_argument("--max-bandwidth", default="0", help="the source's max-bandwidth (0: unlimited)")
    args = ap.parse_args()
    try:
        linux_boot_files()
    except FileNotFoundError as e:
        print(f"linux bench: skipped: no Linux guest image ({e})")
        return 0
    if args.quick:
        args.boots, args.window = 1, 3
        args.programs = ["synthetic"]
        args.mig_programs, args.modes = ["idle", "synthetic"], ["off", "on"]
    else:
        args.boots, args.window = 3, WINDOW_S
        args.programs = list(PROGRAMS)
        args.mig_programs, args.modes = list(PROGRAMS), MODES
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ferry-linux-bench-") as wd:
        if not args.migrations_only:
            ferry_s, direct_s, phases, clock = run_single(args, wd)
        results = run_migrations(args, wd)
        for r in results:
            r["cap"] = args.max_bandwidth
    print(f"\nlinux bench ({'quick' if args.quick else 'full'}, {time.monotonic() - t0:.0f} s; QEMU 7.2 TCG, "
          f"ferry npt under -cpu max; one run of each, single runs move 10-30% on this shared host)")
    if not args.migrations_only:
        print_boot(ferry_s, direct_s)
        print_exits(phases)
        print(f"   (the guest after these windows: {clock})")
        print_dirty(phases)
    print_migrations(results)
    bad = [r for r in results if r["status"] != "completed"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
