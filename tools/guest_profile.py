#!/usr/bin/env python3
"""guest_profile: where a running ferry spends its time, sampled from
outside. Attaches to the gdbstub of a QEMU started with
`-gdb tcp:127.0.0.1:PORT`, stops the vCPU HZ times a second, reads RIP and
walks the frame-pointer chain (ferry is built -fno-omit-frame-pointer),
and resolves the addresses with addr2line against build/ferry.so.

    /usr/bin/python3 tools/guest_profile.py --port PORT --base 0xADDR [--seconds 5] [--hz 200]

BASE is the start of ferry's image as `info mem` prints it ("image:
0x...-0x..."). Prints the functions by samples where the CPU was (self)
and by samples with the function anywhere in the sampled chain
(inclusive). A halted CPU shows as the instruction after `hlt` (x86_cli,
inlined into kernel_main): that is idle time. While a guest runs under
SVM or VMX the stub reports the guest's registers: those samples count as
"outside ferry's image".

Speaks the GDB remote serial protocol itself (no gdb needed). Sampling
slows the guest a little: each sample is a stop, two register/memory
reads and a continue. Under TCG the stop is taken where a translated
block begins, so self time can be credited to the block after the one
that used it; the inclusive figures and halted-versus-busy are the
trustworthy part there. To time a code path exactly, read the TSC around
it in the guest.
"""
import argparse
import collections
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Rsp:
    """A minimal GDB remote serial protocol client (acknowledged mode)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _packet(self):
        while True:
            i = self.buf.find(b"$")
            j = self.buf.find(b"#", i) if i >= 0 else -1
            if j >= 0 and len(self.buf) >= j + 3:
                pkt = self.buf[i + 1:j]
                self.buf = self.buf[j + 3:]
                self.s.sendall(b"+")
                return pkt.decode()
            d = self.s.recv(65536)
            if not d:
                raise EOFError("gdbstub closed the connection")
            self.buf += d

    def send(self, cmd):
        self.s.sendall(b"$%s#%02x" % (cmd.encode(), sum(cmd.encode()) & 0xff))

    def cmd(self, cmd):
        self.send(cmd)
        return self._packet()

    def stop(self):
        self.s.sendall(b"\x03")
        return self._packet()

    def regs(self):
        """(rip, rbp) from the 'g' packet: rax..r15 then rip, 8 bytes each."""
        g = bytes.fromhex(self.cmd("g")[:2 * 136])
        return int.from_bytes(g[128:136], "little"), int.from_bytes(g[48:56], "little")

    def mem(self, addr, n):
        r = self.cmd("m%x,%x" % (addr, n))
        try:
            return bytes.fromhex(r)
        except ValueError:
            return None  # an error reply: unmapped


def sample(port, seconds, hz, depth):
    r = Rsp(port)
    r.stop()
    r.send("c")
    chains = collections.Counter()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(1.0 / hz)
        r.stop()
        rip, rbp = r.regs()
        chain = [rip]
        for _ in range(depth):
            m = r.mem(rbp, 16) if rbp else None
            if not m:
                break
            rbp, ret = int.from_bytes(m[:8], "little"), int.from_bytes(m[8:], "little")
            if not ret:
                break
            chain.append(ret)
        r.send("c")
        chains[tuple(chain)] += 1
    r.stop()
    r.cmd("D")  # detach: the guest runs on
    return chains


OUTSIDE = "[outside ferry's image: the guest, or firmware]"


def resolve(addrs, base, so):
    """Function names; addresses below the image (a guest running under
    SVM/VMX reports its own RIP) or that addr2line cannot place get
    OUTSIDE."""
    mine = [a for a in addrs if a >= base]
    out = subprocess.run(["addr2line", "-f", "-e", so] + [hex(a - base) for a in mine],
                         capture_output=True, text=True, check=True).stdout.split("\n") if mine else []
    names = {a: OUTSIDE for a in addrs}
    for i, a in enumerate(mine):
        if out[2 * i] != "??":
            names[a] = out[2 * i]
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True, help="QEMU's -gdb tcp port on 127.0.0.1")
    ap.add_argument("--base", required=True, help="image start from `info mem` (hex)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--hz", type=float, default=200.0)
    ap.add_argument("--depth", type=int, default=3, help="frames walked up from RIP")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--so", default=os.path.join(ROOT, "build", "ferry.so"))
    a = ap.parse_args()
    chains = sample(a.port, a.seconds, a.hz, a.depth)
    total = sum(chains.values())
    if not total:
        print("guest_profile: no samples", file=sys.stderr)
        return 1
    names = resolve(sorted({x for ch in chains for x in ch}), int(a.base, 16), a.so)
    self_, incl = collections.Counter(), collections.Counter()
    for ch, n in chains.items():
        self_[names[ch[0]]] += n
        for f in {names[x] for x in ch}:
            incl[f] += n
    print(f"guest_profile: {total} samples in {a.seconds:.1f} s")
    print("  self:")
    for f, n in self_.most_common(a.top):
        print(f"  {100 * n / total:5.1f}% {f}")
    print(f"  inclusive ({a.depth} frames up):")
    for f, n in incl.most_common(a.top):
        print(f"  {100 * n / total:5.1f}% {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
