#!/usr/bin/python3
"""make demo: live-migrate a running guest between two ferry instances.

Boots two ferry instances under QEMU (TCG), linked by a socket netdev on
127.0.0.1, starts a guest on A, migrates it to B while printing progress
from A's `info migrate`, then shows the final statistics and the guest
running on B with its check passing. The migration is driven by
tools/ferryctl through both consoles' JSON mode: its progress line, its
summary, build/demo-report.json and build/demo-plot.png. The guest is Debian's Linux kernel
running tests/linux's `stamp` self-check (its console on each instance's
COM2), or, with FERRY_DEMO_GUEST=stamp or when the Linux image is missing,
ferry's built-in `stamp` workload. Bounded in time; both QEMU processes
are killed (by pid) on the way out.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import pexpect

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from ferrylib import (BUILD, GuestShell, Instances, linux_boot_files,  # noqa: E402
                      start_linked_pair)

DEMO_TIMEOUT = 600        # s: the whole demo, a bound on a hung emulator
FERRYCTL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ferryctl")
GUEST_SIZE = os.environ.get("FERRY_DEMO_SIZE", "64M")
DOWNTIME_MS = os.environ.get("FERRY_DEMO_DOWNTIME")  # ms; unset: ferry's default (300)
NIC = os.environ.get("FERRY_DEMO_NIC", "virtio-net-pci")  # or e1000
IP_A, IP_B, PORT = "10.0.0.1", "10.0.0.2", 4444
GUEST = os.environ.get("FERRY_DEMO_GUEST", "linux")  # or stamp (the built-in workload)
# The Linux guest's stamp program: the MiB it rewrites and checks, pass
# after pass (every page of them dirty all the time: they are the final pass).
LINUX_STAMP_MIB = int(os.environ.get("FERRY_DEMO_STAMP_MIB", "16"))


def guest_state(inst):
    """(line to show, parsed state) from `info guest`: the state is None when
    the instance has no guest, else a dict with state, passes and errors."""
    out = inst.cmd("info guest")
    m = re.search(r"guest: (none|(\w+), (\w+), .*)", out)
    c = re.search(r"counters: passes (\d+), errors (\d+).*", out)
    line = (m.group(0) if m else "guest: ?") + ("; " + c.group(0) if c else "")
    if not m or m.group(1) == "none":
        return line, None
    return line, {"state": m.group(3), "passes": int(c.group(1)) if c else -1,
                  "errors": int(c.group(2)) if c else -1}


def migrate(a, b):
    """Migrate A's guest to B with tools/ferryctl (progress, summary, a
    report and a plot); returns the final status."""
    a.release_console()
    b.release_console()
    cmd = [FERRYCTL, "migrate", "unix:" + a.console_path, "unix:" + b.console_path, "--port", str(PORT),
           "--report", REPORT, "--plot", PLOT, "--timeout", "300"]
    if DOWNTIME_MS:
        cmd += ["--downtime-limit", DOWNTIME_MS]
    print("== tools/ferryctl migrate A B --report " + os.path.relpath(REPORT) + " --plot " + os.path.relpath(PLOT)
          + (f" --downtime-limit {DOWNTIME_MS}" if DOWNTIME_MS else ""))
    sys.stdout.flush()
    rc = subprocess.run(cmd, timeout=360).returncode
    a.attach_console()
    b.attach_console()
    print("== A: info migrate")
    for line in a.cmd("info migrate").splitlines():
        print("   " + line)
    st = "completed" if rc == 0 else "failed"
    if rc != 0:
        print(f"demo: FAILED: ferryctl exited with {rc}")
    return st


def run(start, work):
    print(f"== booting two ferry instances (QEMU TCG, {NIC} on a socket link); logs in {work}")
    a, b, _ = start_linked_pair(start, NIC, console_socket=True)
    print(f"   A: {a.cmd(f'net config {IP_A}/24').strip()}")
    print(f"   B: {b.cmd(f'net config {IP_B}/24').strip()}")
    print(f"== A: guest start stamp {GUEST_SIZE}  (stamps every page with the pass number, checks the last one)")
    print("   " + a.cmd(f"guest start stamp {GUEST_SIZE}").strip())
    time.sleep(2)
    print("   A " + guest_state(a)[0])
    st = migrate(a, b)
    if st != "completed":
        return 1
    print("== the guest now runs on B (its passes must go on, its errors stay 0; A keeps no guest)")
    seen = []
    for _ in range(3):
        line, g = guest_state(b)
        print("   B " + line)
        seen.append(g)
        time.sleep(1)
    line, ga = guest_state(a)
    print("   A " + line)
    problems = []
    if any(g is None or g["state"] != "running" for g in seen):
        problems.append("the guest is not running on B")
    elif seen[-1]["passes"] <= seen[0]["passes"]:
        problems.append(f"the guest's passes on B did not advance ({seen[0]['passes']} -> {seen[-1]['passes']})")
    if any(g is not None and g["errors"] != 0 for g in seen):
        problems.append(f"the guest on B counted {seen[-1]['errors']} errors")
    if "MISMATCH" in b.console_text():
        problems.append("the guest on B reported a MISMATCH")
    if ga is not None:
        problems.append(f"A still holds a guest ({ga['state']})")
    if problems:
        print("demo: FAILED: " + "; ".join(problems))
        return 1
    print(f"demo: OK: the guest runs on B only ({seen[-1]['passes']} passes, 0 errors); A has none")
    return 0


def stamp_lines(text):
    return [(int(p), int(e)) for p, e in re.findall(r"^stamp: pass (\d+) errors (\d+)", text, re.M)]


def run_linux(start, work, files):
    print(f"== booting two ferry instances (QEMU TCG, {NIC} on a socket link); logs in {work}")
    a, b, _ = start_linked_pair(start, NIC, mem="1G", boot_files=files, com2=True, console_socket=True)
    print(f"   A: {a.cmd(f'net config {IP_A}/24').strip()}")
    print(f"   B: {b.cmd(f'net config {IP_B}/24').strip()}")
    print("== A: guest start linux  (Debian's kernel from \\ferry\\; its console is A's COM2)")
    t0 = time.monotonic()
    for line in a.cmd("guest start linux").strip().splitlines():
        print("   " + line)
    sa = GuestShell(a.com2.con, a.com2.send)
    release = sa.wait_ready()
    print(f"   the guest's shell is up {time.monotonic() - t0:.1f} s after `guest start linux`: Linux {release}")
    print(f"== A's guest: stamp {LINUX_STAMP_MIB} &  (writes its pass number into every page, checks the last one)")
    sa.send(f"stamp {LINUX_STAMP_MIB} &\r")
    for _ in range(2):  # a line a second
        a.com2.con.expect(r"stamp: pass \d+ errors \d+", timeout=60)
    for p, e in stamp_lines(a.com2.text())[-2:]:
        print(f"   A COM2: stamp: pass {p} errors {e}")
    b.com2.con.expect(pexpect.TIMEOUT, timeout=0.5)  # B's COM2 so far: its firmware's lines
    b_start = len(b.com2.text())
    if migrate(a, b) != "completed":
        return 1
    print("== the guest now runs on B: its stamp goes on in B's COM2 (errors must stay 0); A keeps no guest")
    b.com2.con.expect(r"stamp: pass \d+ errors \d+", timeout=30)
    time.sleep(3)
    b.com2.con.expect(r"stamp: pass \d+ errors \d+", timeout=30)
    after = stamp_lines(b.com2.text()[b_start:])
    for p, e in after[-3:]:
        print(f"   B COM2: stamp: pass {p} errors {e}")
    sb = GuestShell(b.com2.con, b.com2.send)
    out = sb.run("echo guest-shell-on-B; uptime", timeout=30)
    for line in out.strip().splitlines()[-2:]:
        print("   B COM2: " + line)
    gb = b.cmd("info guest")
    ga = a.cmd("info guest")
    print("   B " + (re.findall(r"^guest: .*", gb, re.M) or ["guest: ?"])[-1])
    print("   A " + (re.findall(r"^guest: .*", ga, re.M) or ["guest: ?"])[-1])
    problems = []
    if not re.search(r"guest: linux, running", gb):
        problems.append("the guest is not running on B")
    if len(after) < 2 or after[-1][0] <= after[0][0]:
        problems.append(f"stamp's passes on B did not advance ({after})")
    if any(e for _, e in after) or "MISMATCH" in b.com2.text():
        problems.append("stamp on B found errors")
    if "guest-shell-on-B" not in out:
        problems.append("the shell on B did not answer")
    if "guest: none" not in ga:
        problems.append("A still holds a guest")
    if problems:
        print("demo: FAILED: " + "; ".join(problems))
        return 1
    print(f"demo: OK: Linux runs on B only (stamp pass {after[-1][0]}, 0 errors; its shell answers); A has none")
    return 0


def main():
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("demo took too long")))
    signal.alarm(DEMO_TIMEOUT)
    work = tempfile.mkdtemp(prefix="demo-", dir=BUILD)
    global REPORT, PLOT
    REPORT, PLOT = os.path.join(BUILD, "demo-report.json"), os.path.join(BUILD, "demo-plot.png")
    try:
        with Instances(work) as start:
            if GUEST == "linux":
                try:
                    files = linux_boot_files()
                except FileNotFoundError as e:
                    print(f"demo: no Linux guest image ({e}): migrating the built-in stamp workload instead")
                else:
                    return run_linux(start, work, files)
            return run(start, work)
    finally:
        signal.alarm(0)


if __name__ == "__main__":
    sys.exit(main())
