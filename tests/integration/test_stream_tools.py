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

ROOT = Path(__file__).resolve().parents[2]
TOOL = Path(os.environ.get("FERRY_STREAM", ROOT / "build/host/tools/ferry-stream"))
TIMEOUT = 20  # seconds any one child may run
PAGE = 4096

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
    src = gen(tmp_path / "s.fst", "--no-crc").read_bytes()
    hdr = bytearray(src[:32])
    struct.pack_into("<I", hdr, 24, 0)            # live stream, not a saved file
    hello_len = 8 + 72 + 8                        # HELLO always has a CRC trailer
    hello = src[32:32 + hello_len]
    ack_len = 8 + 104 + 8
    rest = src[32 + hello_len + ack_len:]         # GUEST_INFO, PAGE_DATA, ...
    dst = tmp_path / "saved.fst"
    rv = start_recv(recv_procs, dst, "--no-crc")
    with socket.create_connection(("127.0.0.1", rv.port), timeout=10) as c:
        c.sendall(bytes(hdr) + hello)
        reply = b""
        while len(reply) < 32 + ack_len:
            chunk = c.recv(32 + ack_len - len(reply))
            assert chunk, "recv closed before its HELLO_ACK"
            reply += chunk
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
    saved HELLO_ACK of a saved --no-crc stream."""
    hdr = bytearray(src[:32])
    struct.pack_into("<I", hdr, 24, 0)
    hello_len = 8 + 72 + 8                        # HELLO always has a CRC trailer
    ack_len = 8 + 104 + 8
    return bytes(hdr) + src[32:32 + hello_len], src[32 + hello_len + ack_len:], 32 + ack_len


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
    assert rtype == 0x0c, f"expected ERROR (0xc), got {rtype:#x}"
    wcode, = struct.unpack_from("<I", reply, reply_len + 8)
    wtext = reply[reply_len + 16:reply_len + 8 + rlen].decode()
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
        got = b""
        while len(got) < reply_len:
            chunk = c.recv(reply_len - len(got))
            assert chunk, "recv closed before its HELLO_ACK"
            got += chunk
        c.sendall(guest_info)
        reply = got + read_until_closed(c)
    code, _, err = rv.wait()
    assert code == 1
    assert ".part: write failed: No space left on device" in err, err
    assert len(reply) > reply_len, "no ERROR record after the HELLO_ACK"
    rtype, rlen = struct.unpack_from("<II", reply, reply_len)
    wcode, = struct.unpack_from("<I", reply, reply_len + 8)
    wtext = reply[reply_len + 16:reply_len + 8 + rlen].decode()
    assert (rtype, wcode, wtext) == (0x0c, 4, "cannot save the stream: No space left on device")
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
