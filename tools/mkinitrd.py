#!/usr/bin/env python3
"""tools/mkinitrd.py OUT DEST=SRC...: write a gzip'd newc cpio (a Linux
initramfs) to OUT holding each host file SRC at DEST (a path inside the
image, e.g. bin/busybox=build/linux/busybox), plus the folders every DEST
needs, the mount points /init uses (proc, sys, dev, tmp, root), busybox's
applet folders, and /dev/console.

/dev/console must be in the image: the kernel opens it for init's
stdin/stdout before /init can mount devtmpfs. Writing the node here needs
no root (cpio -o would need a real node made by mknod).

The output is reproducible: owner root, every time 0, entries in a fixed
order, the gzip header's time 0. A file keeps its executable bits (0755 or
0644). Exits 1 with a message naming the file when a SRC cannot be read or
a DEST is not a plain relative path.
"""
import gzip
import os
import stat
import sys

# Folders made whether or not a file goes there: mount points and the
# folders `busybox --install -s` links its applets into.
DIRS = ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "root"]
# Character devices: (path, mode, major, minor).
NODES = [("dev/console", 0o600, 5, 1)]


def entry(ino, name, mode, data=b"", rdev=(0, 0)):
    """One newc record: the 110-byte header, the name, the data, each padded
    to 4 bytes (see the kernel's Documentation/driver-api/early-userspace/
    buffer-format.rst)."""
    name_b = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, 0, len(data),
              0, 0, rdev[0], rdev[1], len(name_b), 0]
    hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
    out = hdr + name_b
    out += b"\0" * (-len(out) % 4)
    out += data + b"\0" * (-len(data) % 4)
    return out


def fail(msg):
    print(f"mkinitrd: {msg}", file=sys.stderr)
    sys.exit(1)


def main(argv):
    if len(argv) < 2:
        fail("usage: mkinitrd.py OUT DEST=SRC...")
    out, specs = argv[0], argv[1:]
    files = {}
    for spec in specs:
        dest, sep, src = spec.partition("=")
        parts = dest.split("/")
        if not sep or not dest or dest.startswith("/") or any(p in ("", ".", "..") for p in parts):
            fail(f"'{spec}': want DEST=SRC with DEST a relative path inside the image")
        try:
            with open(src, "rb") as f:
                data = f.read()
            exe = os.stat(src).st_mode & 0o111
        except OSError as e:
            fail(f"{src}: {e.strerror}")
        files[dest] = (data, 0o755 if exe else 0o644)

    dirs = set(DIRS)
    for dest in list(files) + [n[0] for n in NODES]:
        parts = dest.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))

    blob = bytearray()
    ino = 1
    # Parents sort before their children, so each folder exists first.
    for d in sorted(dirs):
        blob += entry(ino, d, stat.S_IFDIR | 0o755)
        ino += 1
    for path, mode, major, minor in NODES:
        blob += entry(ino, path, stat.S_IFCHR | mode, rdev=(major, minor))
        ino += 1
    for dest in sorted(files):
        data, mode = files[dest]
        blob += entry(ino, dest, stat.S_IFREG | mode, data)
        ino += 1
    blob += entry(0, "TRAILER!!!", 0)

    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, compresslevel=9, filename="") as gz:
            gz.write(bytes(blob))
    os.replace(tmp, out)


if __name__ == "__main__":
    main(sys.argv[1:])
