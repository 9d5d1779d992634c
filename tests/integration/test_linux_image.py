"""The Linux guest image (make linux-guest) booted by QEMU itself, without
ferry: the kernel, its initramfs and the guest programs work before ferry
is asked to run them. The kernel's command line is build/linux/cmdline
(console=ttyS0 nolapic acpi=off: PIC and PIT only, as under ferry). Booted twice:
on QEMU's pc machine as it is, and with -no-acpi and the shell on COM2,
closer to what ferry gives (no ACPI tables, so no HPET or PM timer either: when the PIT
calibration of the TSC fails under TCG, as it does in some runs, the TSC
is marked unstable and the clock runs on PIT jiffies; both must work).

Skipped, with fetch-linux's message, when the Debian packages cannot be
fetched; failed when they can but the image was not built.
"""
import os
import re
import time

import pytest

from ferrylib import DirectLinux, linux_boot_files, linux_fetch_error, parse_idle, parse_stamp

MODULE_BOUND = 45  # s for each boot's tests, boot included (two boots)
BOOT_BOUND = 30    # s to `ferry-guest: ready` under TCG (5-7 s is usual)
STEP_BOUND = 15    # s for each few-second command


def run(guest, line, bound=STEP_BOUND):
    """guest.shell.run, bounded by the step's and the module's time left."""
    left = guest.deadline - time.monotonic()
    assert left > 1, f"the module's {MODULE_BOUND} s are used up before '{line}'"
    return guest.shell.run(line, timeout=min(bound, left))


# (name, extra QEMU arguments, console on COM2) of each boot. The COM2 one
# drives the shell over a SerialSocket, as the tests under ferry will.
MACHINES = [
    ("pc", [], False),
    ("pc-no-acpi-com2", ["-no-acpi"], True),
]


def linux_files_or_skip():
    """The image's files; skip when its packages cannot be fetched, fail
    when they can but it was not built."""
    try:
        return linux_boot_files()
    except FileNotFoundError as e:
        err = linux_fetch_error()
        if err:
            pytest.skip(f"Linux guest packages cannot be fetched: {err}")
        pytest.fail(str(e))


@pytest.fixture(scope="module", params=MACHINES, ids=[m[0] for m in MACHINES])
def guest(request, tmp_path_factory):
    name, extra, com2 = request.param
    linux_files_or_skip()
    inst = DirectLinux(tmp_path_factory.mktemp("linux"), name=name, extra=extra, com2=com2)
    try:
        t0 = time.monotonic()
        inst.deadline = t0 + MODULE_BOUND
        inst.wait_ready(timeout=BOOT_BOUND)
        inst.boot_s = time.monotonic() - t0
        clock = run(inst, "cat /sys/devices/system/clocksource/clocksource0/current_clocksource").split()[-1]
        print(f"\n{name}: linux {inst.shell.release} ready after {inst.boot_s:.1f} s (host clock, TCG), "
              f"clocksource {clock}")
        yield inst
    finally:
        inst.close()


def test_ready_names_the_kernel(guest):
    assert guest.shell.release.endswith("-amd64"), guest.shell.release
    assert run(guest, "uname -r").strip().endswith(guest.shell.release)


def test_no_local_apic(guest):
    # What ferry gives the guest: the kernel kept to the 8259 and the PIT.
    log = guest.guest_console_text()
    assert "APIC: Keep in PIC mode(8259)" in log, f"kernel did not stay in PIC mode:\n{log}"
    irqs = run(guest, "cat /proc/interrupts")
    assert "XT-PIC" in irqs and "timer" in irqs, irqs


def test_stamp_passes_advance_without_errors(guest):
    out = run(guest, "stamp 8 3")
    passes, done, mismatches = parse_stamp(out)
    assert not mismatches, out
    assert done is not None and done[1] == 0, f"expected 'stamp: done passes N errors 0', got:\n{out}"
    assert len(passes) >= 2, f"expected a progress line a second for 3 s, got:\n{out}"
    nums = [p for p, _ in passes]
    assert all(a < b for a, b in zip(nums, nums[1:])) and done[0] >= nums[-1], \
        f"passes must advance: {nums}, done {done[0]}\n{out}"
    assert all(e == 0 for _, e in passes), out


def test_idle_ticks_a_second_apart(guest):
    t0 = time.monotonic()
    out = run(guest, "idle 3")
    host_s = time.monotonic() - t0
    ticks = parse_idle(out)
    assert [n for n, _ in ticks] == [1, 2, 3], out
    gaps = [b - a for (_, a), (_, b) in zip(ticks, ticks[1:])]
    # By the guest's own clock: nanosleep to deadlines a second apart.
    assert all(0.95 <= g <= 1.1 for g in gaps), f"tick gaps {gaps} s by the guest clock:\n{out}"
    # Against the host's: loose, only a stalled or racing guest clock fails
    # (TCG on a shared machine may lose PIT ticks).
    assert 2.0 <= host_s <= 12.0, f"3 guest seconds took {host_s:.1f} host seconds:\n{out}"


def test_sparse_writes_at_its_rate(guest):
    out = run(guest, "sparse 8 10 2")
    rates = [float(x) for x in re.findall(r"^sparse: ([0-9.]+) writes/s$", out, re.M)]
    assert rates, f"expected 'sparse: W writes/s' lines, got:\n{out}"
    assert all(5000 <= r <= 15000 for r in rates), f"10 writes/ms should give ~10000 writes/s: {rates}\n{out}"


# Bad arguments: (command line, the message the program must print).
BAD_ARGS = [
    ("stamp", "usage: stamp MIB [SECONDS]"),
    ("stamp 0", "stamp: MIB must be 1..1048576, got '0'"),
    ("stamp 8x", "stamp: MIB must be 1..1048576, got '8x'"),
    ("sparse 8", "usage: sparse MIB RATE [SECONDS]"),
    ("sparse 8 -1", "sparse: RATE must be 1..16777216, got '-1'"),
    ("idle 1 2", "usage: idle [SECONDS]"),
    ("idle 0", "idle: SECONDS must be 1..1073741824, got '0'"),
]


@pytest.mark.parametrize("line,want", BAD_ARGS, ids=[c[0] for c in BAD_ARGS])
def test_bad_arguments_rejected(guest, line, want):
    out = run(guest, line + "; echo status $?")
    assert want in out and "status 2" in out, f"sent {line!r}\nexpected {want!r} and status 2\ngot:\n{out}"


def test_guest_survives(guest):
    # After all of the above, the shell still answers and nothing oopsed.
    assert "ok" in run(guest, "echo ok")
    log = guest.guest_console_text()
    for bad in ("Oops", "BUG:", "Kernel panic", "stamp: MISMATCH"):
        assert bad not in log, f"'{bad}' in the guest console:\n{log}"


def test_ferry_qemu_with_boot_files_and_com2(qemu):
    # The plumbing for ferry's own Linux tests: the image in the ESP's
    # ferry/ folder, COM2 connected, ferry booting as before.
    files = linux_files_or_skip()
    inst = qemu(name="plumb", boot_files=files, com2=True)
    inst.wait_ready()
    folder = os.path.join(inst.workdir, "plumb-esp", "ferry")
    assert sorted(os.listdir(folder)) == sorted(files), os.listdir(folder)
    for name, src in files.items():
        with open(src, "rb") as a, open(os.path.join(folder, name), "rb") as b:
            assert a.read() == b.read(), name
    assert "ferry 0.1.0" in inst.cmd("info version")
    # OVMF's boot manager writes to every serial console, COM2 included.
    inst.com2.con.expect("BdsDxe: starting", timeout=10)
    inst.com2.send_line("ignored by ferry")
    assert "uptime:" in inst.cmd("info uptime")
