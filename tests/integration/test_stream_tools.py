"""ferry-stream host tool: dump, verify, extract, and recv/send talking over
loopback (127.0.0.1, an ephemeral port chosen by the listener). Every child
runs under a timeout and is killed by pid if it outlives its test.

Run from the repository root after `make host`:
    /usr/bin/python3 -m pytest tests/integration/test_stream_tools.py
"""
import os
import re
import select
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from ferrylib import ROOT  # noqa: F401  (puts tools/ on the path)
from streamrec import header, record

ROOT = Path(__file__).resolve().parents[2]
TOOL = Path(os.environ.get("FERRY_STREAM", ROOT / "build/host/tools/ferry-stream"))
TIMEOUT = 20  # seconds any one child may run
PAGE = 4096

# docs/stream-format.md, version 2
HELLO_LEN, ACK_LEN = 80, 112                  # bodies; both always carry a CRC trailer
HELLO_REC, ACK_REC = 8 + HELLO_LEN + 8, 8 + ACK_LEN + 8
T_HELLO, T_HELLO_ACK, T_END, T_COMMIT, T_NACK, T_ERROR, T_CANCEL = 0x01, 0x02, 0x09, 0x0A, 0x0B, 0x0C, 0x0D
T_READY, T_GO = 0x0F, 0x10
CAP_CRC32C, CAP_VERIFY_AFTER = 1 << 0, 1 << 4

pytestmark = pytest.mark.skipif(not TOOL.exists(), reason=f"{TOOL} not built (make host)")


def run(*args, timeout=TIMEOUT):
    return subprocess.run([str(TOOL), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def gen(path, *extra, pages=48):
    r = run("gen", "-o", path, "--pages", pages, *extra)
    assert r.returncode == 0, r.stderr
    return path


class Recv:
    """A `recv --listen 127.0.0.1:0` child; .port once it listens."""

    def __init__(self, out, *extra):
        self.proc = subprocess.Popen(
            [str(TOOL), "recv", "--listen", "127.0.0.1:0", "-o", str(out), "--timeout", "10",
             *map(str, extra)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        assert ready, "recv did not start listening within 10 s"
        line = self.proc.stdout.readline().strip()
        assert line.startswith("listening on 127.0.0.1:"), line
        self.port = int(line.rsplit(":", 1)[1])

    def wait(self):
        try:
            out, err = self.proc.communicate(timeout=TIMEOUT)
        finally:
            self.kill()
        return self.proc.returncode, out, err

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def recv_procs():
    procs = []
    yield procs
    for p in procs:
        p.kill()


def start_recv(procs, out, *extra):
    r = Recv(out, *extra)
    procs.append(r)
    return r


# ---- command line -----------------------------------------------------------

@pytest.mark.parametrize("args,code,stream,text", [
    (["--help"], 0, "stdout", "usage: ferry-stream COMMAND"),
    (["dump", "--help"], 0, "stdout", "recv --listen ADDR:PORT"),
    ([], 2, "stderr", "usage:"),
    (["frob"], 2, "stderr", "unknown command 'frob'"),
    (["dump"], 2, "stderr", "dump: wrong arguments"),
    (["extract", "x.fst"], 2, "stderr", "extract: wrong arguments"),
    (["gen", "-o"], 2, "stderr", "-o needs a value"),
    (["gen", "-o", "x", "--pages", "ten"], 2, "stderr", "--pages: 'ten' is not a number"),
    (["send", "x.fst", "nowhere"], 2, "stderr", "bad address 'nowhere'"),
    (["recv", "--listen", "300.1.1.1:5", "-o", "x"], 2, "stderr", "bad address"),
    (["verify", "/nonexistent.fst"], 1, "stderr", "No such file"),
])
def test_command_line(args, code, stream, text):
    r = run(*args)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert text in getattr(r, stream)


# ---- files ------------------------------------------------------------------

def test_dump_verify_extract(tmp_path):
    f = gen(tmp_path / "s.fst", "--iterations", "3")
    d = run("dump", f)
    assert d.returncode == 0, d.stderr
    lines = d.stdout.splitlines()
    assert lines[0].startswith("#0 ") and " HELLO " in lines[0]
    assert " HELLO_ACK " in lines[1] and "status accepted" in lines[1]
    assert any(" XBZRLE_PAGES " in l for l in lines)
    assert sum(l.startswith("#") and " ITER_END " in l for l in lines) == 4
    assert " END " in lines[-3]
    assert lines[-2].startswith("totals: records ")
    assert "iterations 4" in lines[-2]
    assert lines[-1].startswith("bytes by type: HELLO ")

    v = run("verify", f)
    assert v.returncode == 0, v.stderr
    assert "OK:" in v.stdout and "matches" in v.stdout

    x = run("extract", f, "-o", tmp_path / "mem.raw")
    assert x.returncode == 0, x.stderr
    assert (tmp_path / "mem.raw").stat().st_size == 48 * PAGE


def test_verify_rejects_bad_digest(tmp_path):
    f = gen(tmp_path / "bad.fst", "--bad-digest")
    v = run("verify", f)
    assert v.returncode == 1
    assert "(DIGEST): memory digest" in v.stderr
    x = run("extract", f, "-o", tmp_path / "mem.raw")
    assert x.returncode == 1
    assert not (tmp_path / "mem.raw").exists()


@pytest.mark.parametrize("crc", [True, False])
def test_verify_rejects_corruption(tmp_path, crc):
    f = gen(tmp_path / "s.fst", *([] if crc else ["--no-crc"]))
    data = bytearray(f.read_bytes())
    # A byte inside the last PAGE_DATA record's first page (no later pass
    # overwrites it): the CRC, or else the digest, must catch it.
    last = [l.split() for l in run("dump", f).stdout.splitlines() 
            if l.startswith("#") and " PAGE_DATA " in l][-1]
    offset, count = int(last[1][1:]), int(last[6])
    data[offset + 8 + 8 + 8 * count + 100] ^= 0x40
    bad = tmp_path / "flipped.fst"
    bad.write_bytes(data)
    v = run("verify", bad)
    assert v.returncode == 1
    assert ("CRC32C" if crc else "memory digest") in v.stderr

    for cut in (10, 32, 200, len(data) // 2, len(data) - 1):
        short = tmp_path / f"cut{cut}.fst"
        short.write_bytes(f.read_bytes()[:cut])
        v = run("verify", short)
        assert v.returncode == 1, cut
        assert "stream ends" in v.stderr, (cut, v.stderr)


# ---- recv and send over loopback ----------------------------------------------

@pytest.mark.parametrize("gen_args,recv_args,identical", [
    ([], [], True),
    (["--no-xbzrle"], [], True),
    (["--no-crc"], [], True),
    ([], ["--no-crc"], False),       # peer declines CRC: send re-encodes
])
def test_send_recv_round_trip(tmp_path, recv_procs, gen_args, recv_args, identical):
    src = gen(tmp_path / "src.fst", *gen_args, "--seed", "5")
    dst = tmp_path / "saved.fst"
    rv = start_recv(recv_procs, dst, *recv_args)
    s = run("send", src, f"127.0.0.1:{rv.port}")
    code, out, err = rv.wait()
    assert s.returncode == 0, s.stderr
    assert "COMMIT" in s.stdout
    assert code == 0, err
    assert "COMMIT" in out and str(dst) in out
    assert (dst.read_bytes() == src.read_bytes()) == identical
    assert run("verify", dst).returncode == 0
    run("extract", src, "-o", tmp_path / "a.raw")
    run("extract", dst, "-o", tmp_path / "b.raw")
    assert (tmp_path / "a.raw").read_bytes() == (tmp_path / "b.raw").read_bytes()


def test_recv_nacks_wrong_memory(tmp_path, recv_procs):
    src = gen(tmp_path / "bad.fst", "--bad-digest")
    dst = tmp_path / "saved.fst"
    rv = start_recv(recv_procs, dst)
    s = run("send", src, f"127.0.0.1:{rv.port}")
    code, out, err = rv.wait()
    assert s.returncode == 1
    assert "peer answered NACK" in s.stderr and "(DIGEST): memory digest" in s.stderr
    assert code == 1 and re.search(r"recv: NACK: record \d+ \(DIGEST\): memory digest [0-9a-f]+, stream says", err), err
    assert not dst.exists()
    assert not Path(str(dst) + ".part").exists()


def test_recv_refuses_too_large_guest(tmp_path, recv_procs):
    src = gen(tmp_path / "s.fst", pages=64)
    dst = tmp_path / "saved.fst"
    rv = start_recv(recv_procs, dst, "--max-pages", "16")
    s = run("send", src, f"127.0.0.1:{rv.port}")
    code, _, err = rv.wait()
    assert s.returncode == 1
    assert "peer refused: guest does not fit: guest of 64 pages, limit 16" in s.stderr
    assert code == 1 and "recv: refused the migration: guest of 64 pages, limit 16" in err, err
    assert not dst.exists()


def test_recv_survives_peer_dying_mid_stream(tmp_path, recv_procs):
    """A source that sends its HELLO and a few pages, then vanishes."""
    start, rest, reply_len = live_hello(gen(tmp_path / "s.fst", "--no-crc").read_bytes())
    dst = tmp_path / "saved.fst"
    rv = start_recv(recv_procs, dst, "--no-crc")
    with socket.create_connection(("127.0.0.1", rv.port), timeout=10) as c:
        c.sendall(start)
        reply = recv_exactly(c, reply_len)
        assert reply[:8] == b"FERRYMIG"
        c.sendall(rest[:5000])                    # cut inside the first PAGE_DATA
    code, _, err = rv.wait()
    assert code == 1
    assert "stream ends" in err and "(PAGE_DATA)" in err
    assert not dst.exists()
    assert not Path(str(dst) + ".part").exists()


def test_recv_rejects_garbage(tmp_path, recv_procs):
    dst = tmp_path / "saved.fst"
    rv = start_recv(recv_procs, dst)
    with socket.create_connection(("127.0.0.1", rv.port), timeout=10) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\0" * 8)
        time.sleep(0.2)
    code, _, err = rv.wait()
    assert code == 1
    assert "header: bad magic" in err
    assert not dst.exists()


def test_recv_times_out_without_peer(tmp_path):
    r = subprocess.run([str(TOOL), "recv", "--listen", "127.0.0.1:0", "-o", str(tmp_path / "x"),
                        "--timeout", "1"], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 1
    assert "no connection within 1 s" in r.stderr


def test_send_to_nobody(tmp_path):
    src = gen(tmp_path / "s.fst")
    with socket.socket() as s:                     # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = run("send", src, f"127.0.0.1:{port}")
    assert r.returncode == 1
    assert "connect 127.0.0.1:" in r.stderr


def live_hello(src):
    """The stream header (live, not saved), HELLO, and the records after the
    saved HELLO_ACK (GUEST_INFO .. END) of a saved --no-crc stream; and the
    length of recv's reply up to its HELLO_ACK."""
    hdr = bytearray(src[:32])
    struct.pack_into("<I", hdr, 24, 0)
    return bytes(hdr) + src[32:32 + HELLO_REC], src[32 + HELLO_REC + ACK_REC:], 32 + ACK_REC


def mig_id(start):
    """The migration id of the HELLO in live_hello()'s start."""
    return struct.unpack_from("<Q", start, 32 + 8 + 72)[0]


def ctl(rtype, mid):
    """END, READY, GO, COMMIT, VERIFIED or CANCEL of migration mid, no CRC."""
    return record(rtype, struct.pack("<Q", mid))


def reason(rtype, code, mid, text):
    """NACK or ERROR, no CRC."""
    return record(rtype, struct.pack("<IIQ", code, 0, mid) + text.encode())


def recv_exactly(c, n):
    data = b""
    while len(data) < n:
        chunk = c.recv(n - len(data))
        assert chunk, f"peer closed after {len(data)} of {n} bytes"
        data += chunk
    return data


def read_record(c):
    """(type, body) of the next record from c, without CRC trailers."""
    rtype, length = struct.unpack("<II", recv_exactly(c, 8))
    body = recv_exactly(c, length + (-length % 8))[:length]
    if rtype in (T_HELLO, T_HELLO_ACK):
        recv_exactly(c, 8)
    return rtype, body


def read_until_closed(c, timeout=TIMEOUT):
    c.settimeout(timeout)
    data = b""
    while chunk := c.recv(65536):
        data += chunk
    return data


@pytest.mark.parametrize("stop_after,code,text", [
    (0, 3, "recv: no data for 1 s"),               # quiet after HELLO: a timeout
    (5000, 3, "recv: no data for 1 s"),            # quiet inside a PAGE_DATA
])
def test_recv_tells_a_quiet_source_it_timed_out(tmp_path, recv_procs, stop_after, code, text):
    """The ERROR recv sends says why it gave up: code 3 (timeout) and the
    message, not code 1 (protocol error) with no text."""
    start, rest, reply_len = live_hello(gen(tmp_path / "s.fst", "--no-crc").read_bytes())
    dst = tmp_path / "saved.fst"
    rv = start_recv(recv_procs, dst, "--no-crc", "--timeout", "1")
    with socket.create_connection(("127.0.0.1", rv.port), timeout=10) as c:
        c.sendall(start + rest[:stop_after])
        reply = read_until_closed(c)
    code_, _, err = rv.wait()
    assert code_ == 1
    assert text in err
    assert reply[:8] == b"FERRYMIG" and len(reply) > reply_len, reply
    rtype, rlen = struct.unpack_from("<II", reply, reply_len)
    assert rtype == T_ERROR, f"expected ERROR (0xc), got {rtype:#x}"
    wcode, _, wid = struct.unpack_from("<IIQ", reply, reply_len + 8)
    wtext = reply[reply_len + 24:reply_len + 8 + rlen].decode()
    assert wid == mig_id(start)
    assert (wcode, wtext) == (code, text.removeprefix("recv: ")), (wcode, wtext)
    assert not dst.exists()


def long_path(base, length):
    """A path of exactly `length` characters under base (directories made)."""
    d = str(base)
    while length - len(d) > 250:
        d = os.path.join(d, "d" * 200)
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, "")
    return p + "f" * (length - len(p))


@pytest.mark.parametrize("cmd", ["gen", "extract", "recv"])
def test_output_path_too_long_for_part_file(tmp_path, cmd):
    """FILE.part would not fit in the tool's name buffer: refuse, and never
    write (then rename away) a neighbour whose name is a prefix of it."""
    out = long_path(tmp_path, 4092)
    neighbour = Path(out + ".pa")                  # what a 4095-byte cut leaves
    neighbour.write_text("precious")
    args = {"gen": lambda: ["gen", "-o", out],
            "extract": lambda: ["extract", gen(tmp_path / "s.fst"), "-o", out],
            "recv": lambda: ["recv", "--listen", "127.0.0.1:0", "-o", out, "--timeout", "1"],
            }[cmd]()
    r = run(*args)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "File name too long" in r.stderr, r.stderr
    assert "listening" not in r.stdout             # recv checks before it listens
    assert neighbour.read_text() == "precious"
    assert not Path(out).exists()


def test_send_times_out_on_a_peer_that_stops_reading(tmp_path):
    """A peer that accepts the HELLO, then reads nothing: send must give up
    after --timeout with the reason, not block in a write for ever."""
    src = gen(tmp_path / "big.fst", "--iterations", "0", pages=8192).read_bytes()
    start, _, reply_len = live_hello(src)
    ack = src[len(start):len(start) + reply_len - 32]     # the saved HELLO_ACK
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        p = subprocess.Popen([str(TOOL), "send", str(tmp_path / "big.fst"),
                              f"127.0.0.1:{ls.getsockname()[1]}", "--timeout", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            ls.settimeout(10)
            c, _ = ls.accept()
            with c:
                c.settimeout(10)
                got = b""
                while len(got) < len(start):
                    chunk = c.recv(len(start) - len(got))
                    assert chunk, "send closed before its HELLO"
                    got += chunk
                c.sendall(start[:32] + ack)           # accept, then stop reading
                t0 = time.monotonic()
                out, err = p.communicate(timeout=TIMEOUT)
                elapsed = time.monotonic() - t0
        finally:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
    assert p.returncode == 1, (out, err)
    assert "no room to send for 1 s" in err, err
    assert elapsed < 10, elapsed


def test_recv_tells_the_source_when_it_cannot_save(tmp_path, recv_procs):
    """recv's OUT.part is a full disk (a symlink to /dev/full): recv says
    why, and answers the source with an ERROR instead of hanging up."""
    start, rest, reply_len = live_hello(gen(tmp_path / "s.fst", "--no-crc").read_bytes())
    guest_info = rest[:8 + 88]
    dst = tmp_path / "saved.fst"
    Path(str(dst) + ".part").symlink_to("/dev/full")
    rv = start_recv(recv_procs, dst, "--no-crc")
    with socket.create_connection(("127.0.0.1", rv.port), timeout=10) as c:
        c.sendall(start)
        got = recv_exactly(c, reply_len)
        c.sendall(guest_info)
        reply = got + read_until_closed(c)
    code, _, err = rv.wait()
    assert code == 1
    assert ".part: write failed: No space left on device" in err, err
    assert len(reply) > reply_len, "no ERROR record after the HELLO_ACK"
    rtype, rlen = struct.unpack_from("<II", reply, reply_len)
    wcode, = struct.unpack_from("<I", reply, reply_len + 8)
    wtext = reply[reply_len + 24:reply_len + 8 + rlen].decode()
    assert (rtype, wcode, wtext) == (T_ERROR, 4, "cannot save the stream: No space left on device")
    assert not dst.exists()


def test_gen_says_why_it_cannot_write(tmp_path):
    out = tmp_path / "g.fst"
    Path(str(out) + ".part").symlink_to("/dev/full")
    r = run("gen", "-o", out)
    assert r.returncode == 1
    assert r.stderr.endswith(": output callback failed: No space left on device\n"), r.stderr
    assert not out.exists()


def test_send_connect_times_out(tmp_path):
    """A listener whose accept queue is full drops SYNs: connect() would
    retry for minutes; send must stop after --timeout."""
    src = gen(tmp_path / "s.fst")
    with socket.socket() as ls, socket.socket() as first:
        ls.bind(("127.0.0.1", 0))
        ls.listen(0)
        port = ls.getsockname()[1]
        first.connect(("127.0.0.1", port))           # fills the queue; never accepted
        t0 = time.monotonic()
        r = run("send", src, f"127.0.0.1:{port}", "--timeout", "1")
        elapsed = time.monotonic() - t0
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert f"connect 127.0.0.1:{port}: Connection timed out" in r.stderr, r.stderr
    assert elapsed < 10, elapsed


# ---- the switch-over: END, READY, GO, COMMIT (docs/stream-format.md 7.5) ------

def test_recv_switch_over_by_hand(tmp_path, recv_procs):
    """A source written by hand that offers verification after the
    switch-over: recv declines it (the file keeps the DIGEST it checked),
    echoes the migration id, says READY after END with FILE.part on disk,
    and only on GO renames it into place (without the GO) and says COMMIT."""
    src = gen(tmp_path / "s.fst", "--no-crc").read_bytes()
    start, rest, reply_len = live_hello(src)
    mid = mig_id(start)
    hello = bytearray(start[32 + 8:32 + 8 + HELLO_LEN])
    caps, = struct.unpack_from("<Q", hello, 16)
    struct.pack_into("<Q", hello, 16, caps | CAP_VERIFY_AFTER)
    hello_rec = record(T_HELLO, bytes(hello))
    dst = tmp_path / "saved.fst"
    rv = start_recv(recv_procs, dst, "--no-crc")
    with socket.create_connection(("127.0.0.1", rv.port), timeout=10) as c:
        c.sendall(start[:32] + hello_rec)
        assert recv_exactly(c, 32)[:8] == b"FERRYMIG"
        rtype, ack = read_record(c)
        assert rtype == T_HELLO_ACK
        status, _, _, acaps = struct.unpack_from("<IIQQ", ack)
        assert status == 0 and not acaps & (CAP_VERIFY_AFTER | CAP_CRC32C), hex(acaps)
        assert struct.unpack_from("<Q", ack, 104)[0] == mid
        c.sendall(rest)                            # GUEST_INFO .. DIGEST, END
        assert read_record(c) == (T_READY, struct.pack("<Q", mid))
        assert Path(str(dst) + ".part").exists() and not dst.exists()
        c.sendall(ctl(T_GO, mid))
        assert read_record(c) == (T_COMMIT, struct.pack("<Q", mid))
        assert read_until_closed(c) == b""         # COMMIT is the last word
    code, out, err = rv.wait()
    assert code == 0, err
    assert f"saved to {dst}" in out
    # The source's file with the HELLO it sent; it ends at END, no GO.
    assert dst.read_bytes() == src[:32] + hello_rec + src[32 + HELLO_REC:]
    assert run("verify", dst).returncode == 0


@pytest.mark.parametrize("instead", ["cancel", "error", "close", "silence"])
def test_recv_without_go_deletes_its_partial_file(tmp_path, recv_procs, instead):
    """After READY the source sends CANCEL (or ERROR, or hangs up, or says
    nothing) instead of GO: recv keeps no file, not even FILE.part, and
    fails saying why."""
    start, rest, reply_len = live_hello(gen(tmp_path / "s.fst", "--no-crc").read_bytes())
    mid = mig_id(start)
    dst = tmp_path / "saved.fst"
    part = Path(str(dst) + ".part")
    rv = start_recv(recv_procs, dst, "--no-crc", "--timeout", "1" if instead == "silence" else "10")
    with socket.create_connection(("127.0.0.1", rv.port), timeout=10) as c:
        c.sendall(start + rest)
        recv_exactly(c, reply_len)
        assert read_record(c) == (T_READY, struct.pack("<Q", mid))
        assert part.exists()                       # written, waiting for GO
        if instead == "cancel":
            c.sendall(ctl(T_CANCEL, mid))
        elif instead == "error":
            c.sendall(reason(T_ERROR, 5, mid, "operator said no"))
        elif instead == "close":
            c.shutdown(socket.SHUT_WR)
        after = read_until_closed(c)
    code, out, err = rv.wait()
    assert code == 1, (out, err)
    assert "COMMIT" not in out
    assert {
        "cancel": f"recv: the source sent CANCEL instead of GO: {dst} not saved",
        "error": f"recv: the source sent ERROR 5 (stopped by operator) instead of GO: operator said no: "
                 f"{dst} not saved",
        "close": f"recv: no GO after READY: {dst} not saved",
        "silence": f"recv: no GO after READY: {dst} not saved",
    }[instead] in err, err
    if instead in ("close", "silence"):            # recv tells the source why it gave up
        cause = "(END) without a final record" if instead == "close" else "recv: no data for 1 s"
        assert cause in err, err
        rtype, rlen, wcode, _, wid = struct.unpack_from("<IIIIQ", after)
        assert (rtype, wcode, wid) == (T_ERROR, 1 if instead == "close" else 3, mid), after
    else:
        assert after == b"", after
    assert not dst.exists()
    assert not part.exists()


def fake_destination(ls, behaviour, seen):
    """Play a destination for one `send` on listener ls, by hand: accept
    without CRC, read to END, then answer as behaviour says. What came is
    left in seen."""
    c, _ = ls.accept()
    with c:
        c.settimeout(10)
        recv_exactly(c, 32)
        _, hello = read_record(c)
        seen["hello"] = hello
        codecs, pages, caps, cache = struct.unpack_from("<IQQQ", hello, 4)
        mid, = struct.unpack_from("<Q", hello, 72)
        ack = struct.pack("<IIQQQII64sQ", 0, codecs, pages, caps & ~CAP_CRC32C, cache, 1, PAGE, b"",
                          mid ^ 1 if behaviour == "ack-wrong-id" else mid)
        c.sendall(header() + record(T_HELLO_ACK, ack))
        if behaviour != "ack-wrong-id":
            seen["types"] = []
            while not seen["types"] or seen["types"][-1] != T_END:
                seen["types"].append(read_record(c)[0])
            if behaviour == "commit-without-ready":
                c.sendall(ctl(T_COMMIT, mid))
            else:
                c.sendall(ctl(T_READY, mid))
                seen["go"] = read_record(c)
                c.sendall(reason(T_NACK, 5, mid, "no CPU here") if behaviour == "nack-after-go"
                          else ctl(T_COMMIT, mid))
        seen["after"] = read_until_closed(c)


@pytest.mark.parametrize("behaviour,code,text", [
    ("commit", 0, None),
    ("nack-after-go", 1, "send: peer answered NACK 5 (guest could not start): no CPU here (waiting for COMMIT)"),
    ("commit-without-ready", 1, "peer: record 1 (COMMIT): COMMIT before READY"),
    ("ack-wrong-id", 1, "send: peer's HELLO_ACK carries migration id"),
])
def test_send_switch_over(tmp_path, behaviour, code, text):
    """send against a destination written by hand: it offers no
    verification after the switch-over (its file has the DIGEST) even when
    the saved HELLO did, waits for READY after the file's END, sends GO with
    the migration id, and succeeds only on COMMIT."""
    src = bytearray(gen(tmp_path / "s.fst").read_bytes())
    hello = bytearray(src[32 + 8:32 + 8 + HELLO_LEN])
    caps, = struct.unpack_from("<Q", hello, 16)
    struct.pack_into("<Q", hello, 16, caps | CAP_VERIFY_AFTER)     # offered, never agreed
    src[32:32 + HELLO_REC] = record(T_HELLO, bytes(hello))
    f = tmp_path / "offers-verify-after.fst"
    f.write_bytes(src)
    assert run("verify", f).returncode == 0
    mid, = struct.unpack_from("<Q", hello, 72)
    seen = {}
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        ls.settimeout(10)
        p = subprocess.Popen([str(TOOL), "send", str(f), f"127.0.0.1:{ls.getsockname()[1]}", "--timeout", "5"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            fake_destination(ls, behaviour, seen)
            out, err = p.communicate(timeout=TIMEOUT)
        finally:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
    assert p.returncode == code, (out, err)
    sent_caps, = struct.unpack_from("<Q", seen["hello"], 16)
    assert not sent_caps & CAP_VERIFY_AFTER
    assert struct.unpack_from("<Q", seen["hello"], 72)[0] == mid
    if behaviour == "ack-wrong-id":
        rtype, _, wcode = struct.unpack_from("<III", seen["after"])
        assert (rtype, wcode) == (T_ERROR, 1)      # send says why it stops
    else:
        assert seen["types"][-2:] == [0x08, T_END]  # DIGEST, END: the file's
    if behaviour == "commit-without-ready":
        assert seen["after"] == b""                # no GO without READY
    if behaviour in ("commit", "nack-after-go"):
        assert seen["go"] == (T_GO, struct.pack("<Q", mid))
    if code == 0:
        assert "COMMIT" in out
        assert seen["after"] == b""
    else:
        assert text in err, err


def split_records(data, crc):
    """(type, body) of each record in data, trailers skipped (HELLO and
    HELLO_ACK always have one)."""
    pos, out = 0, []
    while pos < len(data):
        rtype, length = struct.unpack_from("<II", data, pos)
        out.append((rtype, data[pos + 8:pos + 8 + length]))
        pos += 8 + length + (-length % 8) + (8 if crc or rtype in (T_HELLO, T_HELLO_ACK) else 0)
    return out


@pytest.mark.parametrize("crc", [True, False])
@pytest.mark.parametrize("verify_after", [False, True])
def test_dump_live_and_reply_streams(tmp_path, crc, verify_after):
    """dump reads a captured live stream (as its HELLO offered, CRC
    trailers as found) and a reply stream, and prints the migration id of
    control records and the regions of REGION_DIGEST."""
    src = gen(tmp_path / "s.fst", *([] if crc else ["--no-crc"])).read_bytes()
    start, rest, _ = live_hello(src)
    mid = mig_id(start)
    hello = bytearray(start[32 + 8:32 + 8 + HELLO_LEN])
    if verify_after:
        caps, = struct.unpack_from("<Q", hello, 16)
        struct.pack_into("<Q", hello, 16, caps | CAP_VERIFY_AFTER)
    live = start[:32] + record(T_HELLO, bytes(hello))
    for rtype, body in split_records(rest, crc):
        if not (verify_after and rtype == 0x08):   # DIGEST: replaced by REGION_DIGEST
            live += record(rtype, body, crc)
    live += record(T_GO, struct.pack("<Q", mid), crc)
    if verify_after:
        live += record(0x12, struct.pack("<IIQII", 1, 512, 0, 1, 0) + b"\x11" * 16, crc)
    f = tmp_path / "live.fst"
    f.write_bytes(live)
    d = run("dump", f)
    assert d.returncode == 0, d.stderr
    lines = d.stdout.splitlines()
    assert lines[0].startswith("live migration stream: the HELLO's offer taken as agreed, caps ")
    assert ("crc32c" in lines[0]) == crc and ("verify-after" in lines[0]) == verify_after, lines[0]
    recs = [l for l in lines if l.startswith("#")]
    assert f"mig_id {mid:016x}" in recs[0] and " HELLO " in recs[0]
    end = -3 if verify_after else -2
    assert " END " in recs[end] and recs[end].endswith(f"mig_id {mid:016x}")
    assert " GO " in recs[end + 1] and recs[end + 1].endswith(f"mig_id {mid:016x}")
    if verify_after:
        assert " REGION_DIGEST " in recs[-1] and "first 0 count 1 (regions 0..0)" in recs[-1]

    reply = header() + record(T_HELLO_ACK, struct.pack("<IIQQQII64sQ", 0, 7, 48, CAP_CRC32C, 0, 1, PAGE,
                                                              b"", mid))
    reply += record(T_READY, struct.pack("<Q", mid), True) + record(T_COMMIT, struct.pack("<Q", mid), True)
    f = tmp_path / "reply.fst"
    f.write_bytes(reply)
    d = run("dump", f)
    assert d.returncode == 0, d.stderr
    lines = d.stdout.splitlines()
    assert lines[0] == "reply stream"
    assert " READY " in lines[2] and lines[2].endswith(f"mig_id {mid:016x}")
    assert " COMMIT " in lines[3] and lines[3].endswith(f"mig_id {mid:016x}")
