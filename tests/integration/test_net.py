"""Networking: PCI, virtio-net and e1000 under lwIP, between two ferry
instances on a loopback L2 link (QEMU TCG; never user-mode networking).

Per NIC model: ping both ways and move 64 MiB over TCP with the payload
checksum verified at the receiver (over a lossless `-netdev socket` link);
malformed frames injected into a `-netdev dgram` link must be counted and
dropped while the instance keeps answering pings. Plus the console's
answers to bad network commands, with and without a NIC.
"""
import json
import os
import re
import sys
import time

import pytest

from ferrylib import BUILD, ROOT, Qemu, parse_kv, start_bochs_qemu_pair, start_linked_pair

sys.path.insert(0, os.path.join(ROOT, "tools"))
import netinject  # noqa: E402

NICS = [("virtio-net-pci", "virtio-net", "1af4:1000"), ("e1000", "e1000", "8086:100e")]
TRANSFER_MIB = int(os.environ.get("FERRY_NET_MIB", "64"))
TRANSFER_TIMEOUT = 600  # s, a bound on a hung transfer, not what is measured
IP_A, IP_B = "10.0.0.1", "10.0.0.2"
NO_NIC = r"^error: no network interface \(no supported NIC found: virtio-net, e1000\)\n$"
NO_ADDR = r"^error: no address configured; use 'net config ADDR/PREFIX \[GATEWAY\]'\n$"

# (name, line, regex the whole output must match) on an instance without a
# NIC; they run in order and the instance must keep answering.
NO_NIC_CASES = [
    ("info net", "info net", NO_NIC),
    ("config", "net config 10.0.0.1/24", NO_NIC),
    ("ping", "ping 10.0.0.2", NO_NIC),
    ("bench listen", "net bench listen 5001", NO_NIC),
    ("bench raw", "net bench raw 10", NO_NIC),
    ("bench stop idle", "net bench stop", r"^bench: nothing running\n$"),
    ("config usage", "net config", r"^usage: net config ADDR/PREFIX \[GATEWAY\]\n$"),
    ("no prefix", "net config 10.0.0.1", r"^error: expected ADDR/PREFIX, got '10\.0\.0\.1'\n$"),
    ("octet too big", "net config 10.0.0.300/24", r"^error: bad address '10\.0\.0\.300'\n$"),
    ("three octets", "net config 10.0.1/24", r"^error: bad address '10\.0\.1'\n$"),
    ("address too long", "net config 10.0.0.1000000000000000000000000000001/24",
     r"^error: bad address '10\.0\.0\.1000000000000000000000000000001'\n$"),
    ("junk in address", "net config 10.0.0.1x/24", r"^error: bad address '10\.0\.0\.1x'\n$"),
    ("prefix too long", "net config 10.0.0.1/33", r"^error: bad prefix '33' \(0\.\.32\)\n$"),
    ("empty prefix", "net config 10.0.0.1/", r"^error: bad prefix '' \(0\.\.32\)\n$"),
    ("signed prefix", "net config 10.0.0.1/-8", r"^error: bad prefix '-8' \(0\.\.32\)\n$"),
    ("network address", "net config 10.0.0.0/24", r"^error: 10\.0\.0\.0 is the network address of 10\.0\.0\.0/24\n$"),
    ("broadcast address", "net config 10.0.0.255/24", r"^error: 10\.0\.0\.255 is the broadcast address of 10\.0\.0\.0/24\n$"),
    ("multicast", "net config 224.0.0.1/4", r"^error: 224\.0\.0\.1 is not a unicast host address\n$"),
    ("gateway elsewhere", "net config 10.0.0.1/24 10.0.1.1", r"^error: gateway 10\.0\.1\.1 is not another host of 10\.0\.0\.1/24\n$"),
    ("bad gateway", "net config 10.0.0.1/24 10.0.0", r"^error: bad gateway '10\.0\.0'\n$"),
    ("gateway is broadcast", "net config 10.0.0.1/24 10.0.0.255", r"^error: gateway 10\.0\.0\.255 is not another host of 10\.0\.0\.1/24\n$"),
    ("gateway is network", "net config 10.0.0.1/24 10.0.0.0", r"^error: gateway 10\.0\.0\.0 is not another host of 10\.0\.0\.1/24\n$"),
    ("gateway is us", "net config 10.0.0.1/24 10.0.0.1", r"^error: gateway 10\.0\.0\.1 is not another host of 10\.0\.0\.1/24\n$"),
    ("ping usage", "ping", r"^usage: ping ADDR \[COUNT\]\n$"),
    ("ping bad address", "ping 10.0.0.2.5", r"^error: bad address '10\.0\.0\.2\.5'\n$"),
    ("ping zero count", "ping 10.0.0.2 0", r"^error: bad count '0' \(1\.\.100\)\n$"),
    ("ping count too big", "ping 10.0.0.2 101", r"^error: bad count '101' \(1\.\.100\)\n$"),
    ("ping count junk", "ping 10.0.0.2 3x", r"^error: bad count '3x' \(1\.\.100\)\n$"),
    ("bench bad port", "net bench listen 70000", r"^error: bad port '70000' \(1\.\.65535\)\n$"),
    ("bench port zero", "net bench send 10.0.0.2 0 1", r"^error: bad port '0' \(1\.\.65535\)\n$"),
    ("bench bad size", "net bench send 10.0.0.2 5001 0", r"^error: bad size '0' \(1\.\.4096 MiB\)\n$"),
    ("bench huge size", "net bench send 10.0.0.2 5001 4097", r"^error: bad size '4097' \(1\.\.4096 MiB\)\n$"),
    ("bench send usage", "net bench send 10.0.0.2", r"^usage: net bench send ADDR PORT MIB\n$"),
    ("bench raw bad count", "net bench raw 0", r"^error: bad count '0' \(1\.\.1000000\)\n$"),
    ("pci lists the bridge", "info pci", r"^pci: \d+ functions \(ECAM\)\n00:00\.0 8086:29c0 class 06\.00\.00"),
    ("still answering", "info uptime", r"uptime: \d+\.\d+ s"),
]


@pytest.fixture(scope="module")
def no_nic(tmp_path_factory):
    inst = Qemu(tmp_path_factory.mktemp("nonic"), name="nonic")
    try:
        inst.wait_ready()
        yield inst
    finally:
        inst.close()


@pytest.mark.parametrize("name,line,want", NO_NIC_CASES, ids=[c[0] for c in NO_NIC_CASES])
def test_console_without_nic(no_nic, name, line, want):
    out = no_nic.cmd(line)
    assert re.search(want, out), f"{name}: sent {line!r}\nexpected /{want}/\ngot:\n{out}"


COUNTER_RES = {
    "rx_packets": r"rx: packets (\d+)", "rx_drop": r"rx: packets \d+ bytes \d+ drop (\d+)",
    "rx_errors": r"rx: packets \d+ bytes \d+ drop \d+ errors (\d+)",
    "tx_packets": r"tx: packets (\d+)", "tx_drop": r"tx: packets \d+ bytes \d+ drop (\d+)",
    "tx_errors": r"tx: packets \d+ bytes \d+ drop \d+ errors (\d+)",
    "tx_in_place": r"tx: packets .* sent in place (\d+)\)",
    "unknown_type": r"unknown ethertype (\d+)", "short_arp": r"short arp (\d+)",
    "no_pbuf": r"no pbuf (\d+)", "etharp_drop": r"ethernet/arp drop (\d+)",
    "ip_drop": r"ip drop (\d+)", "ip_chkerr": r"ip drop \d+ \(checksum (\d+)",
    "icmp_chkerr": r"icmp drop \d+ \(checksum (\d+)", "tcp_chkerr": r"tcp drop \d+ \(checksum (\d+)",
    "lro_segs": r"rx coalescing: (\d+) tcp segments", "lro_merges": r"rx coalescing: \d+ tcp segments merged into (\d+)",
    "irqs": r"interrupt: [^,]+, (\d+) taken",
}
# How each model's receive interrupt arrives (`info net`).
IRQ_KIND = {"virtio-net-pci": "msi-x", "e1000": "intx"}


def counters(inst):
    out = inst.cmd("info net")
    return {k: int(parse_kv(out, r).group(1)) for k, r in COUNTER_RES.items()}, out


def configure(a, b):
    for inst, ip in ((a, IP_A), (b, IP_B)):
        out = inst.cmd(f"net config {ip}/24")
        assert out == f"net: {ip}/24 gateway none\n", out


def ping_ok(src, dst_ip, count=3):
    out = src.cmd(f"ping {dst_ip} {count}", timeout=count * 2 + 30)
    m = parse_kv(out, rf"ping {re.escape(dst_ip)}: {count} sent, {count} received, 0% loss, "
                      r"rtt min/avg/max ([0-9.]+)/([0-9.]+)/([0-9.]+) ms")
    assert len(re.findall(r"reply from .*: seq=\d+ time=[0-9.]+ ms", out)) == count, out
    return [float(x) for x in m.groups()]


def record(name, data):
    """Keep measured figures for the report (build/net-results.json)."""
    path = os.path.join(BUILD, "net-results.json")
    try:
        with open(path) as f:
            allr = json.load(f)
    except (OSError, ValueError):
        allr = {}
    allr[name] = data
    with open(path, "w") as f:
        json.dump(allr, f, indent=1, sort_keys=True)


@pytest.mark.parametrize("model,driver,pciid", NICS, ids=[n[0] for n in NICS])
def test_ping_and_tcp_transfer(qemu, model, driver, pciid):
    a, b, _ = start_linked_pair(qemu, model, link="socket")
    assert re.search(rf"net: {driver} at 00:\d\d\.\d, MAC 52:54:00:fe:00:01, link up", a.console_text())
    assert re.search(rf"^\d\d:\d\d\.\d {pciid} class 02\.00\.00", a.cmd("info pci"), re.M)
    configure(a, b)
    rtt_ab = ping_ok(a, IP_B)
    rtt_ba = ping_ok(b, IP_A)

    assert b.cmd("net bench listen 5001") == "bench: listening on port 5001\n"
    t0 = time.monotonic()
    out = a.cmd(f"net bench send {IP_B} 5001 {TRANSFER_MIB}")
    assert out == f"bench: sending {TRANSFER_MIB} MiB to {IP_B}:5001\n", out
    # The console answers while the transfer runs (it is not a blocking loop).
    out = a.cmd("info net")
    assert re.search(r"ipv4: 10\.0\.0\.1/24", out), out
    size = TRANSFER_MIB << 20
    m = b.expect(r"bench recv: (\d+) bytes in ([0-9.]+) s, ([0-9.]+) MB/s, checksum (\w+) \(0x([0-9a-f]+)\)\r*\n",
                 timeout=TRANSFER_TIMEOUT)
    assert int(m.group(1)) == size and m.group(4) == "ok", m.group(0)
    recv_mbs, recv_sum = float(m.group(3)), m.group(5)
    m = a.expect(r"bench send: (\d+) bytes to [0-9.:]+ in ([0-9.]+) s, ([0-9.]+) MB/s, receiver checksum (\w+) \(0x([0-9a-f]+)\)\r*\n"
                 r"bench send: tcp cwnd \d+ KiB, ssthresh \d+ KiB, peer window \d+ KiB; writes stopped by [^\r\n]*\r*\n", timeout=60)
    wall = time.monotonic() - t0
    assert int(m.group(1)) == size and m.group(4) == "ok" and m.group(5) == recv_sum, m.group(0)
    send_mbs = float(m.group(3))
    ca, _ = counters(a)
    cb, _ = counters(b)
    assert ca["tx_drop"] == 0 and ca["tx_errors"] == 0 and cb["rx_errors"] == 0 and cb["rx_drop"] == 0, (ca, cb)
    # The receiver coalesced data segments (net/lro.h), and so sent far
    # fewer ACKs than lwIP's one per two segments.
    assert cb["lro_merges"] > 0 and cb["lro_segs"] > cb["lro_merges"], cb
    assert cb["tx_packets"] < cb["rx_packets"] // 4, cb
    # The sender's data segments went out from lwIP's own buffers, not
    # copied into the driver's: e1000 segments 64 KiB TCP packets itself
    # (nic_ops.tx_submit_tso), virtio-net reads each frame in place
    # (nic_ops.tx_submit). Either way the receiver took every byte above.
    out = a.cmd("info net")
    m = re.search(r"^tx segmentation offload: (\d+) tcp packets sent as (\d+) frames "
                  r"\(copied first (\d+), no memory (\d+)\)$", out, re.M)
    if model == "e1000":
        assert m, out
        tso, tso_frames, copied, no_mem = (int(g) for g in m.groups())
        assert tso >= 0.9 * size / 64240 and tso_frames >= 0.95 * size / 1460, out
        assert copied == 0 and no_mem == 0, out
        assert tso_frames <= ca["tx_packets"], out
    else:
        assert not m, out
        assert ca["tx_in_place"] >= 0.95 * size / 1460, ca
    # Halts between pings ended by the receive interrupt, where there is one.
    assert re.search(rf"interrupt: {re.escape(IRQ_KIND[model])}, ", cb_out := b.cmd("info net")), cb_out
    if IRQ_KIND[model] != "none (polled)":
        assert cb["irqs"] > 0 and ca["irqs"] > 0, (ca, cb)
    record(f"tcp-{model}", {"mib": TRANSFER_MIB, "send_MBps": send_mbs, "recv_MBps": recv_mbs,
                            "host_wall_s": round(wall, 3), "rtt_ab_ms": rtt_ab, "rtt_ba_ms": rtt_ba})


def test_virtio_without_indirect_descriptors(qemu):
    """A virtio-net device that offers no indirect descriptors: a frame in
    pieces (the bench's payload is sent without copying, so every data
    segment is lwIP's header pbuf plus the payload's) is copied into the
    driver's buffer instead of read in place, and still arrives whole."""
    a, b, _ = start_linked_pair(qemu, "virtio-net-pci,indirect_desc=off", link="socket")
    configure(a, b)
    assert b.cmd("net bench listen 5001") == "bench: listening on port 5001\n"
    # Two whole passes of the sender's 4 MiB payload ring and half of a
    # third: the checksum the sender works out ahead covers both kinds.
    mib = 10
    a.cmd(f"net bench send {IP_B} 5001 {mib}")
    m = b.expect(r"bench recv: (\d+) bytes in [0-9.]+ s, [0-9.]+ MB/s, checksum (\w+) \(0x[0-9a-f]+\)\r*\n",
                 timeout=TRANSFER_TIMEOUT)
    assert int(m.group(1)) == mib << 20 and m.group(2) == "ok", m.group(0)
    a.expect(r"bench send: \d+ bytes to \S+ in [0-9.]+ s, [0-9.]+ MB/s, receiver checksum ok", timeout=60)
    ca, out = counters(a)
    segments = (mib << 20) / 1460
    assert ca["tx_packets"] >= segments and ca["tx_drop"] == 0 and ca["tx_errors"] == 0, out
    assert ca["tx_in_place"] < 0.1 * segments, out


@pytest.mark.parametrize("model,driver,pciid", NICS, ids=[n[0] for n in NICS])
def test_malformed_frames_counted_and_dropped(qemu, model, driver, pciid):
    a, b, info = start_linked_pair(qemu, model, link="dgram")
    # Before an address is set, commands that need one say so.
    assert re.search(r"ipv4: not configured", a.cmd("info net"))
    for line in ("ping 10.0.0.2", "net bench listen 5001", "net bench send 10.0.0.2 5001 1"):
        out = a.cmd(line)
        assert re.search(NO_ADDR, out), f"sent {line!r}\nexpected /{NO_ADDR}/\ngot:\n{out}"
    configure(a, b)
    ping_ok(b, IP_A, 1)
    assert a.cmd("net bench listen 5001") == "bench: listening on port 5001\n"
    before, out0 = counters(a)
    fl = netinject.frames(bytes.fromhex(info["macs"][0].replace(":", "")), IP_A)
    netinject.send(info["ports"][0], fl)
    ping_ok(b, IP_A, 3)  # still answering, and the frames above were processed first
    ping_ok(a, IP_B, 3)
    after, out1 = counters(a)
    d = {k: after[k] - before[k] for k in after}
    why = f"before:\n{out0}\nafter:\n{out1}\ndelta: {d}"
    # Where each frame lands can differ by model (e1000 pads runts to 60
    # bytes, so they reach the stack); every check below holds for both.
    assert d["rx_errors"] >= 1, "oversize frame not counted as an rx error\n" + why
    assert d["unknown_type"] >= 1, "unknown ethertype not counted\n" + why
    assert d["short_arp"] + d["etharp_drop"] >= 1, "short ARP not dropped\n" + why
    assert d["ip_drop"] >= 4, "truncated/bad-checksum/bad-length/bad-ihl IPv4 not all dropped\n" + why
    assert d["ip_chkerr"] >= 1, "IPv4 header checksum error not counted\n" + why
    assert d["icmp_chkerr"] == 1, "ICMP checksum error not counted\n" + why
    assert d["tcp_chkerr"] == 1, "TCP checksum error not counted\n" + why
    # The oversize frame and the unknown ethertype count one each above;
    # the runt is a third: an rx error, or (padded to 60 bytes by e1000)
    # an unknown ethertype 0.
    assert d["rx_errors"] + d["unknown_type"] >= 3, "runt frame not counted\n" + why
    assert a.alive() and b.alive()
    record(f"malformed-{model}", {"frames": [n for n, _, _ in fl], "delta": d})


def test_transfer_refused_and_peer_killed(qemu):
    """A send to a closed port is reset; a transfer whose receiver dies
    leaves the sender's console answering, and `net bench stop` ends it."""
    a, b, _ = start_linked_pair(qemu, "virtio-net-pci", link="dgram")
    configure(a, b)
    # lwIP has no route to loopback: tcp_connect fails at once, and that is
    # reported once (not also as an aborted connection).
    out = a.cmd("net bench send 127.0.0.1 5001 1")
    assert out == "error: cannot connect to 127.0.0.1:5001: no route\n", out
    assert a.cmd("net bench stop") == "bench: nothing running\n"
    assert a.cmd(f"net bench send {IP_B} 5002 1") == f"bench: sending 1 MiB to {IP_B}:5002\n"
    a.expect(r"bench send: error: connection to 10\.0\.0\.2:5002 failed \(connection reset\) after 0 bytes queued\r*\n")
    assert b.cmd("net bench listen 5001") == "bench: listening on port 5001\n"
    assert b.cmd("net bench listen 5003") == "error: already listening on port 5001; 'net bench stop' first\n"
    assert a.cmd(f"net bench send {IP_B} 5001 1024") == f"bench: sending 1024 MiB to {IP_B}:5001\n"
    assert a.cmd(f"net bench send {IP_B} 5001 1") == "error: a send is running; 'net bench stop' first\n"
    deadline = time.monotonic() + 120
    while True:  # the receiver's console answers mid-transfer, and data moves
        m = re.search(r"bench: received (\d+) of (\d+) bytes", b.cmd("info net"))
        if m and int(m.group(1)) > 0:
            break
        assert time.monotonic() < deadline, "no data arrived within 120 s"
        time.sleep(0.5)
    b.close()  # the peer dies mid-transfer
    out = a.cmd("info net")
    assert re.search(r"bench: sending to 10\.0\.0\.2:5001, \d+ of 1073741824 bytes queued", out), out
    assert re.search(r"^bench send: stopped after \d+ of 1073741824 bytes queued\nbench: stopped\n$", a.cmd("net bench stop"), re.S)
    assert "bench: sending" not in a.cmd("info net")
    assert a.cmd("net bench stop") == "bench: nothing running\n"
    assert a.alive()


@pytest.mark.parametrize("model", ["e1000", "virtio-net-pci"])
def test_send_stopped_midway_then_again(qemu, model):
    """The sender's payload ring is reused by the next send: a send
    stopped midway is reset (the receiver hears of it), and nothing of it
    is sent from the ring afterwards, so the next transfer's bytes arrive
    with the checksum right."""
    a, b, _ = start_linked_pair(qemu, model, link="socket")
    configure(a, b)
    assert b.cmd("net bench listen 5001") == "bench: listening on port 5001\n"
    assert a.cmd(f"net bench send {IP_B} 5001 1024") == f"bench: sending 1024 MiB to {IP_B}:5001\n"
    deadline = time.monotonic() + 120
    while True:  # wait until more than the ring (2 MiB + 64 KiB) went out, so it wrapped
        m = re.search(r"bench: sending to \S+, (\d+) of \d+ bytes queued", out := a.cmd("info net"))
        if m and int(m.group(1)) > 8 << 20:
            break
        assert m and time.monotonic() < deadline, out
        time.sleep(0.2)
    assert re.search(r"^bench send: stopped after \d+ of 1073741824 bytes queued\nbench: stopped\n$",
                     a.cmd("net bench stop"), re.S)
    b.expect(r"bench recv: error: connection lost \(connection reset\) after \d+ bytes\r*\n", timeout=60)
    assert a.cmd(f"net bench send {IP_B} 5001 16") == f"bench: sending 16 MiB to {IP_B}:5001\n"
    m = b.expect(r"bench recv: (\d+) bytes in [0-9.]+ s, [0-9.]+ MB/s, checksum (\w+) \(0x[0-9a-f]+\)\r*\n",
                 timeout=TRANSFER_TIMEOUT)
    assert int(m.group(1)) == 16 << 20 and m.group(2) == "ok", m.group(0)
    a.expect(r"bench send: \d+ bytes to \S+ in [0-9.]+ s, [0-9.]+ MB/s, receiver checksum ok", timeout=60)
    ca, out = counters(a)
    assert ca["tx_errors"] == 0 and ca["tx_drop"] == 0, out


@pytest.mark.bochs
def test_bochs_e1000_with_qemu_peer(bochs, qemu):
    """Bochs's own e1000 model (i440fx, so PCI through CF8/CFC) linked to a
    QEMU virtio-net instance (ferrylib.start_bochs_qemu_pair). Ping both ways, malformed frames, a small TCP transfer
    (Bochs polls its link once per emulated millisecond: slow)."""
    b, q, p = start_bochs_qemu_pair(bochs, qemu, "bx", "q")
    assert re.search(r"net: e1000 at 00:\d\d\.\d, MAC 52:54:00:fe:00:0b, link up", b.console_text())
    out = b.cmd("info pci")
    assert re.search(r"^pci: \d+ functions \(CF8/CFC\)\n", out) and re.search(r"8086:100e class 02\.00\.00", out), out
    assert b.cmd("net config 10.0.0.11/24") == "net: 10.0.0.11/24 gateway none\n"
    assert q.cmd("net config 10.0.0.10/24") == "net: 10.0.0.10/24 gateway none\n"
    ping_ok(b, "10.0.0.10")
    ping_ok(q, "10.0.0.11")
    before, out0 = counters(b)
    # Bochs's PIIX3 routes the e1000's INTA# to the I/O APIC pin the
    # firmware wrote in Interrupt Line: the pings above woke B through it.
    assert re.search(r"interrupt: intx, ", out0) and before["irqs"] > 0, out0
    fl = netinject.frames(bytes.fromhex("525400fe000b"), "10.0.0.11")
    netinject.send(p, fl)
    ping_ok(q, "10.0.0.11")
    after, out1 = counters(b)
    d = {k: after[k] - before[k] for k in after}
    why = f"before:\n{out0}\nafter:\n{out1}\ndelta: {d}"
    assert d["ip_drop"] >= 4 and d["tcp_chkerr"] == 1 and d["icmp_chkerr"] == 1, why
    assert d["unknown_type"] >= 1 and d["rx_errors"] + d["unknown_type"] >= 2, why
    assert q.cmd("net bench listen 5001") == "bench: listening on port 5001\n"
    assert b.cmd("net bench send 10.0.0.10 5001 2") == "bench: sending 2 MiB to 10.0.0.10:5001\n"
    m = q.expect(r"bench recv: (\d+) bytes in [0-9.]+ s, [0-9.]+ MB/s, checksum (\w+) \(0x[0-9a-f]+\)\r*\n", timeout=300)
    assert m.group(1) == str(2 << 20) and m.group(2) == "ok", m.group(0)
    b.expect(r"bench send: \d+ bytes to \S+ in [0-9.]+ s, [0-9.]+ MB/s, receiver checksum ok .*\r*\n.*cwnd.*\r*\n", timeout=60)
    # Bochs's e1000 (ported from QEMU's) segmented the 64 KiB packets too.
    out = b.cmd("info net")
    m = re.search(r"^tx segmentation offload: (\d+) tcp packets sent as (\d+) frames", out, re.M)
    assert m and int(m.group(1)) > 0 and int(m.group(2)) >= (2 << 20) // 1460, out
