"""The guest under each hypervisor backend, and exact dirty logging.

pte and npt run under QEMU TCG (-cpu max without / with SVM+NPT); ept runs
under Bochs (corei7_haswell_4770: VMX with EPT A/D). Each backend gets the
same checks: the 100-round exactness test, a wild guest stopped with ferry
still answering, stamp surviving stop / state reload / cont, workloads
making progress.
"""
import re
import time

import pytest

from ferrylib import parse_kv

# (backend, QEMU -cpu): the backend ferry must pick on that CPU.
QEMU_BACKENDS = [
    ("pte", "max,-svm"),
    ("npt", "max"),
]

# (name, QEMU -cpu, regex `info guest` must match): detection and why.
DETECTION_CASES = [
    ("svm with npt", "max", r"backend: npt \(SVM with nested paging, no NRIPS; not ept: no VMX\)"),
    ("no virtualization", "max,-svm",
     r"backend: pte \(no hardware dirty logging: the guest runs in ring 3; not ept: no VMX, npt: no SVM\)"),
    ("svm without npt", "qemu64,+svm",
     r"backend: pte \(no hardware dirty logging: the guest runs in ring 3; not ept: no VMX, npt: SVM without nested paging\)"),
]

DIRTYLOG_ROUNDS = 100


def exactness(inst, seed, size="64M"):
    out = inst.cmd(f"dirtylog test {DIRTYLOG_ROUNDS} {seed} {size}", timeout=600)
    m = parse_kv(out, r"dirtylog test: backend (\w+), \d+ MiB, seed \d+: (\d+) of (\d+) rounds, (\d+) pages written")
    assert int(m.group(2)) == DIRTYLOG_ROUNDS, out
    m2 = parse_kv(out, r"misses (\d+), false positives (\d+) \(guest page tables (\d+), other (\d+), read-only pages (\d+)\)")
    misses, fp, fp_tables, fp_other, fp_read = map(int, m2.groups())
    assert misses == 0, f"lost writes:\n{out}"
    assert fp_other == 0 and fp_read == 0, f"unexplained dirty pages:\n{out}"
    assert "dirtylog test: PASS" in out, out
    return m.group(1), int(m.group(4)), fp_tables, out


def guest_counters(inst):
    out = inst.cmd("info guest")
    m = parse_kv(out, r"counters: passes (\d+), errors (\d+), pages written (\d+)")
    return int(m.group(1)), int(m.group(2)), out


def wait_progress(inst, minimum, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        passes, errors, out = guest_counters(inst)
        if passes >= minimum or time.monotonic() > deadline:
            return passes, errors, out
        time.sleep(0.5)


@pytest.mark.parametrize("name,cpu,want", DETECTION_CASES, ids=[c[0] for c in DETECTION_CASES])
def test_backend_detection(qemu, name, cpu, want):
    f = qemu(name="detect", cpu=cpu).wait_ready()
    out = f.cmd("info guest")
    assert re.search(want, out), f"{name}: expected /{want}/ in:\n{out}"
    assert re.search(r"hypervisor: \w+ \(", f.cmd("info version"))


def check_backend(f, backend, console_bound=2.0):
    """The checks every backend must pass, on one booted instance."""
    assert f"backend: {backend} " in f.cmd("info guest")

    # 1. exactness, two seeds
    for seed in (1, 20261122):
        got, written, fp_tables, out = exactness(f, seed, size="16M")
        assert got == backend and written >= DIRTYLOG_ROUNDS, out
        print(f"[{backend}] seed {seed}: {written} written, misses 0, page-table false positives {fp_tables}")

    # 2. a guest touching memory outside its range is stopped; ferry answers
    f.send_line("guest start wild 16M")
    f.expect(r"guest: stopped: access outside guest memory at guest-physical 0x1000000 \(rip 0x[0-9a-f]+\)")
    assert "wild, faulted" in f.cmd("info guest")
    assert "ferry 0.1.0" in f.cmd("info version")
    assert "guest destroyed" in f.cmd("guest quit")

    # 2b. the ABI: bad arguments get errors, SSE state survives exits, and
    # a guest exception stops the guest only
    f.send_line("guest start abi 8M")
    f.expect(r"guest: abi: (\d+) of (\d+) checks passed")
    ok, n = f.con.match.group(1), f.con.match.group(2)
    assert ok == n, f"ABI checks: {ok} of {n}"
    f.expect(r"guest: stopped: exception 6, error code 0x0 \(rip 0x[0-9a-f]+\)")
    out = f.cmd("info guest")
    assert re.search(r"abi, faulted, .*\n.*exception 1 .*\n.*hypercalls \d+ \(6 refused\)", out), out
    assert "ferry 0.1.0" in f.cmd("info version")
    f.cmd("guest quit")

    # 2c. port I/O reaches no device: an unknown exit (ept, npt) or #GP (pte)
    f.send_line("guest start portio 8M")
    f.expect(r"guest: stopped: (unknown exit, hardware reason 0x(1e|7b)|exception 13), ")
    assert "portio, faulted" in f.cmd("info guest")
    assert "the write went through" not in f.console_text()
    f.cmd("guest quit")

    # 3. stamp survives stop, a CPU-state capture/restore round trip, cont
    assert "running" in f.cmd("guest start stamp 16M")
    before, errors, out = wait_progress(f, 3)
    assert before >= 3 and errors == 0, out
    assert f.cmd("guest stop") == "guest stopped\n"
    p1, _, _ = guest_counters(f)
    time.sleep(0.5)
    p2, _, _ = guest_counters(f)
    assert p1 == p2, "a stopped guest made progress"
    out = f.cmd("guest cpu reload")
    assert re.search(rf"cpu state v2 \({backend}, 4672 bytes\): rip 0x[0-9a-f]+", out), out
    assert "cpu state restored" in out, out
    assert f.cmd("guest cont") == "guest running\n"
    after, errors, out = wait_progress(f, p2 + 3)
    assert after >= p2 + 3 and errors == 0, out
    assert "MISMATCH" not in f.console_text()

    # 3b. region write protection (the migration destination's): every
    # write the dirty log saw was caught by a fault in its region first,
    # and stamp, which rewrites all 8 of its 2 MiB regions, keeps passing
    out = f.cmd("dirtylog wptest 500", timeout=120)
    m = parse_kv(out, r"dirtylog wptest: backend (\w+), 8 regions, (\d+) pages written, (\d+) regions caught at a"
                      r" write, (\d+) pages missed")
    assert m.group(1) == backend and int(m.group(2)) > 0 and m.group(3) == "8" and m.group(4) == "0", out
    assert "dirtylog wptest: PASS" in out, out
    after2, errors, out = wait_progress(f, after + 3)
    assert after2 >= after + 3 and errors == 0, out
    out = f.cmd("info guest")
    assert int(parse_kv(out, r"exception 0 memory (\d+) ").group(1)) >= 8, out  # the 8 faults, counted
    f.cmd("guest quit")

    # 4. every workload makes progress; the console answers meanwhile
    for wl in ("synthetic", "sparse", "hotset"):
        assert "running" in f.cmd(f"guest start {wl} 16M")
        passes, errors, out = wait_progress(f, 2)
        assert passes >= 2, f"{wl} made no progress:\n{out}"
        t = time.monotonic()
        f.cmd("info uptime")
        assert time.monotonic() - t < console_bound, f"console slow while {wl} runs"
        f.cmd("dirtylog start")
        time.sleep(0.3)
        out = f.cmd("dirtylog harvest")
        m = parse_kv(out, r"harvest: (\d+) pages dirty, [0-9.]+ us, (\d+) entries examined")
        assert int(m.group(1)) > 0, out
        out = f.cmd("info dirty")
        assert re.search(r"last harvest: \d+ pages dirty, cost [0-9.]+ us \(\d+ entries\), \d+ pages/s", out), out
        f.cmd("guest quit")
    assert "guest: idle" in f.cmd("guest start idle")
    out = f.cmd("info guest")
    assert re.search(r"exits: hypercall \d+ preempt \d+ exception 0 memory 0", out), out
    f.cmd("guest quit")


@pytest.mark.parametrize("backend,cpu", QEMU_BACKENDS, ids=[b[0] for b in QEMU_BACKENDS])
def test_hv_backend(qemu, backend, cpu):
    f = qemu(name=f"hv-{backend}", cpu=cpu, mem="512M").wait_ready()
    check_backend(f, backend)


@pytest.mark.parametrize("backend,cpu", QEMU_BACKENDS, ids=[b[0] for b in QEMU_BACKENDS])
def test_exactness_beyond_one_gib(qemu, backend, cpu):
    # 2 GiB: two PDs in every table level's walk, two guest PDs.
    f = qemu(name=f"hv-2g-{backend}", cpu=cpu, mem="2560M").wait_ready()
    got, written, fp_tables, out = exactness(f, 77, size="2G")
    assert got == backend, out
    print(f"[{backend}] 2 GiB seed 77: {written} written, misses 0, page-table false positives {fp_tables}")


def test_pte_without_xsave(qemu):
    # qemu64 has neither SVM nor XSAVE: pte with the FXSAVE path.
    f = qemu(name="hv-fxsave", cpu="qemu64,-svm").wait_ready()
    assert "xcr0 0x0" in f.cmd("info version")
    got, _, _, out = exactness(f, 4, size="16M")
    assert got == "pte", out
    f.send_line("guest start abi 8M")
    f.expect(r"guest: abi: (\d+) of (\d+) checks passed")
    assert f.con.match.group(1) == f.con.match.group(2), f.con.match.group(0)
    f.expect(r"guest: stopped: exception 6")


@pytest.mark.bochs
def test_hv_ept_bochs(bochs):
    """Intel VMX with EPT A/D: only Bochs emulates it."""
    b = bochs(model="corei7_haswell_4770").wait_ready()
    out = b.cmd("info guest")
    assert re.search(r"backend: ept \(VMX with EPT accessed/dirty flags", out), out
    check_backend(b, "ept", console_bound=5.0)
    # The exit round trip under Bochs (an emulator's number, for the record).
    out = b.cmd("guest bench 32M 16M", timeout=600)
    m = parse_kv(out, r"bench ept vm-exit round trip: (\d+) ns \((\d+) exits\)")
    print(f"[ept] {m.group(0)}; " + "; ".join(l for l in out.splitlines() if "ratio" in l))


# INVD drops the CPU's caches without writing them back: run in a guest it
# would lose ferry's own unwritten memory. Every backend must stop the guest
# instead: #GP at CPL 3 (pte), VMX's unconditional exit 13 (ept), the SVM
# INVD intercept, exit code 0x76 (npt). QEMU 7.2's SVM checks INVD against
# the WBINVD intercept bit (fixed in QEMU 8.1), so npt is tested on Bochs.
def check_invd_stopped(f, want):
    f.send_line("guest start invd 8M")
    f.expect(r"guest: invd: invalidating caches without write-back")
    f.expect(r"guest: (stopped: [^\n]*\(rip 0x[0-9a-f]+\)|invd: the INVD went through \(it must not\))")
    got = f.con.match.group(1)
    assert re.match(want, got), f"expected /{want}/, got: {got}"
    assert "invd, faulted" in f.cmd("info guest")
    assert "ferry 0.1.0" in f.cmd("info version")
    f.cmd("guest quit")


def test_invd_stops_guest_pte(qemu):
    f = qemu(name="hv-invd-pte", cpu="max,-svm").wait_ready()
    check_invd_stopped(f, r"stopped: exception 13, ")


@pytest.mark.bochs
@pytest.mark.parametrize("backend,model,want", [
    ("npt", "ryzen", r"stopped: unknown exit, hardware reason 0x76, "),
    ("ept", "corei7_haswell_4770", r"stopped: unknown exit, hardware reason 0xd, "),
], ids=["npt", "ept"])
def test_invd_stops_guest_bochs(bochs, backend, model, want):
    b = bochs(model=model).wait_ready()
    assert f"backend: {backend} " in b.cmd("info guest")
    check_invd_stopped(b, want)


@pytest.mark.bochs
def test_hv_sandy_bridge_falls_back(bochs):
    """EPT without A/D flags: no hardware dirty log; pte instead, and it works."""
    b = bochs(model="corei7_sandy_bridge_2600k").wait_ready()
    assert "hv: backend pte (" in b.console_text()
    out = b.cmd("info guest")
    want = (r"backend: pte \(no hardware dirty logging: the guest runs in ring 3; not ept: VMX with EPT "
            r"but no EPT accessed/dirty flags \(IA32_VMX_EPT_VPID_CAP bit 21 clear\), npt: no SVM\)")
    assert re.search(want, out), out
    got, written, _, out = exactness(b, 5, size="8M")
    assert got == "pte", out


# Bad guest commands are refused with a precise message; ferry goes on.
NEGATIVE_CASES = [
    ("unknown workload", "guest start bogus", r"usage: guest start WORKLOAD"),
    ("bad size", "guest start idle 12Q", r"usage: guest start WORKLOAD"),
    ("odd size", "guest start idle 3M", r"error: guest size must be a multiple of 2 MiB from 4 MiB to 8 GiB"),
    ("too big", "guest start idle 8G", r"error: not enough memory for a 8192 MiB guest: needs \d+ MiB, \d+ MiB free"),
    ("bad rate", "guest start sparse 16M 0", r"error: RATE is writes per millisecond"),
    ("stop nothing", "guest stop", r"error: no running guest"),
    ("cont nothing", "guest cont", r"error: no stopped guest"),
    ("harvest without log", "dirtylog harvest", r"error: dirty logging is off"),
    ("test usage", "dirtylog test", r"usage: dirtylog test ROUNDS SEED \[SIZE\]"),
    ("wptest usage", "dirtylog wptest 0", r"usage: dirtylog wptest MS"),
    ("wptest without guest", "dirtylog wptest 10", r"^error: no running guest\n$"),
    ("cpu without guest", "guest cpu", r"error: no guest"),
    ("start", "guest start idle 8M", r"guest: idle, 8 MiB, backend \w+: running"),
    ("second guest", "guest start idle", r"error: a guest exists \(idle, running\); 'guest quit' first"),
    ("cpu while running", "guest cpu", r"error: the guest is running; 'guest stop' first"),
    ("test while guest", "dirtylog test 5 5", r"error: a guest exists; 'guest quit' first"),
    ("quit", "guest quit", r"guest destroyed"),
]

USED_RE = r"used [0-9.]+ MiB \((\d+) pages\)"


def test_guest_commands_negative(qemu):
    f = qemu(name="hv-neg", cpu="max,-svm").wait_ready()
    used_before = re.search(USED_RE, f.cmd("info mem")).group(1)
    for name, line, want in NEGATIVE_CASES:
        out = f.cmd(line)
        assert re.search(want, out), f"{name}: sent {line!r}\nexpected /{want}/\ngot:\n{out}"
    # Every page the guest took (memory, tables, bitmaps) came back.
    out = f.cmd("info mem")
    assert re.search(USED_RE, out).group(1) == used_before, f"used {used_before} pages before the guest:\n{out}"


def test_guest_bench_runs(qemu):
    # Small sizes: checks the command, not the numbers (make bench does).
    f = qemu(name="hv-bench", cpu="max").wait_ready()
    out = f.cmd("guest bench 64M 16M", timeout=300)
    for want in (r"bench npt harvest: 64 MiB guest, 16 MiB touched: \d+ pages, \d+ entries, median [0-9.]+ us",
                 r"bench npt harvest: 16 MiB guest, all touched: \d+ pages",
                 r"bench npt harvest ratio: [0-9.]+ \(goal <= 2\)",
                 r"bench npt vm-exit round trip: \d+ ns \(\d+ exits\)"):
        assert re.search(want, out), f"expected /{want}/ in:\n{out}"
    assert "guest: none" in f.cmd("info guest")
    assert re.search(r"guest: idle, \d+ MiB, backend npt: running", out := f.cmd("guest start idle")), out
    assert f.cmd("guest bench") == "error: a guest exists; 'guest quit' first\n"
