"""tools/guest_profile.py against a real ferry under QEMU's gdbstub: the
samples resolve to ferry's own functions (an idle instance sits in its
main loop), a guest running under SVM shows as time outside ferry's
image, and the instance keeps running after the profiler detaches."""
import os
import re
import subprocess
import sys

from ferrylib import ROOT, free_port, parse_kv


def profile(port, base):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "guest_profile.py"), "--port", str(port),
                          "--base", base, "--seconds", "2", "--hz", "100"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    n = int(parse_kv(out.stdout, r"guest_profile: (\d+) samples").group(1))
    assert n >= 20, out.stdout
    self_, incl = out.stdout.split("inclusive")
    return out.stdout, self_, incl


def test_profile_resolves_ferry_functions(qemu):
    port = free_port()
    q = qemu(name="prof", extra=["-gdb", f"tcp:127.0.0.1:{port}"])
    q.wait_ready()
    base = parse_kv(q.cmd("info mem"), r"image: (0x[0-9a-f]+)-0x[0-9a-f]+").group(1)
    out, self_, incl = profile(port, base)
    # Idle: halted in the main loop (the instruction after hlt is the
    # inlined x86_cli), called from efi_main's hand-off.
    assert re.search(r"\d% x86_cli\n", self_) and re.search(r"\d% efi_main\n", incl), out
    assert "outside ferry" not in out and "??" not in out, out
    assert re.search(r"guest: synthetic", q.cmd("guest start synthetic 16M"))
    out, self_, incl = profile(port, base)
    assert re.search(r"\d% \[outside ferry's image", self_), out  # the guest's own RIPs
    assert re.search(r"uptime: \d+\.\d+ s", q.cmd("info uptime"))  # detached, still running
