#!/usr/bin/python3
"""make bench, guest part: boot ferry under QEMU TCG once per backend QEMU
can offer (pte: -cpu max,-svm; npt: -cpu max) and run `guest bench`:
harvest cost of a 1 GiB guest that touched 16 MiB against a 16 MiB guest
that touched all of itself (goal: within 2x), and the VM-exit round trip.
ept needs Bochs, whose speed says nothing about hardware: not benchmarked.
Numbers are emulator numbers; the ratio is what carries over."""
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from ferrylib import Qemu  # noqa: E402

BACKENDS = [("pte", "max,-svm"), ("npt", "max")]


def main():
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="ferry-hv-bench-") as tmp:
        for backend, cpu in BACKENDS:
            q = Qemu(tmp, name=f"bench-{backend}", cpu=cpu, mem="1536M")
            try:
                q.wait_ready()
                out = q.cmd("guest bench 1G 16M", timeout=600)
            finally:
                q.close()
            lines = [l for l in out.splitlines() if l.startswith("bench ")]
            print("\n".join(lines) if lines else out)
            m = re.search(r"harvest ratio: ([0-9.]+)", out)
            if not m or f"bench {backend} " not in out:
                print(f"error: no result for {backend}:\n{out}")
                return 1
            worst = max(worst, float(m.group(1)))
    print(f"hv bench: worst harvest ratio {worst:.2f} ({'within' if worst <= 2 else 'OUTSIDE'} the 2x goal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
