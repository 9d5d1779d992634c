"""Boot-time benchmark: QEMU start to ferry's prompt, split into firmware
time (TSC at efi_main) and ferry's own init (efi_main to prompt), over
several boots; prints best and median. Not a test: numbers only."""
import statistics
import sys
import tempfile
import time

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0] + "/tests/integration")
from ferrylib import EFI, Qemu  # noqa: E402

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5


def main():
    wall, fw, init = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(RUNS):
            t0 = time.monotonic()
            inst = Qemu(tmp, name=f"boot{i}")
            try:
                inst.wait_ready()
                wall.append((time.monotonic() - t0) * 1000)
                fw.append(inst.firmware_ms)
                init.append(inst.init_ms)
            finally:
                inst.close()
    size = __import__("os").path.getsize(EFI)
    print(f"boot under QEMU TCG + OVMF, {RUNS} runs (ms)       best     median")
    for name, v in (("QEMU start -> prompt (wall)", wall), ("firmware (TSC at efi_main)", fw),
                    ("ferry init (efi_main -> prompt)", init)):
        print(f"  {name:36s} {min(v):8.1f} {statistics.median(v):10.1f}")
    print(f"  image size: {size} bytes ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
