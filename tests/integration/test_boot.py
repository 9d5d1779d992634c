"""Boot ferry under QEMU (OVMF, TCG) and Bochs, and drive its console."""
import re

import pytest

from ferrylib import parse_kv

# The console's answers to good and bad lines: (name, line, regex the output
# must match). They run in order on one shared instance, which must keep
# answering after every bad line.
CONSOLE_CASES = [
    ("help lists commands", "help", r"info version.*\n(.*\n)*.*info mem"),
    ("help with a prefix", "help info", r"^(  info \S.*\n)*  info cpus .*\n(  info \S.*\n)*$"),  # only info commands
    ("help for nothing", "help nosuch", r"error: no command starts with 'nosuch'; try 'help'"),
    ("version", "info version", r"ferry 0\.1\.0 \(build \S+, \d{4}-\d\d-\d\d\)\ncpu: \S+ \"[^\"]+\" family \d+ model \d+ stepping \d+\nvirtualization: SVM NPT\nsimd: SSE2"),
    ("cpus", "info cpus", r"cpus: 1 present \(ACPI MADT\), 1 running\ncpu 0: boot CPU, APIC id 0, TSC \d+\.\d+ MHz"),
    ("unknown", "frobnicate", r"^unknown command 'frobnicate'; try 'help'\n$"),
    ("unknown two words", "info  bogus ", r"^unknown command 'info  bogus'; try 'help'\n$"),
    ("too many words", " ".join(["w"] * 17), r"^error: too many words \(max 16\)\n$"),
    ("over-long line", "info version " + "x" * 300, r"^error: line too long \(max 255 characters\); ignored\n$"),
    ("line at the limit runs", "help " + "y" * 250, r"error: no command starts with 'y{250}'"),
    ("backspace edits", "info verx\x7fsion", r"virtualization: "),
    ("bad debug exit code", "debug exit 999", r"error: exit code must be 0\.\.127, got '999'"),
    ("bad fault kind", "debug fault zz", r"error: unknown fault 'zz' \(pf, gp, ud, panic, wx, nx, stack\)"),
    ("newlib and heap selftest", "debug selftest", r"selftest heap: ok\n(.*\n)*selftest codec: xbzrle paths: scalar sse2 avx2\n(.*\n)*selftest: 7 ok, 0 failed\n$"),
    ("empty line", "", r"^$"),
    ("still answering", "info uptime", r"uptime: \d+\.\d+ s, ticks \d+"),
]


@pytest.mark.parametrize("name,line,want", CONSOLE_CASES, ids=[c[0] for c in CONSOLE_CASES])
def test_console(shared_qemu, name, line, want):
    out = shared_qemu.cmd(line)
    assert re.search(want, out), f"{name}: sent {line!r}\nexpected /{want}/\ngot:\n{out}"


def test_boot_times_reported(shared_qemu):
    # Reported by the banner: both must be present and positive.
    assert shared_qemu.firmware_ms > 0
    assert 0 < shared_qemu.init_ms < shared_qemu.firmware_ms * 100


def test_info_mem_plausible(shared_qemu):
    out = shared_qemu.cmd("info mem")
    m = parse_kv(out, r"memory: total ([0-9.]+) MiB, free ([0-9.]+) MiB, used ([0-9.]+) MiB \((\d+) pages\),"
                      r" reserved ([0-9.]+) MiB")
    total, free, used, pages, reserved = map(float, m.groups())
    assert abs(pages * 4096 / 2**20 - used) < 0.06, out
    assert 200 <= total <= 256, out           # -m 256M, minus firmware holes
    assert 0 < used < 32 and free > 150, out
    assert abs(total - (free + used + reserved)) < 0.2, out


def test_heap_and_console_survive_many_commands(shared_qemu):
    for _ in range(20):
        assert "ferry 0.1.0" in shared_qemu.cmd("info version")


# Deliberate faults: (kind, regex the crash dump must contain).
FAULT_CASES = [
    ("pf", r"fatal #PF page fault \(vector 14\), error code 0x0\n\s+page fault at 0x00007fff00000000: page not present, read, kernel"),
    ("gp", r"fatal #GP general protection \(vector 13\)"),
    ("ud", r"fatal #UD invalid opcode \(vector 6\)"),
    ("wx", r"fatal #PF page fault \(vector 14\), error code 0x3\n\s+page fault at 0x[0-9a-f]+: protection violation, write, kernel"),
    ("nx", r"fatal #PF page fault \(vector 14\), error code 0x11\n\s+page fault at 0x[0-9a-f]+: protection violation, read, kernel, instruction fetch"),
    ("stack", r"fatal #DF double fault \(vector 8\)"),
    ("panic", r"PANIC at kernel/sys_cmds\.c:\d+: requested by 'debug fault panic'\n(.*\n)*.*fatal panic \(vector 240\)"),
]


@pytest.mark.parametrize("kind,want", FAULT_CASES, ids=[c[0] for c in FAULT_CASES])
def test_crash_dump(qemu, kind, want):
    f = qemu(name=f"fault-{kind}").wait_ready()
    f.send_line(f"debug fault {kind}")
    f.expect(r"\*\*\* ferry: halted")
    text = f.console_text()
    assert re.search(want, text), f"crash dump for {kind}:\n{text[-3000:]}"
    for reg in ("RIP", "RSP", "RAX", "R15", "CR0", "CR2", "CR3", "CR4", "EFER", "backtrace"):
        assert reg in text, f"{reg} missing from the dump:\n{text[-3000:]}"
    if kind != "stack":  # an overflowed stack has no frames left to trust
        assert re.search(r"#1\s+0x[0-9a-f]{16}\s+image\+0x[0-9a-f]+", text), "backtrace has no caller frames"


def test_debug_exit_status(qemu):
    f = qemu(name="exit").wait_ready()
    f.send_line("debug exit 5")
    assert f.exit_status() == (5 << 1) | 1


def test_no_virtualization_cpu(qemu):
    # qemu64 without svm: ferry must say so rather than guess.
    f = qemu(name="novirt", cpu="qemu64,-svm").wait_ready()
    assert "virtualization: none" in f.cmd("info version")


@pytest.mark.bochs
def test_bochs_haswell_reports_vmx_ept_ad(bochs):
    b = bochs(model="corei7_haswell_4770").wait_ready()
    out = b.cmd("info version")
    assert re.search(r"cpu: GenuineIntel .*\nvirtualization: VMX EPT EPT-A/D\n", out), out
    out = b.cmd("info mem")
    assert "memory: total" in out
