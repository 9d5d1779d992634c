"""Debian's stock Linux kernel as ferry's guest (kernel/vm/, issue 16).

ferry boots build/linux (make linux-guest) from \\ferry\\ on its ESP under
npt (QEMU TCG with SVM), the guest's console on ferry's COM2 (a Unix socket
here). Each test is bounded; every QEMU is killed by pid at teardown."""
import os
import re
import time

import pexpect
import pytest

from ferrylib import (GUEST_READY_RE, LINUX, LINUX_ISO, GuestShell, free_port, info_fields, linux_boot_files,
                      nic_args, parse_idle, parse_stamp, start_bochs_qemu_pair, wait_status, wait_tcp_listening)

try:
    linux_boot_files()
except FileNotFoundError as e:  # make check skips the image when its packages cannot be fetched
    pytest.skip(f"no Linux guest image: {e}", allow_module_level=True)

MEM = "1G"           # QEMU's memory for ferry: a 256 MiB guest and ferry's own
GUEST_BOOT_S = 120   # s: ferry's `guest start linux` to the guest's shell (nested TCG)


def linux_files(tmp_path, cmdline=None):
    files = linux_boot_files()
    if cmdline is not None:
        path = os.path.join(tmp_path, "cmdline")
        with open(path, "w") as f:
            f.write(cmdline + "\n")
        files["cmdline"] = path
    return files


def release():
    with open(os.path.join(LINUX, "versions")) as f:
        m = re.search(r"6\.1\.\d+-\d+-amd64", f.read())
    return m.group(0) if m else None


def shell_value(shell, expr, timeout=20):
    """The value of a shell expression, read between markers: a program
    running in the background may print between the shell's lines."""
    out = shell.run(f"echo @@{expr}@@", timeout=timeout)
    m = re.search(r"@@([^@$\n]+)@@", out)
    assert m, f"no value for {expr} in:\n{out}"
    return m.group(1)


def boot_linux(start, tmp_path, name="ferry", cmdline=None, extra=()):
    """A ferry instance with the Linux image, the guest started and its shell
    up. Returns (instance, shell, seconds from `guest start` to the shell)."""
    f = start(name=name, mem=MEM, boot_files=linux_files(tmp_path, cmdline), com2=True, extra=extra)
    f.wait_ready()
    return f, *start_guest(f)


def start_guest(f):
    shell = GuestShell(f.com2.con, f.com2.send)
    t0 = time.monotonic()
    out = f.cmd("guest start linux")
    assert re.search(r"guest: linux, 256 MiB, backend npt: running", out), out
    shell.wait_ready(timeout=GUEST_BOOT_S)
    return shell, time.monotonic() - t0


def test_boots_to_a_shell_with_working_timers(qemu, tmp_path):
    f, shell, boot_s = boot_linux(qemu, tmp_path)
    print(f"guest start linux -> shell: {boot_s:.1f} s")
    out = f.cmd("info guest")
    assert re.search(r"boot files: \\ferry\\vmlinuz \d+ bytes, \\ferry\\initrd.img \d+ bytes, "
                     r"\\ferry\\cmdline \d+ bytes", out), out
    assert shell.release == release(), f"kernel {shell.release}, the package is {release()}"
    assert shell.run("uname -r").strip() == release()
    # A clean boot: nothing the kernel would call a bug.
    dmesg = shell.run("dmesg", timeout=30)
    assert "Linux version" in dmesg, dmesg[:500]
    for bad in ("Call Trace", "BUG", "WARNING", "unchecked MSR", "ACPI BIOS Error"):
        assert bad not in dmesg, f"dmesg has '{bad}':\n{dmesg}"
    # The TSC rate came from CPUID, not from a calibration against the PIT,
    # and the clocksource watchdog (which counts PIT ticks) kept it.
    assert re.search(r"tsc: Detected [0-9.]+ MHz TSC", dmesg) and "Unable to calibrate" not in dmesg, dmesg
    assert "unstable" not in dmesg, f"the kernel gave up its TSC:\n{dmesg}"
    assert shell_value(shell, "$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)") == "tsc"
    # sleep 2 takes 2 s of the host's time (within 10%), net of a command's
    # own round trip through the shell. Two tries: a shared host can stall
    # one, while a timer running at the wrong rate fails both.
    tries = []
    for _ in range(2):
        t = time.monotonic()
        shell.run("true")
        base = time.monotonic() - t
        t = time.monotonic()
        shell.run("sleep 2")
        tries.append(time.monotonic() - t - base)
        if 1.8 <= tries[-1] <= 2.2:
            break
    assert 1.8 <= tries[-1] <= 2.2, f"sleep 2 took {tries} s of host time"
    # The guest's monotonic clock ticks with the host's.
    t = time.monotonic()
    ticks = parse_idle(shell.run("idle 3", timeout=20))
    host = time.monotonic() - t
    assert len(ticks) == 3, ticks
    gaps = [b[1] - a[1] for a, b in zip(ticks, ticks[1:])]
    assert all(0.95 <= g <= 1.1 for g in gaps), f"idle's ticks {gaps} s apart"
    assert host >= 2.9, f"3 guest ticks took {host:.2f} s of host time"
    # An idle guest costs little: it halts, and ferry runs it only for its
    # interrupts.
    g0 = info_fields(f.cmd("info guest"))
    time.sleep(3)
    g1 = info_fields(f.cmd("info guest"))
    ran = lambda g: float(re.search(r"ran ([0-9.]+) s", g["guest"]).group(1))  # noqa: E731
    assert ran(g1) - ran(g0) < 0.6, f"an idle guest ran {ran(g1) - ran(g0):.2f} s of 3:\n{g0}\n{g1}"
    assert re.search(r"cpu halted", g1["platform"]), g1


def test_poweroff_and_reboot_stop_the_guest(qemu, tmp_path):
    f, shell, _ = boot_linux(qemu, tmp_path)
    shell.send("poweroff -f\r")
    f.expect(r"guest: stopped: halted with interrupts off \(powered off\) at rip 0x[0-9a-f]+", timeout=60)
    out = f.cmd("info guest")
    assert re.search(r"guest: linux, exited", out), out
    # ferry goes on: a new guest boots, and a reboot from inside stops it.
    assert "guest destroyed" in f.cmd("guest quit")
    shell, _ = start_guest(f)
    shell.send("echo b > /proc/sysrq-trigger\r")
    f.expect(r"guest: stopped: the guest reset the machine \((keyboard controller|port 0xcf9|port 0x92)\)",
             timeout=60)
    assert re.search(r"guest: linux, exited", f.cmd("info guest"))
    assert "guest destroyed" in f.cmd("guest quit")


def test_guest_console_attaches_and_detaches(qemu, tmp_path):
    f, shell, _ = boot_linux(qemu, tmp_path)
    shell.run("echo before-attach")
    # Attached, ferry's console is the guest's: no prompt follows.
    f.con.send("guest console\r")
    f.expect(r"guest console: attached; what it printed so far follows; Ctrl-\] detaches", timeout=10)
    # What the guest printed while nobody watched COM1 is replayed.
    f.expect("before-attach", timeout=10)
    f.con.send("echo via-com1-$((40+2))\r")
    f.expect("via-com1-42", timeout=20)
    f.con.send("\x1d")
    f.expect("guest console: detached", timeout=10)
    f.expect(r"\(ferry\) ", timeout=10)
    assert re.search(r"guest: linux, running", f.cmd("info guest"))


def test_refusals(qemu, tmp_path):
    # No kernel on the boot volume.
    f = qemu(name="nofiles", mem=MEM)
    f.wait_ready()
    out = f.cmd("info guest")
    assert "boot files: none (no \\ferry\\vmlinuz on the boot volume)" in out, out
    out = f.cmd("guest start linux")
    assert "error: no guest kernel: put a bzImage at \\ferry\\vmlinuz on the boot volume" in out, out
    assert "guest: none" in f.cmd("info guest")
    # pte cannot run an operating system, and says why.
    p = qemu(name="pte", mem=MEM, cpu="max,-svm", boot_files=linux_files(tmp_path))
    p.wait_ready()
    out = p.cmd("guest start linux")
    assert re.search(r"error: an operating system needs hardware virtualization .*backend pte", out), out
    assert "guest: none" in p.cmd("info guest")
    # A file that is not a kernel.
    bad = os.path.join(tmp_path, "notakernel")
    with open(bad, "wb") as fh:
        fh.write(b"\x7fELF" + bytes(8192))
    files = linux_files(tmp_path)
    files["vmlinuz"] = bad
    n = qemu(name="bad", mem=MEM, boot_files=files)
    n.wait_ready()
    out = n.cmd("guest start linux")
    assert "error: \\ferry\\vmlinuz (8196 bytes) is not a bzImage" in out, out
    # Too small for the kernel to unpack itself.
    out = n.cmd("guest start linux 16M")
    assert "error:" in out and "guest: none" in n.cmd("info guest"), out


def linked_linux_pair(qemu, tmp_path, model, cmdline):
    port = free_port()
    files = linux_files(tmp_path, cmdline)
    a = qemu(name="a", mem=MEM, boot_files=files, com2=True,
             extra=nic_args(model, "52:54:00:fe:00:01", f"socket,id=n0,listen=127.0.0.1:{port}"))
    wait_tcp_listening(port)
    b = qemu(name="b", mem=MEM, boot_files=files, com2=True,
             extra=nic_args(model, "52:54:00:fe:00:02", f"socket,id=n0,connect=127.0.0.1:{port}"))
    a.wait_ready()
    b.wait_ready()
    assert "error" not in a.cmd("net config 10.0.0.1/24")
    assert "error" not in b.cmd("net config 10.0.0.2/24")
    return a, b


def migrate(a, b):
    """A's `info migrate` after the move, with "stall_s" added: how long
    B's guest waited on hashes of its memory after the pause (a region the
    guest writes before it is hashed in the background is hashed at that
    write, the guest stopped meanwhile, its clock running on)."""
    assert "listening" in b.cmd("migrate_incoming tcp:0:4444")
    assert "connecting" in a.cmd("migrate tcp:10.0.0.2:4444")
    d, text = wait_status(a, ("completed", "failed", "cancelled"), timeout=180)
    assert d["Migration status"].startswith("completed"), text
    db, tb = wait_status(b, ("completed", "failed", "cancelled"), timeout=30)
    assert db["Migration status"].startswith("completed"), tb
    m = re.search(r"^verification: \d+ regions, hashed in \d+ ms \(\d+ at a guest write, which waited (\d+) ms\),"
                  r" last at \+(\d+) ms after GO", tb, re.M)
    assert m, tb
    d["stall_s"] = int(m.group(1)) / 1000
    d["verify_s"] = int(m.group(2)) / 1000
    return d


@pytest.mark.parametrize("model,program", [("virtio-net-pci", "stamp,32"), ("e1000", "synthetic"),
                                           ("virtio-net-pci", "sparse,64,20")])
def test_live_migration_of_a_running_linux(qemu, tmp_path, model, program):
    """A running Linux guest moves from A to B: its program goes on with
    no gap longer than the downtime, its clock goes on, the shell answers
    on B, and A is left with nothing."""
    # The program and idle (the guest's clock, a line a second) start from
    # the command line: nothing is typed into the guest's console while its
    # output is checked (typed characters echo into the middle of lines).
    a, b = linked_linux_pair(qemu, tmp_path, model, f"console=ttyS0 ferry.run={program} ferry.run=idle")
    name = program.split(",")[0]
    progress = {"stamp": r"stamp: pass \d+", "synthetic": r"synthetic: pass \d+",
                "sparse": r"sparse: \d+ writes/s"}[name]
    sa = GuestShell(a.com2.con, a.com2.send)
    sb = GuestShell(b.com2.con, b.com2.send)
    assert re.search(r"backend npt: running", a.cmd("guest start linux"))
    sa.wait_ready(timeout=GUEST_BOOT_S)
    a.com2.con.expect(progress, timeout=30)
    a.com2.con.expect(r"idle: tick 2 at", timeout=30)
    # B's COM2 so far holds only its firmware's messages: what follows is
    # the guest's, continuing A's to the byte.
    b.com2.con.expect(pexpect.TIMEOUT, timeout=0.5)
    b_start = len(b.com2.text())
    d = migrate(a, b)
    downtime_s = int(d["downtime"].split()[0]) / 1000
    stall_s, verify_s = d["stall_s"], d["verify_s"]
    # On B: the program's lines go on and the clock goes on ...
    b.com2.con.expect(progress, timeout=30)
    b.com2.con.expect(r"idle: tick \d+ at", timeout=30)
    b.com2.con.expect(r"idle: tick \d+ at", timeout=30)
    a.com2.con.expect(pexpect.TIMEOUT, timeout=1)  # all A's guest printed before it stopped
    text = a.com2.text() + b.com2.text()[b_start:]
    ticks = parse_idle(text)
    numbers = [n for n, _ in ticks]
    assert numbers == list(range(1, len(numbers) + 1)), f"idle's ticks across the move: {numbers}"
    gaps = [y[1] - x[1] for x, y in zip(ticks, ticks[1:])]
    # A tick late by the downtime, or by the verification after it (the
    # guest waits on hashes at its writes, and shares its CPU with the
    # background hashing until the last region), is followed by one early
    # by as much.
    late = downtime_s + stall_s + verify_s
    assert all(0.9 - late <= g <= 1.1 + late for g in gaps), \
        f"idle's ticks {gaps} s apart by the guest's clock across the move (downtime {downtime_s} s, " \
        f"waits on hashes {stall_s} s, verification {verify_s} s after GO)"
    # ... and the shell answers, on a clock that did not go back.
    assert shell_value(sb, "on-b-$((6*7))") == "on-b-42"
    up_b = float(shell_value(sb, "$(cut -d' ' -f1 /proc/uptime)"))
    assert up_b > ticks[-1][1], f"uptime {up_b} s on B, idle's last tick at {ticks[-1][1]} s"
    if name == "stamp":
        passes, _, bad = parse_stamp(b.com2.text()[b_start:])
        assert passes and not bad and all(e == 0 for _, e in passes), f"stamp on B: {passes[-3:]} {bad}"
    assert "guest: none" in a.cmd("info guest")
    assert re.search(r"guest: linux, running", b.cmd("info guest"))


def test_a_destination_without_the_platform_refuses_at_hello(qemu, tmp_path):
    """pte cannot run the PC platform: the destination refuses the HELLO, no
    page moves, and the source keeps running its guest."""
    port = free_port()
    files = linux_files(tmp_path)
    a = qemu(name="a", mem=MEM, boot_files=files, com2=True,
             extra=nic_args("virtio-net-pci", "52:54:00:fe:00:01", f"socket,id=n0,listen=127.0.0.1:{port}"))
    wait_tcp_listening(port)
    b = qemu(name="b", mem=MEM, cpu="max,-svm",
             extra=nic_args("virtio-net-pci", "52:54:00:fe:00:02", f"socket,id=n0,connect=127.0.0.1:{port}"))
    a.wait_ready()
    b.wait_ready()
    a.cmd("net config 10.0.0.1/24")
    b.cmd("net config 10.0.0.2/24")
    sa, _ = start_guest(a)
    b.cmd("migrate_incoming tcp:0:4444")
    a.cmd("migrate tcp:10.0.0.2:4444")
    d, text = wait_status(a, ("completed", "failed", "cancelled"), timeout=60)
    assert d["Migration status"].startswith("failed"), text
    assert "cannot run the guest's platform: no PC platform on backend pte" in d["result"], text
    assert int(d["transferred ram"].split()[0]) == 0, text
    assert "guest: none" in b.cmd("info guest")
    assert shell_value(sa, "on-a-$((6*7))") == "on-a-42"


# ---------------------------------------------------------------------------
# ept: Bochs (Intel VMX with EPT), booted from build/ferry-linux.iso.

BOCHS_LINUX_S = 420  # s: bound on `guest start linux` to the shell under Bochs (about 90 s seen)


def wait_file(path, pattern, inst, timeout):
    """Poll a file (Bochs's COM2) for pattern while ferry's console answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                m = re.search(pattern, f.read())
            if m:
                return m
        assert re.search(r"guest: linux, running", inst.cmd("info guest", timeout=60))
        time.sleep(5)
    raise AssertionError(f"no '{pattern}' in {path} after {timeout} s")


@pytest.mark.bochs
def test_boots_under_bochs_with_ept(bochs, tmp_path):
    if not os.path.exists(LINUX_ISO):
        pytest.skip(f"{LINUX_ISO} is missing: run 'make linux-iso' (make check does)")
    com2 = os.path.join(tmp_path, "bx-com2.log")
    b = bochs(name="bx", megs=512, iso=LINUX_ISO, extra_rc=f"com2: enabled=1, mode=file, dev={com2}\n")
    b.wait_ready()
    t0 = time.monotonic()
    assert re.search(r"guest: linux, 256 MiB, backend ept: running", b.cmd("guest start linux", timeout=120))
    m = wait_file(com2, GUEST_READY_RE, b, BOCHS_LINUX_S)
    print(f"Bochs ept: guest start linux -> shell {time.monotonic() - t0:.0f} s")
    assert m.group(1) == release()
    with open(com2, errors="replace") as f:
        log = f.read()
    for bad in ("Call Trace", "BUG", "WARNING", "unchecked MSR"):
        assert bad not in log, f"the kernel printed '{bad}' under ept:\n{log}"
    out = b.cmd("info guest", timeout=60)
    assert re.search(r"exits: .* io [1-9]\d* msr \d+ cpuid [1-9]\d* irq-window \d+", out), out
    assert re.search(r"platform counters: interrupts [1-9]", out), out


@pytest.mark.bochs
@pytest.mark.slow
def test_live_migration_of_linux_from_ept_to_npt(bochs, qemu, tmp_path):
    """A Linux guest running stamp under Bochs's ept moves to QEMU's npt:
    one CPU state and one device state between two kinds of hardware
    virtualization; stamp goes on with 0 errors and the shell answers."""
    if not os.path.exists(LINUX_ISO):
        pytest.skip(f"{LINUX_ISO} is missing: run 'make linux-iso'")
    com2 = os.path.join(tmp_path, "bx-com2.log")
    # The ISO's cmdline is the image's: start stamp from the shell instead.
    b, q, _ = start_bochs_qemu_pair(
        bochs, qemu, bochs_kw={"megs": 512, "iso": LINUX_ISO,
                               "extra_rc": f"com2: enabled=1, mode=file, dev={com2}\n"},
        qemu_kw={"mem": MEM, "boot_files": linux_files(tmp_path), "com2": True})
    assert "error" not in b.cmd("net config 10.0.0.1/24", timeout=60)
    assert "error" not in q.cmd("net config 10.0.0.2/24")
    assert re.search(r"backend ept: running", b.cmd("guest start linux", timeout=120))
    wait_file(com2, GUEST_READY_RE, b, BOCHS_LINUX_S)
    assert "listening" in q.cmd("migrate_incoming tcp:0:4444")
    assert "connecting" in b.cmd("migrate tcp:10.0.0.2:4444", timeout=60)
    d, text = wait_status(b, ("completed", "failed", "cancelled"), timeout=900)
    assert d["Migration status"].startswith("completed"), text
    print(f"ept -> npt: total {d['total time']}, downtime {d['downtime']}, {d['transferred ram']}, "
          f"rounds {d['rounds']}")
    sq = GuestShell(q.com2.con, q.com2.send)
    assert shell_value(sq, "on-npt-$((6*7))", timeout=60) == "on-npt-42"
    sq.run("stamp 16 3", timeout=60)
    passes, done, bad = parse_stamp(q.com2.text())
    assert done and done[1] == 0 and not bad, f"stamp after the move: {passes} {done} {bad}"
    assert "guest: none" in b.cmd("info guest", timeout=60)
