"""Live migration (docs/migration.md), all with real QEMU instances and
real lwIP TCP.

Destination against the host tool: a ferry listening with
`migrate_incoming`, reached from the host through QEMU user-mode
networking (restrict=on, a hostfwd bound to 127.0.0.1), fed by
`ferry-stream send` or by hand over a socket: a good stream is committed;
a wrong digest, a hostile CPU state, a corrupted record, a truncated
stream and a guest that does not fit are refused with a precise reason,
leave no guest behind and the console answering.

Source and destination: two instances on a socket link; the self-checking
`stamp` guest moves from A to B and keeps passing its check there; when B
dies mid-migration or refuses the guest, A keeps the same guest running and
its check still passes. Plus the console's error cases.
"""
import os
import re
import socket
import struct
import subprocess
import time

import pytest

from ferrylib import BUILD, Qemu, free_port, info_fields, start_bochs_qemu_pair, start_linked_pair, wait_status
from streamrec import crc32c

TOOL = os.path.join(BUILD, "host", "tools", "ferry-stream")
IP_A, IP_B, PORT = "10.0.0.1", "10.0.0.2", 4444
GUEST_SIZE = "32M"
MIGRATE_TIMEOUT = 180  # s: a bound on a hung migration, not what is measured
DEAD_PEER_TIMEOUT = 60  # s: the source's own stall timeout is 10 s


def info(inst, what="info migrate"):
    """`info migrate` (or another info command) as a dict of 'key: value'."""
    out = inst.cmd(what)
    return info_fields(out), out


def guest_counters(inst):
    out = inst.cmd("info guest")
    m = re.search(r"guest: (\w+), (\w+),", out)
    c = re.search(r"counters: passes (\d+), errors (\d+)", out)
    return (m.group(1), m.group(2), int(c.group(1)), int(c.group(2))) if m and c else (None, None, 0, 0), out


def assert_stamp_runs(inst, what):
    """The stamp guest is running, its passes go up, and it found no mismatch."""
    (wl, state, p0, e0), out0 = guest_counters(inst)
    assert (wl, state) == ("stamp", "running"), f"{what}: expected a running stamp guest:\n{out0}"
    deadline = time.monotonic() + 30
    while True:
        time.sleep(1)
        (wl, state, p1, e1), out1 = guest_counters(inst)
        if p1 > p0 + 2 or time.monotonic() > deadline:
            break
    assert p1 > p0 + 2, f"{what}: stamp passes did not advance ({p0} -> {p1}):\n{out1}"
    assert e1 == 0, f"{what}: stamp found {e1} mismatches:\n{out1}"
    assert "MISMATCH" not in inst.console_text(), f"{what}: stamp printed a mismatch"


# ---------------------------------------------------------------------------
# Destination against the host tool
# ---------------------------------------------------------------------------

def records(buf):
    """(offset, type, body_offset, length, end) of each record of a saved
    stream with CRC trailers on (what `ferry-stream gen` writes)."""
    off = 32
    while off < len(buf):
        typ, length = struct.unpack_from("<II", buf, off)
        end = off + 8 + ((length + 7) & ~7) + 8
        yield off, typ, off + 8, length, end
        off = end


def patch_record(buf, typ, fn):
    """Apply fn(bytearray body) to the first record of type typ; fix its CRC."""
    buf = bytearray(buf)
    for off, t, body, length, end in records(buf):
        if t == typ:
            b = bytearray(buf[body:body + length])
            fn(b)
            buf[body:body + length] = b
            padded = 8 + ((length + 7) & ~7)
            struct.pack_into("<II", buf, off + padded, crc32c(bytes(buf[off:off + padded])), 0)
            return bytes(buf)
    raise AssertionError(f"no record of type {typ:#x}")


CPU_STATE, PAGE_DATA = 7, 4


@pytest.fixture(scope="module")
def dest(tmp_path_factory):
    """One ferry (pte backend: -cpu qemu64 has no nested paging) on QEMU
    user networking with restrict=on; host port hp reaches its 4444."""
    if not os.path.exists(TOOL):
        pytest.fail(f"{TOOL} is missing: run 'make host' (make check does)")
    hp = free_port()
    work = tmp_path_factory.mktemp("migdest")
    inst = Qemu(work, name="dest", cpu="qemu64", extra=[
        "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{hp}-10.0.2.15:{PORT}",
        "-device", "virtio-net-pci,netdev=n0"])
    try:
        inst.wait_ready()
        assert "net: 10.0.2.15/24" in inst.cmd("net config 10.0.2.15/24 10.0.2.2")
        inst.hostport = hp
        inst.work = str(work)
        # The transport's receive ring is taken on the first listen and kept,
        # and the first stream grows ferry's heap to its working size once
        # (the reader's record buffer): memory use is measured after one.
        listen(inst)
        r = send(inst, gen(inst, "warm.fms"))
        assert r.returncode == 0, r.stdout + r.stderr
        wait_status(inst, ("completed",), 30)
        inst.cmd("guest quit")
        inst.used0 = re.search(r"used [0-9.]+ MiB \((\d+) pages\)", inst.cmd("info mem")).group(1)
        yield inst
    finally:
        inst.close()


def gen(dest, name, *args):
    path = os.path.join(dest.work, name)
    subprocess.run([TOOL, "gen", "-o", path, "--pages", "1024", *args], check=True,
                   capture_output=True, timeout=60)
    return path


def listen(dest):
    out = dest.cmd(f"migrate_incoming tcp:0:{PORT}")
    assert f"migration: listening on 0.0.0.0:{PORT}" in out, out


def send(dest, path):
    return subprocess.run([TOOL, "send", path, f"127.0.0.1:{dest.hostport}", "--timeout", "30"],
                          capture_output=True, text=True, timeout=90)


def assert_refused(dest, result_re):
    """The last incoming connection failed for result_re, no guest is left,
    the destination listens again (a refused source does not end
    migrate_incoming) and the console still answers. Stops listening, so
    the next test starts from nothing."""
    deadline = time.monotonic() + 30
    while True:
        d, out = info(dest)
        if d["Migration status"].startswith("setup") and d.get("last connection"):
            break
        assert time.monotonic() < deadline, f"not listening again after a refusal:\n{out}"
        time.sleep(0.2)
    assert re.search(result_re, d["last connection"]), f"expected /{result_re}/ in:\n{out}"
    assert "guest: none" in dest.cmd("info guest")
    assert re.search(r"uptime: \d+\.\d+ s", dest.cmd("info uptime"))
    assert "migration cancelled: stopped listening" in dest.cmd("migrate_cancel")


def test_dest_commits_a_good_stream(dest):
    path = gen(dest, "good.fms", "--iterations", "3")
    listen(dest)
    r = send(dest, path)
    assert r.returncode == 0, r.stderr
    assert "COMMIT" in r.stdout
    d, out = wait_status(dest, ("completed", "failed"), 30)
    assert d["Migration status"].startswith("completed"), out
    assert d["total ram"] == "4096 kbytes"
    assert "guest: " in dest.cmd("info guest") and "guest: none" not in dest.cmd("info guest")
    # The tool's CPU state is no real program: the guest may fault, ferry must not.
    dest.cmd("guest quit")
    assert "guest: none" in dest.cmd("info guest")


# (name, gen options, body patch of CPU_STATE or None, result regex)
NACK_CASES = [
    ("wrong digest", ["--bad-digest"], None, r"NACK \(digest mismatch\): .*memory digest"),
    ("mxcsr reserved bits", [], lambda b: struct.pack_into("<I", b, 584 + 24, 0xFFFF0000),
     r"NACK \(CPU state.*\): MXCSR 0xffff0000 has bits outside"),
    ("non-canonical rip", [], lambda b: struct.pack_into("<Q", b, 136, 0x0000800000000000),
     r"NACK \(CPU state.*\): rip 0x800000000000 is not canonical"),
    ("xsave header reserved", [], lambda b: struct.pack_into("<Q", b, 584 + 512 + 8, 1),
     r"NACK \(CPU state.*\): XSAVE header word 1 is 0x1"),
    ("virtual-8086 flag", [], lambda b: struct.pack_into("<Q", b, 144, 1 << 17),
     r"NACK \(CPU state.*\): rflags 0x20000 has reserved or unsupported bits set"),
]


@pytest.mark.parametrize("name,opts,patch,result", NACK_CASES, ids=[c[0] for c in NACK_CASES])
def test_dest_nacks(dest, name, opts, patch, result):
    path = gen(dest, name.replace(" ", "_") + ".fms", *opts)
    if patch:
        with open(path, "rb") as f:
            buf = f.read()
        with open(path, "wb") as f:
            f.write(patch_record(buf, CPU_STATE, patch))
    listen(dest)
    r = send(dest, path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "peer answered NACK" in r.stderr, r.stderr
    assert_refused(dest, result)


def test_dest_refuses_a_guest_that_does_not_fit(dest):
    path = os.path.join(dest.work, "odd.fms")
    subprocess.run([TOOL, "gen", "-o", path, "--pages", "1000"], check=True, capture_output=True, timeout=60)
    listen(dest)
    r = send(dest, path)
    assert r.returncode == 1
    assert "peer refused: guest does not fit: guest of 1000 pages: ferry takes 2 MiB multiples" in r.stderr, r.stderr
    assert_refused(dest, r"refused the source: guest of 1000 pages: ferry takes 2 MiB multiples")


GUEST_INFO = 3


def npt_state(b):
    """Make the tool's CPU_STATE body a plausible 64-bit SVM guest."""
    struct.pack_into("<Q", b, 152, 0x80050033)  # cr0: PE MP ET NE WP AM PG
    struct.pack_into("<Q", b, 168, 0x3000)      # cr3
    struct.pack_into("<Q", b, 176, 0x6A0)       # cr4: PAE PGE OSFXSR OSXMMEXCPT
    struct.pack_into("<Q", b, 192, 0x500)       # efer: LME LMA
    seg = lambda i, attr: struct.pack_into("<I", b, 200 + 24 * i + 8, attr)
    seg(1, 0xA09B)   # cs: 64-bit code, DPL 0
    seg(2, 0xC093)   # ss: data, DPL 0
    seg(6, 0x10000)  # ldtr: unusable
    seg(7, 0x8B)     # tr: busy 64-bit TSS


def svm_stream(dest, name, *patches):
    """A tool stream whose guest says mode SVM, with a plausible CPU state
    changed by patches (functions of the CPU_STATE body)."""
    path = gen(dest, name)
    with open(path, "rb") as f:
        buf = f.read()
    buf = patch_record(buf, GUEST_INFO, lambda b: struct.pack_into("<I", b, 12, 2))
    def cpu(b):
        npt_state(b)
        for p in patches:
            p(b)
    buf = patch_record(buf, CPU_STATE, cpu)
    with open(path, "wb") as f:
        f.write(buf)
    return path


def q(off, v):
    return lambda b: struct.pack_into("<Q", b, off, v)


def seg_attr(i, v):
    return lambda b: struct.pack_into("<I", b, 200 + 24 * i + 8, v)


# What VM entry would refuse is refused first, with the field and its value.
SVM_NACK_CASES = [
    ("cr4 vmxe", q(176, 0x26A0), r"cr4 0x26a0: reserved or unsupported bits, or PAE clear"),
    ("cr0 nw without cd", q(152, 0xA0050033), r"cr0 0xa0050033: not a 64-bit paging mode VM entry accepts"),
    ("cr0 paging off", q(152, 0x33), r"cr0 0x33: not a 64-bit paging mode"),
    ("cr3 reserved bit", q(168, 0x8000000000003000), r"cr3 0x8000000000003000 has reserved bits set"),
    ("efer without lma", q(192, 0x100), r"efer 0x100: not long mode, or reserved bits set"),
    ("efer reserved bit", q(192, 0x10500), r"efer 0x10500: not long mode, or reserved bits set"),
    ("cs 32-bit", seg_attr(1, 0xC09B), r"cs attributes 0xc09b: not a present 64-bit code segment"),
    ("cs not present", seg_attr(1, 0xA01B), r"cs attributes 0xa01b: not a present 64-bit code segment"),
    ("ss dpl differs", seg_attr(2, 0xC0F3), r"cs DPL 0 differs from ss DPL 3"),
    ("tr available tss", seg_attr(7, 0x89), r"tr attributes 0x89: not a present busy 64-bit TSS"),
    ("attr reserved bits", seg_attr(3, 0x80093), r"ds attributes 0x80093 have reserved bits set"),
    ("gs base not canonical", q(200 + 24 * 5 + 16, 0x0000800000000000),
     r"gs base 0x800000000000 is not canonical"),
    ("gdtr base not canonical", q(392 + 8, 0x00FF000000000000), r"gdtr 0xff000000000000/0x0 or idtr"),
]


@pytest.fixture(scope="module")
def dest_npt(tmp_path_factory):
    """As `dest`, on the npt backend (-cpu max)."""
    hp = free_port()
    work = tmp_path_factory.mktemp("migdestnpt")
    inst = Qemu(work, name="destnpt", extra=[
        "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{hp}-10.0.2.15:{PORT}",
        "-device", "virtio-net-pci,netdev=n0"])
    try:
        inst.wait_ready()
        inst.cmd("net config 10.0.2.15/24 10.0.2.2")
        inst.hostport = hp
        inst.work = str(work)
        yield inst
    finally:
        inst.close()


def test_dest_npt_takes_a_sane_svm_state(dest_npt):
    path = svm_stream(dest_npt, "svm-good.fms")
    listen(dest_npt)
    r = send(dest_npt, path)
    assert r.returncode == 0 and "COMMIT" in r.stdout, r.stdout + r.stderr
    # Random memory under it: the guest faults at once; ferry must not.
    assert re.search(r"guest: idle, (running|faulted)", dest_npt.cmd("info guest"))
    assert re.search(r"uptime: \d+\.\d+ s", dest_npt.cmd("info uptime"))
    dest_npt.cmd("guest quit")


@pytest.mark.parametrize("name,patch,result", SVM_NACK_CASES, ids=[c[0] for c in SVM_NACK_CASES])
def test_dest_npt_nacks_what_vmrun_would_refuse(dest_npt, name, patch, result):
    path = svm_stream(dest_npt, name.replace(" ", "_") + ".fms", patch)
    listen(dest_npt)
    r = send(dest_npt, path)
    assert r.returncode == 1 and "peer answered NACK" in r.stderr, r.stdout + r.stderr
    assert_refused(dest_npt, r"NACK \(CPU state missing or unusable\): " + result)


def test_dest_keeps_its_own_guest(dest):
    # Listening does not reserve the guest slot: a guest started meanwhile
    # makes the destination refuse the source, and that guest is untouched.
    path = gen(dest, "busy.fms")
    listen(dest)
    assert "guest: idle, 8 MiB" in dest.cmd("guest start idle 8M")
    r = send(dest, path)
    assert r.returncode == 1
    assert "peer refused: destination busy: a guest already runs here" in r.stderr, r.stderr
    deadline = time.monotonic() + 30
    while "refused the source: a guest already runs here" not in info(dest)[0].get("last connection", ""):
        assert time.monotonic() < deadline, dest.cmd("info migrate")
        time.sleep(0.2)
    assert re.search(r"guest: idle, running, 8 MiB", dest.cmd("info guest"))
    assert "migration cancelled: stopped listening" in dest.cmd("migrate_cancel")
    dest.cmd("guest quit")


def test_save_a_live_guest_and_restore_it_into_ferry(dest, qemu):
    """A ferry source migrates its running stamp guest into `ferry-stream
    recv` (through a guestfwd to 127.0.0.1), the tool verifies the saved
    stream on its own, and `ferry-stream send` restores it into the pte
    destination, where the stamp check must go on passing."""
    hp = free_port()
    saved = os.path.join(dest.work, "saved-live.fms")
    rec = subprocess.Popen([TOOL, "recv", "--listen", f"127.0.0.1:{hp}", "-o", saved, "--timeout", "60"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert rec.stdout.readline().startswith(f"listening on 127.0.0.1:{hp}")
        src = qemu(name="src", cpu="qemu64", extra=[
            "-netdev", f"user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:{PORT}-tcp:127.0.0.1:{hp}",
            "-device", "virtio-net-pci,netdev=n0"])
        src.wait_ready()
        src.cmd("net config 10.0.2.15/24 10.0.2.2")
        assert "backend pte: running" in src.cmd("guest start stamp 16M")
        time.sleep(1)
        src.cmd(f"migrate tcp:10.0.2.100:{PORT}")
        d, out = wait_status(src, ("completed", "failed"), MIGRATE_TIMEOUT)
        assert d["Migration status"].startswith("completed"), out
        assert "guest: none" in src.cmd("info guest")
        tool_out = rec.communicate(timeout=60)[0]
        assert rec.returncode == 0 and "COMMIT: 4096 pages" in tool_out, tool_out
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait()
    v = subprocess.run([TOOL, "verify", saved], capture_output=True, text=True, timeout=60)
    assert v.returncode == 0 and "OK:" in v.stdout, v.stdout + v.stderr
    listen(dest)
    r = send(dest, saved)
    assert r.returncode == 0 and "COMMIT" in r.stdout, r.stdout + r.stderr
    d, out = wait_status(dest, ("completed", "failed"), 30)
    assert d["Migration status"].startswith("completed"), out
    assert_stamp_runs(dest, "the restored guest")
    dest.cmd("guest quit")


def raw_session(dest, path, mutate):
    """Speak the protocol by hand: header and HELLO from the saved file, read
    the HELLO_ACK, then the rest of the file through mutate(bytes). Returns
    every reply byte until the destination closes."""
    with open(path, "rb") as f:
        buf = f.read()
    hdr = bytearray(buf[:32])
    struct.pack_into("<I", hdr, 24, 0)  # live stream: no SAVED flag
    s = socket.create_connection(("127.0.0.1", dest.hostport), timeout=30)
    try:
        s.sendall(bytes(hdr) + buf[32:128])  # header, HELLO (8 + 80 + CRC 8)
        reply = b""
        while len(reply) < 32 + 128:  # header, HELLO_ACK (8 + 112 + CRC 8)
            chunk = s.recv(4096)
            assert chunk, f"destination closed after {len(reply)} reply bytes"
            reply += chunk
        status, = struct.unpack_from("<I", reply, 32 + 8)
        assert status == 0, f"HELLO_ACK status {status}"
        try:
            s.sendall(mutate(buf[256:]))  # after the file's HELLO_ACK
        except (BrokenPipeError, ConnectionResetError):
            pass  # it may hang up before taking everything
        s.shutdown(socket.SHUT_WR)
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            reply += chunk
        return reply
    finally:
        s.close()


def test_dest_rejects_a_corrupted_record(dest):
    path = gen(dest, "corrupt.fms")
    with open(path, "rb") as f:
        buf = f.read()
    page = next(r for r in records(buf) if r[1] == PAGE_DATA)
    flip = page[2] + 8 + 8 * 4 + 100 - 256  # a byte of a page, offset in the tail

    def mutate(tail):
        t = bytearray(tail)
        t[flip] ^= 0x40
        return bytes(t)

    listen(dest)
    reply = raw_session(dest, path, mutate)
    # After the header and HELLO_ACK: an ERROR record (type 0x0c), code 1.
    typ, length = struct.unpack_from("<II", reply, 160)
    code, _, mig_id = struct.unpack_from("<IIQ", reply, 168)
    assert (typ, code) == (0x0C, 1), f"expected ERROR protocol, got type {typ:#x} code {code}"
    hello_id, = struct.unpack_from("<Q", buf, 32 + 8 + 72)
    assert mig_id == hello_id != 0, f"ERROR carries id {mig_id:#x}, the HELLO's is {hello_id:#x}"
    assert b"CRC" in reply[184:168 + length], reply[184:168 + length]
    assert_refused(dest, r"record \d+ \(PAGE_DATA\): CRC32C 0x[0-9a-f]+, computed")


def test_dest_discards_a_truncated_stream(dest):
    path = gen(dest, "trunc.fms")
    listen(dest)
    reply = raw_session(dest, path, lambda tail: tail[:len(tail) // 2])
    assert len(reply) == 160, f"expected no verdict, got {len(reply) - 160} more bytes"
    assert_refused(dest, r"the source closed the connection before END")


def test_dest_commits_before_any_error_after_go(dest):
    """A live source with verification after the switch-over, by hand: after
    GO comes a record the reader refuses (CANCEL, past the point of no
    return). The guest already runs there, so the destination must say
    COMMIT before its ERROR: an ERROR alone would tell the source the guest
    never ran, and it would resume its copy too."""
    from streamrec import TYPES, header, record
    path = gen(dest, "live.fms")
    with open(path, "rb") as f:
        buf = f.read()
    recs = list(records(buf))
    hello = bytearray(buf[recs[0][2]:recs[0][2] + recs[0][3]])
    caps, = struct.unpack_from("<Q", hello, 16)
    struct.pack_into("<Q", hello, 16, caps | 1 << 4)  # offer VERIFY_AFTER
    mig, = struct.unpack_from("<Q", hello, 72)
    body = b"".join(buf[off:end] for off, typ, _, _, end in recs[2:] if typ not in (TYPES["DIGEST"], TYPES["END"]))
    listen(dest)
    s = socket.create_connection(("127.0.0.1", dest.hostport), timeout=30)
    got = []
    try:
        s.sendall(header() + record(TYPES["HELLO"], bytes(hello)))
        reply = b""

        def read_records(until):
            nonlocal reply
            while True:
                off = 32
                types = []
                while off + 8 <= len(reply):
                    typ, length = struct.unpack_from("<II", reply, off)
                    end = off + 8 + length + (-length % 8) + 8
                    if end > len(reply):
                        break
                    types.append(typ)
                    off = end
                if until(types):
                    return types
                chunk = s.recv(65536)
                if not chunk:
                    return types
                reply += chunk
        types = read_records(lambda t: len(t) >= 1)
        assert types[0] == TYPES["HELLO_ACK"], types
        ack_caps, = struct.unpack_from("<Q", reply, 32 + 8 + 16)
        assert ack_caps & (1 << 4), f"VERIFY_AFTER not granted: caps {ack_caps:#x}"
        s.sendall(body + record(TYPES["END"], struct.pack("<Q", mig), True))
        types = read_records(lambda t: TYPES["READY"] in t or TYPES["NACK"] in t)
        assert types == [TYPES["HELLO_ACK"], TYPES["READY"]], types
        s.sendall(record(TYPES["GO"], struct.pack("<Q", mig), True) +
                  record(TYPES["CANCEL"], struct.pack("<Q", mig), True))
        got = read_records(lambda t: TYPES["ERROR"] in t)
    finally:
        s.close()
    assert got == [TYPES["HELLO_ACK"], TYPES["READY"], TYPES["COMMIT"], TYPES["ERROR"]], got
    d, out = wait_status(dest, ("completed", "failed"), 30)
    assert d["result"].startswith("guest running here, unverified: record") and "CANCEL after GO" in d["result"], out
    dest.cmd("guest quit")


def test_dest_listens_again_after_a_bare_connection(dest):
    # A port scan (connect, close) does not end migrate_incoming: the next
    # real source is still taken.
    listen(dest)
    socket.create_connection(("127.0.0.1", dest.hostport), timeout=10).close()
    deadline = time.monotonic() + 30
    while "closed the connection" not in info(dest)[0].get("last connection", ""):
        assert time.monotonic() < deadline, dest.cmd("info migrate")
        time.sleep(0.2)
    d, out = info(dest)
    assert d["Migration status"] == f"setup (listening on 0.0.0.0:{PORT})" and d["connections"] == "1", out
    r = send(dest, gen(dest, "after-scan.fms"))
    assert r.returncode == 0 and "COMMIT" in r.stdout, r.stdout + r.stderr
    d, out = wait_status(dest, ("completed", "failed"), 30)
    assert d["Migration status"].startswith("completed"), out
    dest.cmd("guest quit")


def test_dest_handshake_deadline(dest):
    # A connection that says nothing is dropped after 10 s, and it listens again.
    listen(dest)
    with socket.create_connection(("127.0.0.1", dest.hostport), timeout=30) as s:
        t0 = time.monotonic()
        s.settimeout(20)
        reply = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        waited = time.monotonic() - t0
    assert 9 <= waited < 20, f"dropped after {waited:.1f} s"
    assert b"no HELLO within 10 s" in reply, reply
    assert_refused(dest, r"^timeout: no HELLO within 10 s of the connection$")


@pytest.mark.slow
def test_dest_trickle_cannot_hold_it(dest):
    # A peer that sends a valid start and then one byte every 3 s never
    # completes a record: 30 s after the last complete one it is dropped.
    path = gen(dest, "trickle.fms")
    with open(path, "rb") as f:
        buf = f.read()
    hdr = bytearray(buf[:32])
    struct.pack_into("<I", hdr, 24, 0)
    listen(dest)
    with socket.create_connection(("127.0.0.1", dest.hostport), timeout=10) as s:
        s.sendall(bytes(hdr) + buf[32:128])
        t0 = time.monotonic()
        rest = buf[256:]
        i = 0
        try:
            while time.monotonic() - t0 < 60:
                s.sendall(rest[i:i + 1])
                i += 1
                time.sleep(3)
                if "no complete record" in info(dest)[0].get("last connection", ""):
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        held = time.monotonic() - t0
    assert 29 <= held < 45, f"held for {held:.0f} s"
    assert_refused(dest, r"^timeout: no complete record for 30 s$")


def test_dest_gave_every_page_back(dest):
    # After all the committed, refused and discarded guests above (this runs
    # after them: pytest keeps file order), ferry holds what it held before.
    out = dest.cmd("info mem")
    assert re.search(r"used [0-9.]+ MiB \((\d+) pages\)", out).group(1) == dest.used0, \
        f"used {dest.used0} pages before:\n{out}"


# ---------------------------------------------------------------------------
# ferry to ferry
# ---------------------------------------------------------------------------

def pair(qemu, cpu_b="max", cpu_a="max", nic="virtio-net-pci"):
    def start(**kw):
        kw["cpu"] = cpu_b if kw.get("name") == "b" else cpu_a
        return qemu(**kw)
    a, b, _ = start_linked_pair(start, nic)
    assert "net:" in a.cmd(f"net config {IP_A}/24")
    assert "net:" in b.cmd(f"net config {IP_B}/24")
    return a, b


# -cpu max: the npt backend (SVM with nested paging); qemu64: pte (no NPT).
@pytest.mark.parametrize("cpu,backend,nic", [("max", "npt", "virtio-net-pci"), ("qemu64", "pte", "virtio-net-pci"),
                                             ("max", "npt", "e1000")])
def test_migrate_stamp_guest(qemu, cpu, backend, nic):
    a, b = pair(qemu, cpu_b=cpu, cpu_a=cpu, nic=nic)
    assert f"backend: {backend} (" in a.cmd("info guest")
    assert "running" in a.cmd(f"guest start stamp {GUEST_SIZE}")
    time.sleep(1)
    listen(b)
    out = a.cmd(f"migrate tcp:{IP_B}:{PORT}")
    assert f"migration: connecting to {IP_B}:{PORT}" in out, out
    # The console answers while the migration runs.
    d, out = info(a)
    assert d["Migration status"].split(" ")[0] in ("setup", "active", "completed"), out
    d, out = wait_status(a, ("completed", "failed", "cancelled"), MIGRATE_TIMEOUT)
    print(out)
    assert d["Migration status"] == f"completed (to {IP_B}:{PORT})", out
    total = int(d["total ram"].split()[0])
    assert total == 32768
    assert int(d["transferred ram"].split()[0]) >= total // 2, out  # the stamped half is data
    assert int(d["duplicate"].split()[0]) > 0, out                # the untouched rest is zero
    # One harvest after the bulk pass, one after each round, and the final
    # one with the guest stopped.
    rounds = int(d["rounds"].split(",")[0])
    assert int(d["dirty sync count"]) == rounds + 2, f"expected {rounds} rounds + 2 harvests:\n{out}"
    downtime = int(d["downtime"].split()[0])
    assert 0 < downtime < int(d["total time"].split()[0]), out
    # Where the downtime went, in the order it happened: the final pass
    # written, everything up to the CPU state acknowledged, READY back, GO
    # out, COMMIT back (B runs the guest): the downtime. No digest in the
    # pause: the memory is verified after it.
    m = re.search(r"switch-over: final pass (\d+) pages \((\d+) kbytes\) written by \+(\d+) ms, acknowledged"
                  r" with the CPU state by \+(\d+) ms, READY at \+(\d+) ms, GO at \+(\d+) ms,"
                  r" COMMIT \(running there\) at \+(\d+) ms$", out, re.M)
    assert m, out
    pages, kb, written, acked, ready, go, commit = map(int, m.groups())
    assert pages > 0 and kb > 0, out
    assert written <= acked <= ready <= go <= commit == downtime, out
    # Verification after the pause: every 2 MiB region of A's stopped copy
    # hashed and matched by B, after B's COMMIT.
    m = re.search(r"^verification: (\d+) regions hashed here in \d+ ms, VERIFIED at \+(\d+) ms$", out, re.M)
    assert m and int(m.group(1)) == total // 2048 and int(m.group(2)) >= commit, out
    assert "result: guest handed over to 10.0.0.2:4444 (memory verified)" in out, out
    # The final pass wrote exactly the pages the stop left dirty (counted
    # at the harvest, and page by page as written).
    assert int(d["remaining at stop"].split()[0]) == pages, f"final pass wrote {pages} pages:\n{out}"
    assert "guest: none" in a.cmd("info guest")
    db, outb = wait_status(b, ("completed", "failed"), 30)
    print(outb)
    assert db["Migration status"].startswith("completed"), outb
    # B's own clock: from the first record of the final pass (written
    # after A stopped the guest) to B's COMMIT (before A read it) the guest
    # ran nowhere, so A's downtime is at least that long.
    m = re.search(r"switch-over: guest resumed here \+(\d+) ms after the final pass's first record", outb)
    assert m, outb
    resumed = int(m.group(1))
    assert 0 < resumed <= downtime, f"A's downtime {downtime} ms, B measured {resumed} ms:\n{out}\n{outb}"
    m = re.search(r"^verification: (\d+) regions, hashed in \d+ ms \((\d+) at a guest write, which waited \d+ ms\)",
                  outb, re.M)
    assert m and int(m.group(1)) == total // 2048, outb
    assert "memory verified (16 regions)" in db["result"], outb
    assert_stamp_runs(b, "B after migration")


def test_xbzrle_auto_turns_off_when_the_cache_misses(qemu):
    # sparse writes at random over 32 MiB, faster than the link moves them:
    # auto turns XBZRLE on; a 1 MiB cache (256 pages, the whole budget) then
    # hits almost never, and auto turns it off, saying why. (It may turn it
    # on again after a backoff: the guest still outruns the link.)
    a, b = pair(qemu)
    a.cmd("migrate_set_parameter xbzrle-cache-size 1M")
    assert "running" in a.cmd(f"guest start sparse {GUEST_SIZE} 200")
    listen(b)
    a.cmd(f"migrate tcp:{IP_B}:{PORT}")
    d, out = wait_status(a, ("completed", "failed"), MIGRATE_TIMEOUT)
    print(out)
    assert d["Migration status"].startswith("completed"), out
    assert re.search(r"^  round \d+: xbzrle on: dirty [\d.]+ MB/s > 50% of the link's [\d.]+ MB/s; 1 MiB cache", out,
                     re.M), out
    assert re.search(r"^  round \d+: xbzrle off: hit rate \d% < 10% for 2 rounds with a 1 MiB cache$", out, re.M), out
    # The cache filled its 1 MiB (less than one more page and its entry
    # left) and never held more: the parameter sized the real cache.
    held = int(d["cache held at most"].split()[0])
    assert 1048576 - (4096 + 48) < held <= 1048576, f"expected a full 1 MiB cache, held {held} bytes:\n{out}"
    assert float(d["xbzrle cache miss rate"]) > 0.9, out
    db, outb = wait_status(b, ("completed", "failed"), 30)
    assert db["Migration status"].startswith("completed"), outb
    assert re.search(r"guest: sparse, running", b.cmd("info guest"))


def test_source_resumes_when_destination_dies(qemu):
    a, b = pair(qemu)
    a.cmd(f"guest start stamp {GUEST_SIZE}")
    a.cmd("migrate_set_parameter downtime-limit 1")  # keep it in pre-copy
    listen(b)
    a.cmd(f"migrate tcp:{IP_B}:{PORT}")
    deadline = time.monotonic() + 60
    while int(info(a)[0].get("transferred ram", "0 kbytes").split()[0]) < 4096:
        assert time.monotonic() < deadline, a.cmd("info migrate")
        time.sleep(0.2)
    b.close()
    d, out = wait_status(a, ("failed", "completed"), DEAD_PEER_TIMEOUT)
    assert d["Migration status"].startswith("failed"), out
    assert re.search(r"timeout: .* acknowledged nothing for 10 s|link to .*: connection", d["result"]), out
    assert_stamp_runs(a, "A after its destination died")


def test_source_resumes_after_nack_and_refusal(qemu):
    # B runs the pte backend: an npt guest cannot run there, B says NACK.
    a, b = pair(qemu, cpu_b="qemu64")
    a.cmd(f"guest start stamp {GUEST_SIZE}")
    # Nobody listens yet: the connection is refused, the guest keeps running.
    a.cmd(f"migrate tcp:{IP_B}:{PORT}")
    d, out = wait_status(a, ("failed",), 30)
    assert re.search(rf"cannot connect to {IP_B}:{PORT}: connection reset", d["result"]), out
    listen(b)
    a.cmd(f"migrate tcp:{IP_B}:{PORT}")
    d, out = wait_status(a, ("failed", "completed"), MIGRATE_TIMEOUT)
    assert d["Migration status"].startswith("failed"), out
    assert re.search(r"the destination answered NACK: a guest of mode svm cannot run on backend pte",
                     d["result"]), out
    # Refused at GUEST_INFO, one round trip into the bulk pass (not after
    # the whole pre-copy); B listens again.
    assert int(d["transferred ram"].split()[0]) < 8192, out
    db, outb = wait_last(b, r"NACK \(CPU state missing or unusable\): a guest of mode svm cannot run on backend pte")
    assert db["Migration status"] == f"setup (listening on 0.0.0.0:{PORT})", outb
    assert "guest: none" in b.cmd("info guest")
    assert_stamp_runs(a, "A after B's NACK")


def wait_last(dest, result_re, timeout=30):
    """A destination that failed a connection listens again; wait until
    its last connection's result matches result_re."""
    deadline = time.monotonic() + timeout
    while True:
        d, out = info(dest)
        if re.search(result_re, d.get("last connection", "")):
            return d, out
        assert time.monotonic() < deadline, f"no last connection matching /{result_re}/:\n{out}"
        time.sleep(0.2)


def migrate_into_rounds(a, b, listening=False):
    """B listens, A migrates to it; return once A is past its bulk pass
    and into the pre-copy rounds (a second dirty sync)."""
    if not listening:
        listen(b)
    a.cmd(f"migrate tcp:{IP_B}:{PORT}")
    deadline = time.monotonic() + 60  # a bound on a stuck migration, not what is checked
    while int(info(a)[0].get("dirty sync count", "0")) < 2:
        assert time.monotonic() < deadline, a.cmd("info migrate")
        time.sleep(0.2)


def test_cancel_resumes_the_guest(qemu):
    a, b = pair(qemu)
    a.cmd(f"guest start stamp {GUEST_SIZE}")
    a.cmd("migrate_set_parameter downtime-limit 1")  # stays in pre-copy: stamp never fits 1 ms
    a.cmd("migrate_set_capability xbzrle off")
    migrate_into_rounds(a, b)
    # While it runs, the guest is the migration's.
    out = a.cmd("guest quit")
    assert re.search(rf"error: a migration to {IP_B}:{PORT} owns the guest; wait for it or 'migrate_cancel'", out), out
    out = a.cmd(f"migrate tcp:{IP_B}:{PORT}")
    assert f"error: a migration to {IP_B}:{PORT} is running; 'migrate_cancel' first" in out, out
    out = a.cmd("migrate_cancel")
    assert "migration cancelled: cancelled by the operator; the guest runs here" in out, out
    d, out = info(a)
    assert d["Migration status"].startswith("cancelled"), out
    # B discards what it had and listens again.
    db, outb = wait_last(b, r"^the source sent CANCEL$")
    assert db["Migration status"] == f"setup (listening on 0.0.0.0:{PORT})", outb
    assert "guest: none" in b.cmd("info guest")
    assert_stamp_runs(a, "A after migrate_cancel")
    # Now the destination's operator cancels mid-stream: B discards what it
    # had, A hears CANCEL and resumes.
    migrate_into_rounds(a, b, listening=True)
    out = b.cmd("migrate_cancel")
    assert "migration cancelled: incoming guest discarded by the operator" in out, out
    assert "guest: none" in b.cmd("info guest")
    d, out = wait_status(a, ("failed", "completed"), 30)
    assert "the destination answered CANCEL" in d["result"], out
    assert_stamp_runs(a, "A after the destination cancelled")


# (line, regex the whole output must match), in order on one instance with
# a NIC; the instance must keep answering.
CONSOLE_CASES = [
    ("info migrate", r"^capabilities: xbzrle: auto\nMigration status: none\n$"),
    ("migrate", r"^usage: migrate tcp:ADDR:PORT\n$"),
    ("migrate foo", r"^error: bad URI 'foo': only tcp:ADDR:PORT is supported\n$"),
    ("migrate tcp:10.0.0.2", r"^error: bad URI 'tcp:10\.0\.0\.2': expected tcp:ADDR:PORT\n$"),
    ("migrate tcp:10.0.0.2:0", r"^error: bad port '0' in 'tcp:10\.0\.0\.2:0' \(1\.\.65535\)\n$"),
    ("migrate tcp:10.0.0.2:70000", r"^error: bad port '70000' in 'tcp:10\.0\.0\.2:70000' \(1\.\.65535\)\n$"),
    ("migrate tcp:10.0.0.256:4444", r"^error: bad address '10\.0\.0\.256' in 'tcp:10\.0\.0\.256:4444'\n$"),
    ("migrate tcp:0:4444", r"^error: cannot migrate to '0': not a host address\n$"),
    ("migrate tcp:10.0.0.2:4444", r"^error: no address configured; use 'net config ADDR/PREFIX \[GATEWAY\]'\n$"),
    ("migrate_incoming tcp:0:4444", r"^error: no address configured; use 'net config ADDR/PREFIX \[GATEWAY\]'\n$"),
    ("net config 10.0.0.1/24", r"^net: 10\.0\.0\.1/24 gateway none\n$"),
    ("migrate tcp:10.0.0.2:4444", r"^error: no guest to migrate; 'guest start WORKLOAD' first\n$"),
    ("migrate_cancel", r"^error: no migration is running\n$"),
    ("migrate_set_capability xbzrle maybe", r"^error: bad value 'maybe' for xbzrle \(on, off or auto\)\n$"),
    ("migrate_set_capability rdma on", r"^error: unknown capability 'rdma'\nusage: migrate_set_capability "),
    ("migrate_set_capability xbzrle", r"^usage: migrate_set_capability xbzrle on\|off\|auto \| zero-pages on\|off \| "
     r"record-crc on\|off \|\n  verify-after on\|off \| auto-converge on\|off\n$"),
    ("migrate_set_capability verify-after auto", r"^error: bad value 'auto' for verify-after \(on or off\)\n$"),
    ("migrate_set_capability xbzrle on", r"^$"),
    ("migrate_set_capability verify-after off", r"^$"),
    ("info migrate_capabilities", r"^xbzrle: on \(no peer yet\)\n(.*\n){2}verify-after: off \(no peer yet\)\n"),
    ("migrate_set_capability verify-after on", r"^$"),
    ("migrate_set_parameter downtime-limit 0", r"^error: bad downtime-limit '0' \(1\.\.2000000 ms\)\n$"),
    ("migrate_set_parameter downtime-limit 12x", r"^error: bad downtime-limit '12x' \(1\.\.2000000 ms\)\n$"),
    ("migrate_set_parameter xbzrle-cache-size 2G",
     r"^error: bad xbzrle-cache-size '2G' \(4096\.\.1073741824 bytes; K, M, G suffixes\)\n$"),
    ("migrate_set_parameter max-downtime -1",
     r"^error: bad max-downtime '-1' \(0 \(no budget\) or 1\.\.2000000 ms\)\n$"),
    ("migrate_set_parameter x-flip-gpa 0x", r"^error: bad x-flip-gpa '0x' \(a guest-physical address; 0: off\)\n$"),
    ("migrate_resolve", r"^usage: migrate_resolve resume\|discard\n$"),
    ("migrate_resolve maybe", r"^usage: migrate_resolve resume\|discard\n$"),
    ("migrate_resolve resume", r"^error: no migration is in-doubt\n$"),
    ("migrate_set_parameter downtime-limit 50", r"^$"),
    ("migrate_set_parameter xbzrle-cache-size 16M", r"^$"),
    ("info migrate_parameters",
     r"downtime-limit: 50 ms\n(.*\n)+xbzrle-cache-size: 16777216 bytes\n(.*\n)+x-flip-gpa: 0x0 \(off\)\n"
     r"digest: xxh3-128, (vector|scalar) loop \(timed at boot: vector [1-9]\d* MB/s, scalar [1-9]\d* MB/s\)\n"
     r"record crc: crc32c, (table|sse4\.2) \(timed at boot: table [1-9]\d* MB/s(, sse4\.2 [1-9]\d* MB/s)?\)\n"
     r"xbzrle: (scalar|sse2|avx2|avx512bw) path \(timed at boot: scalar [1-9]\d* MB/s( (sse2|avx2|avx512bw) [1-9]\d* MB/s)*\)\n$"),
    ("migrate_incoming tcp:10.0.0.9:4444", r"^error: 10\.0\.0\.9:4444 is not this instance's address\n$"),
    ("migrate_incoming tcp:10.0.0.1:4444", r"^migration: listening on 10\.0\.0\.1:4444 for one incoming guest\n$"),
    ("migrate_incoming tcp:0:4445",
     r"^error: an incoming migration on 10\.0\.0\.1:4444 is waiting; 'migrate_cancel' first\n$"),
    ("info migrate", r"Migration status: setup \(listening on 10\.0\.0\.1:4444\)\n$"),
    ("migrate_cancel", r"^\nmigration cancelled: stopped listening\n$"),
    ("guest start idle 8M", r"guest: idle, 8 MiB, backend \w+: running\n$"),
    ("migrate_incoming tcp:0:4444", r"^error: a guest exists here; 'guest quit' before receiving one\n$"),
    ("migrate tcp:10.0.0.1:4444", r"^error: cannot migrate to this instance's own address\n$"),
    ("migrate_set_capability xbzrle auto", r"^$"),
    ("info uptime", r"uptime: \d+\.\d+ s"),
]


def test_console_errors(qemu):
    inst = qemu(name="con", extra=["-netdev", "user,id=n0,restrict=on", "-device", "virtio-net-pci,netdev=n0"])
    inst.wait_ready()
    for line, want in CONSOLE_CASES:
        out = inst.cmd(line)
        assert re.search(want, out), f"'{line}': expected /{want}/, got:\n{out}"
    # The digest loop kept at boot is the one that measured faster.
    out = inst.cmd("info migrate_parameters")
    m = re.search(r"digest: xxh3-128, (\w+) loop \(timed at boot: vector (\d+) MB/s, scalar (\d+) MB/s\)", out)
    assert m, out
    vec, sca = int(m.group(2)), int(m.group(3))
    if vec != sca:  # equal after rounding to MB/s: either may have won by nanoseconds
        assert m.group(1) == ("scalar" if sca > vec else "vector"), out
    # ...and so are the record CRC code and the XBZRLE path (every path's
    # output is the same bytes).
    m = re.search(r"record crc: crc32c, (\S+) \(timed at boot: table (\d+) MB/s(?:, sse4\.2 (\d+) MB/s)?\)", out)
    assert m, out
    if m.group(3) and int(m.group(2)) != int(m.group(3)):
        assert m.group(1) == ("table" if int(m.group(2)) > int(m.group(3)) else "sse4.2"), out
    m = re.search(r"xbzrle: (\w+) path \(timed at boot:((?: \w+ \d+ MB/s)+)\)", out)
    assert m, out
    rates = {k: int(v) for k, v in re.findall(r"(\w+) (\d+) MB/s", m.group(2))}
    top = max(rates.values())
    assert rates[m.group(1)] == top, out


@pytest.mark.bochs
# In make check-slow: in one full `make check` of six (2026-12-07) the Bochs
# source's clock fell so far behind real time during the bulk pass (2.8 s of
# its own against the destination's 30 s receive timeout) that the
# destination gave up; alone it passed 5 of 5.
@pytest.mark.slow
# Only VMX -> SVM: a Bochs destination waits for frames in HLT, and Bochs's
# clock then leaps ahead of real time (sync=none and sync=realtime alike
# here), so its receive timeout fires while the QEMU source is still sending.
@pytest.mark.parametrize("direction", ["vmx_to_svm"])
def test_migrate_across_vendors(bochs, qemu, direction):
    """Across vendors: a stamp guest under Intel VMX with EPT (Bochs, its
    e1000 on a dgram link) migrates to AMD SVM with NPT (QEMU), or back.
    The CPU state converts, the hypercall gate is re-patched (VMCALL <->
    VMMCALL), and the stamp check goes on passing on the other side."""
    b, q, _ = start_bochs_qemu_pair(bochs, qemu, "vmx", "svm")
    b.cmd("net config 10.0.0.11/24")
    q.cmd("net config 10.0.0.10/24")
    src, dst, dst_ip, dst_backend = (b, q, "10.0.0.10", "npt") if direction == "vmx_to_svm" else \
        (q, b, "10.0.0.11", "ept")
    assert "running" in src.cmd("guest start stamp 4M")
    listen(dst)
    src.cmd(f"migrate tcp:{dst_ip}:{PORT}")
    d, out = wait_status(src, ("completed", "failed"), 600)
    print(out)
    assert d["Migration status"].startswith("completed"), out
    dd, outd = wait_status(dst, ("completed", "failed"), 60)
    assert dd["Migration status"].startswith("completed"), outd
    assert f"backend: {dst_backend} (" in dst.cmd("info guest")
    assert_stamp_runs(dst, f"the guest moved {direction}")
