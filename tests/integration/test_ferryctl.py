"""tools/ferryctl against two ferry instances whose consoles are QEMU
chardev sockets: caps, a whole migration with its progress, report and
plot (the report must agree with `info migrate` on both ends), watch, and
each failure's message and exit status."""
import json
import os
import re
import struct
import subprocess

import pytest

from ferrylib import BUILD, start_linked_pair

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FERRYCTL = os.path.join(ROOT, "tools", "ferryctl")
IP_A, IP_B, PORT = "10.0.8.1", "10.0.8.2", 4448


def ctl(*args, timeout=300):
    r = subprocess.run([FERRYCTL, *args], capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def info(inst):
    text = inst.cmd("info migrate")
    fields = dict(re.findall(r"^([A-Za-z][a-z -]*?): (.*)$", text, re.M))
    return text, fields


def test_ferryctl_migrates_and_reports(qemu, tmp_path):
    a, b, _ = start_linked_pair(qemu, "virtio-net-pci", console_socket=True)
    assert "net:" in a.cmd(f"net config {IP_A}/24")
    assert "running" in a.cmd("guest start stamp 32M")
    a.release_console()
    b.release_console()
    A, B = "unix:" + a.console_path, "unix:" + b.console_path

    # failures first, each with its message and status
    rc, out, err = ctl("caps", "unix:/nonexistent/socket", B)
    assert rc == 2 and "cannot reach the console" in err, (rc, out, err)
    rc, out, err = ctl("migrate", A, B, "--port", str(PORT))
    assert rc == 3 and "the destination has no address" in err, (rc, out, err)
    rc, out, err = ctl("watch", A)
    assert rc == 3 and "no migration here" in err, (rc, out, err)
    rc, out, err = ctl("migrate", A, B, "--max-bandwidth", "8X")
    assert rc == 1 and "bytes a second" in err, (rc, out, err)
    b.attach_console()
    assert "net:" in b.cmd(f"net config {IP_B}/24")
    b.release_console()

    rc, out, err = ctl("caps", A, B)
    assert rc == 0, err
    rows = {l.split()[0]: l.split()[1:] for l in out.splitlines()[1:]}
    assert rows["xbzrle"] == ["auto", "auto", "auto"], out
    assert rows["verify-after"] == ["on", "on", "on"], out

    report, png = tmp_path / "r.json", tmp_path / "p.png"
    rc, out, err = ctl("migrate", A, B, "--port", str(PORT), "--xbzrle", "auto", "--downtime-limit", "300",
                       "--report", str(report), "--plot", str(png))
    assert rc == 0, (out, err)
    # the progress lines (not a terminal: one per change) never run backwards
    pct = [int(m) for m in re.findall(r"^\[[#.]+\]\s+(\d+)%", out, re.M)]
    assert pct and pct == sorted(pct) and pct[-1] == 100, out
    assert re.search(r"^migration completed: \d+ ms total, downtime \d+ ms \(limit 300 ms\)", out, re.M), out

    r = json.loads(report.read_text())
    src, dst = r["source"]["query-migrate"], r["destination"]["query-migrate"]
    assert src["status"] == dst["status"] == "completed"
    statuses = [e["data"]["status"] for e in r["source"]["events"] if e["event"] == "MIGRATION"]
    assert statuses[-1] == "completed" and "active" in statuses, statuses

    # the report agrees with `info migrate` on both ends
    a.attach_console()
    b.attach_console()
    ta, fa = info(a)
    tb, fb = info(b)
    assert "completed" in fa["Migration status"], ta
    assert f"{src['downtime']} ms" in fa["downtime"], (src["downtime"], ta)
    assert fa["transferred ram"].startswith(f"{src['ram']['transferred'] >> 10} kbytes"), (src["ram"], ta)
    assert "completed" in fb["Migration status"], tb
    assert f"{dst['ram']['x-pages-applied']}" in tb, (dst["ram"], tb)

    # the plot: a PNG of the figure's size (8 x 6 inches at 100 dpi)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (800, 600)
    assert len(data) > 10000


def test_console_nobody_reads_does_not_stall(qemu):
    """A console client that stops reading (QEMU's socket chardev then
    holds the UART) costs output, not the appliance: the guest keeps
    running and ferry says how many bytes it dropped."""
    import socket
    import time
    inst = qemu(name="mute", console_socket=True)
    inst.wait_ready()
    assert "running" in inst.cmd("guest start stamp 8M")
    passes0 = int(re.search(r"counters: passes (\d+)", inst.cmd("info guest")).group(1))
    inst.release_console()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(inst.console_path)
    for _ in range(40):
        s.sendall(b"help\r")  # some 100 KB of answers, none read
    time.sleep(4)
    s.close()
    inst.attach_console()
    out = inst.cmd("info uptime")
    dropped = int(re.search(r"console output: (\d+) bytes dropped", out).group(1))
    passes1 = int(re.search(r"counters: passes (\d+)", inst.cmd("info guest")).group(1))
    assert dropped > 0, out
    assert passes1 > passes0 + 20, (passes0, passes1)
