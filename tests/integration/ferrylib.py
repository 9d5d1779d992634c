"""ferrylib: boot ferry images under QEMU or Bochs and drive their console.

Every instance is bounded: start-up, each command and shutdown have
timeouts, and close() kills the emulator by its pid. Timeouts are bounds on
a hung emulator, never what a test checks.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pexpect
import pexpect.fdpexpect

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
sys.path.insert(0, os.path.join(ROOT, "tools"))
from netfault import Relay  # noqa: E402  (tools/ is not a package)
EFI = os.path.join(BUILD, "ferry.efi")
ISO = os.path.join(BUILD, "ferry.iso")
LINUX_ISO = os.path.join(BUILD, "ferry-linux.iso")  # make linux-iso: the Linux guest in \ferry\
OVMF = "/usr/share/ovmf/OVMF.fd"
PROMPT = "(ferry) "
READY_RE = r"ferry \S+ \(build \S+\) ready: firmware ([0-9.]+) ms, ferry init ([0-9.]+) ms"

# The Linux guest image (make linux-guest): what ferry reads from \ferry\.
LINUX = os.path.join(BUILD, "linux")
LINUX_BOOT_FILES = ("vmlinuz", "initrd.img", "cmdline")
GUEST_READY_RE = r"ferry-guest: ready (\S+)\s"  # tests/linux/init
GUEST_PROMPT = "guest# "                      # its shell's PS1

BOOT_TIMEOUT = float(os.environ.get("FERRY_BOOT_TIMEOUT", "120"))  # s, bound only
CMD_TIMEOUT = float(os.environ.get("FERRY_CMD_TIMEOUT", "30"))     # s, bound only


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_port():
    """A UDP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_tcp_listening(port, timeout=30):
    """Wait until something listens on 127.0.0.1:port (read from
    /proc/net/tcp, so no probe connection is made: QEMU's socket netdev
    would take a probe for its peer)."""
    want = f"0100007F:{port:04X}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[1] == want and cols[3] == "0A":
                    return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def nic_args(model, mac, netdev):
    """QEMU arguments for one NIC (model: virtio-net-pci or e1000) on netdev."""
    return ["-netdev", netdev, "-device", f"{model},netdev=n0,mac={mac}"]


def start_linked_pair(start, model, link="socket", macs=("52:54:00:fe:00:01", "52:54:00:fe:00:02"), **kw):
    """Start two instances whose NICs share one L2 link on loopback.

    start is a factory like the `qemu` fixture's. link "socket": a TCP
    stream between the two QEMUs (lossless; the listener starts first);
    "stream": the same with QEMU 7.2's stream netdev;
    "dgram": UDP datagrams (either order; returns the UDP ports, so a test
    can inject frames); "relay": dgram through tools/netfault.py's Relay,
    which can drop, delay or cut each direction (info["relay"]; the caller
    closes it). kw goes to both starts (mem, boot_files, com2).
    Returns (a, b, info) with info["ports"]."""
    if link == "socket":
        port = free_port()
        a = start(name="a", extra=nic_args(model, macs[0], f"socket,id=n0,listen=127.0.0.1:{port}"), **kw)
        wait_tcp_listening(port)
        b = start(name="b", extra=nic_args(model, macs[1], f"socket,id=n0,connect=127.0.0.1:{port}"), **kw)
        ports = (port, port)
    elif link == "stream":
        port = free_port()
        addr = f"addr.type=inet,addr.host=127.0.0.1,addr.port={port}"
        a = start(name="a", extra=nic_args(model, macs[0], f"stream,id=n0,server=on,{addr}"), **kw)
        wait_tcp_listening(port)
        b = start(name="b", extra=nic_args(model, macs[1], f"stream,id=n0,server=off,{addr}"), **kw)
        ports = (port, port)
    elif link in ("dgram", "relay"):
        pa, pb = free_udp_port(), free_udp_port()
        while pb == pa:
            pb = free_udp_port()
        def dgram(local, remote):
            return (f"dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port={local},"
                    f"remote.type=inet,remote.host=127.0.0.1,remote.port={remote}")
        relay = None
        ra, rb = pb, pa
        if link == "relay":
            relay = Relay(pa, pb)
            ra, rb = relay.ports
        a = start(name="a", extra=nic_args(model, macs[0], dgram(pa, ra)), **kw)
        b = start(name="b", extra=nic_args(model, macs[1], dgram(pb, rb)), **kw)
        ports = (pa, pb)
        if relay:
            a.wait_ready()
            b.wait_ready()
            return a, b, {"ports": ports, "macs": macs, "relay": relay}
    else:
        raise ValueError(f"unknown link '{link}'")
    a.wait_ready()
    b.wait_ready()
    return a, b, {"ports": ports, "macs": macs}


def start_bochs_qemu_pair(bochs, qemu, bochs_name="bx", qemu_name="q", bochs_kw=None, qemu_kw=None):
    """Bochs's e1000 (i440fx) linked to a QEMU virtio-net instance. Bochs's
    `ethmod=socket` takes frames as UDP datagrams on 127.0.0.1:P and sends
    to P+1, which is the QEMU side's dgram netdev. bochs and qemu are the
    fixtures' factories (bochs_kw, qemu_kw: more arguments for each).
    Returns (b, q, P) once both are ready (MACs ...:0b on Bochs, ...:0a on
    QEMU)."""
    p = free_udp_port()
    q = qemu(name=qemu_name, extra=nic_args("virtio-net-pci", "52:54:00:fe:00:0a",
                                            f"dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port={p + 1},"
                                            f"remote.type=inet,remote.host=127.0.0.1,remote.port={p}"),
          **(qemu_kw or {}))
    bkw = dict(bochs_kw or {})
    rc = bkw.pop("extra_rc", "")
    b = bochs(name=bochs_name, extra_rc="pci: enabled=1, chipset=i440fx, slot1=e1000\n"
                                        f"e1000: enabled=1, mac=52:54:00:fe:00:0b, ethmod=socket, ethdev={p}\n" + rc,
              **bkw)
    b.wait_ready()
    q.wait_ready()
    return b, q, p


class Instance:
    """One ferry instance; subclasses start the emulator and set self.con."""

    name = "ferry"
    con = None
    pid = None

    def __init__(self, workdir):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.log_path = os.path.join(self.workdir, f"{self.name}-console.log")
        self.log = open(self.log_path, "w")
        self.firmware_ms = None
        self.init_ms = None

    def wait_ready(self, timeout=BOOT_TIMEOUT):
        """Wait for the banner and the first prompt; record boot times."""
        self.con.expect(READY_RE, timeout=timeout)
        self.firmware_ms = float(self.con.match.group(1))
        self.init_ms = float(self.con.match.group(2))
        self.con.expect_exact(PROMPT, timeout=CMD_TIMEOUT)
        return self

    def send_line(self, line):
        self.con.send(line + "\r")

    def cmd(self, line, timeout=CMD_TIMEOUT):
        """Run one command line; return its output (echo and prompt removed)."""
        self.send_line(line)
        self.con.expect_exact(PROMPT, timeout=timeout)
        out = self.con.before.replace("\r", "")
        # The console echoes the line first (backspaces edit it on screen).
        first, _, rest = out.partition("\n")
        return rest

    def expect(self, pattern, timeout=CMD_TIMEOUT):
        self.con.expect(pattern, timeout=timeout)
        return self.con.match

    def spawn(self):
        """Start self.argv under pexpect (the console, logged), then connect
        self.com2 when the instance has one (QEMU waits for it)."""
        self.con = pexpect.spawn(self.argv[0], self.argv[1:], encoding="utf-8",
                                 codec_errors="replace", timeout=CMD_TIMEOUT,
                                 dimensions=(50, 250))
        self.con.logfile_read = self.log
        self.pid = self.con.pid
        if getattr(self, "com2", None):
            try:
                self.com2.connect(self.alive)
            except RuntimeError:
                self.close()
                raise

    def alive(self):
        if self.pid is None:
            return False
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            return pid == 0
        except ChildProcessError:
            return False

    def close(self):
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = None
        if self.log:
            self.log.close()
            self.log = None

    def console_text(self):
        """Everything the console printed so far, without carriage returns."""
        self.log.flush()
        with open(self.log_path) as f:
            return f.read().replace("\r", "")


class SerialSocket:
    """A second serial port (COM2: 0x2F8, IRQ 3) on a Unix socket that QEMU
    waits on (server=on,wait=on) until connect() has connected, so no byte
    is lost. con is its pexpect console, logged to log_path; send and
    send_line write to it."""

    def __init__(self, log_path, chardev_id="com2"):
        self.log_path = log_path
        # Short and absolute: a socket path has ~100 bytes at most.
        self.dir = tempfile.mkdtemp(prefix="ferry-com2-")
        self.path = os.path.join(self.dir, "s")
        self.args = ["-chardev", f"socket,id={chardev_id},path={self.path},server=on,wait=on",
                     "-serial", f"chardev:{chardev_id}"]
        self.sock = self.con = self.log = None
        self.reconnected = False

    def connect(self, alive, timeout=30):
        """Connect once QEMU listens; alive() says whether QEMU still runs.
        Raises RuntimeError when it never listens."""
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
                break
            except OSError:
                sock.close()
                if time.monotonic() > deadline or not alive():
                    raise RuntimeError(f"QEMU's serial socket {self.path} never came up")
                time.sleep(0.05)
        self.sock = sock
        if self.log:
            self.log.close()
        self.log = open(self.log_path, "a" if self.reconnected else "w")
        self.con = pexpect.fdpexpect.fdspawn(sock.fileno(), encoding="utf-8",
                                             codec_errors="replace", timeout=CMD_TIMEOUT)
        self.con.logfile_read = self.log

    def send(self, text):
        self.sock.sendall(text.encode())

    def send_line(self, line):
        self.send(line + "\r")

    def text(self):
        """Everything read from it so far (by expect calls), without
        carriage returns."""
        self.log.flush()
        with open(self.log_path) as f:
            return f.read().replace("\r", "")

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None
        if self.log:
            self.log.close()
            self.log = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Qemu(Instance):
    """ferry under QEMU TCG with OVMF, serial on stdio (through a pty).

    boot_files: {name: host path}, copied into the ESP's ferry/ folder
    (beside EFI/), where ferry finds \\ferry\\NAME; linux_boot_files() gives
    the Linux guest's. com2: True adds COM2 as a second `-serial`, a
    SerialSocket (self.com2; its log is NAME-com2.log). OVMF writes its boot
    messages to COM2 too, and so does whatever ferry prints through UEFI
    before ExitBootServices: match what is wanted, not COM2's first bytes.
    Without these two, nothing changes."""

    def __init__(self, workdir, name="ferry", cpu="max", mem="256M", extra=(), boot_files=None, com2=False,
                 console_socket=False):
        self.name = name
        super().__init__(workdir)
        esp_root = os.path.join(self.workdir, f"{name}-esp")
        esp = os.path.join(esp_root, "EFI", "BOOT")
        os.makedirs(esp, exist_ok=True)
        shutil.copy(EFI, os.path.join(esp, "BOOTX64.EFI"))
        if boot_files:
            folder = os.path.join(esp_root, "ferry")
            os.makedirs(folder, exist_ok=True)
            for fname, src in boot_files.items():
                shutil.copy(src, os.path.join(folder, fname))
        self.com2 = SerialSocket(os.path.join(self.workdir, f"{name}-com2.log")) if com2 else None
        # console_socket: COM1 on a Unix socket (self.console_path) instead of
        # stdio, so another program (tools/ferryctl) can reach the console
        # once release_console() let go of it.
        self.console = None
        if console_socket:
            self.log.close()  # the socket's reader logs the console instead
            self.log = open(os.devnull, "w")
            self.console = SerialSocket(self.log_path, "con")
        self.argv = [
            "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-cpu", cpu,
            "-m", mem, "-nodefaults", "-display", "none", "-monitor", "none",
            "-bios", OVMF, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-drive", "format=raw,file=fat:rw:" + esp_root,
            *self.serial_args(), *extra,
        ]
        self.spawn()
        if self.console:
            try:
                self.console.connect(self.alive)
            except RuntimeError:
                self.close()
                raise
            self.qemu_out = self.con  # QEMU's own stdout and stderr
            self.con = self.console.con

    def serial_args(self):
        """COM1 then COM2. QEMU opens the socket chardevs in order and
        waits on each: COM2's comes first, as spawn() connects it first."""
        chardevs = []
        for port in (self.com2, self.console):
            if port:
                chardevs += port.args[:2]
        serials = self.console.args[2:] if self.console else ["-serial", "stdio"]
        if self.com2:
            serials += self.com2.args[2:]
        return chardevs + serials

    @property
    def console_path(self):
        return self.console.path

    def release_console(self):
        """Let go of the console socket (QEMU takes the next client)."""
        if self.console and self.console.sock:
            self.console.sock.close()
            self.console.sock = None

    def attach_console(self):
        """Back on the console after another program let go of it; waits
        for the prompt."""
        self.release_console()
        self.console.reconnected = True
        self.console.connect(self.alive)
        self.con = self.console.con
        # QEMU takes the new client once it has seen the last one go: ask
        # for the prompt until it comes.
        for _ in range(int(CMD_TIMEOUT // 5)):
            self.send_line("")
            try:
                self.con.expect_exact(PROMPT, timeout=5)
                return
            except pexpect.TIMEOUT:
                pass
        self.con.expect_exact(PROMPT, timeout=5)

    def close(self):
        super().close()
        if self.com2:
            self.com2.close()
        if self.console:
            self.console.close()

    def exit_status(self, timeout=CMD_TIMEOUT):
        """Wait for QEMU to exit by itself; return its exit status."""
        self.con.expect(pexpect.EOF, timeout=timeout)
        self.con.close()
        self.pid = None
        return self.con.exitstatus


class Bochs(Instance):
    """ferry under Bochs (Intel VMX with EPT A/D models) with OVMF.fd,
    booted from the El Torito ISO; COM1 is a TCP socket on 127.0.0.1.
    extra_rc: more bochsrc lines (devices, e.g. an e1000)."""

    def __init__(self, workdir, name="bochs", model="corei7_haswell_4770", megs=256, extra_rc="", iso=None):
        self.name = name
        super().__init__(workdir)
        port = free_port()
        rc = os.path.join(self.workdir, f"{name}.bochsrc")
        with open(rc, "w") as f:
            f.write(f"""megs: {megs}
cpu: model={model}, count=1, ips=200000000
romimage: file={OVMF}
vgaromimage: file=/usr/share/vgabios/vgabios.bin
ata0-master: type=cdrom, path={iso or ISO}, status=inserted
boot: cdrom
display_library: term
com1: enabled=1, mode=socket-server, dev=127.0.0.1:{port}
magic_break: enabled=1
speaker: enabled=0
clock: sync=none
log: {os.path.join(self.workdir, name + '.log')}
panic: action=fatal
{extra_rc}""")
        cont = os.path.join(self.workdir, f"{name}.rc")
        with open(cont, "w") as f:
            f.write("continue\nquit\n")
        env = dict(os.environ, TERM="dumb")
        self.proc = subprocess.Popen(["bochs", "-q", "-f", rc, "-rc", cont], env=env,
                                     stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(self.workdir, name + ".out"), "w"),
                                     stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        # Bochs waits for its COM1 client before it starts the machine.
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise RuntimeError(f"bochs COM1 socket 127.0.0.1:{port} never came up")
                time.sleep(0.2)
        self.con = pexpect.fdpexpect.fdspawn(self.sock.fileno(), encoding="utf-8",
                                             codec_errors="replace", timeout=CMD_TIMEOUT)
        self.con.logfile_read = self.log

    def send_line(self, line):
        self.sock.sendall((line + "\r").encode())

    def close(self):
        if getattr(self, "sock", None):
            self.sock.close()
            self.sock = None
        super().close()
        if getattr(self, "proc", None):
            self.proc.returncode = -9


def parse_kv(text, pattern):
    m = re.search(pattern, text)
    assert m, f"expected /{pattern}/ in:\n{text}"
    return m


def info_fields(text):
    """The 'key: value' lines of an info command's output, as a dict."""
    d = {}
    for line in text.splitlines():
        k, sep, v = line.partition(": ")
        if sep:
            d[k.strip()] = v.strip()
    return d


def wait_status(inst, want, timeout):
    """Poll `info migrate` until the status is one of want; return (dict, text)."""
    deadline = time.monotonic() + timeout
    while True:
        out = inst.cmd("info migrate")
        d = info_fields(out)
        st = d.get("Migration status", "").split(" ")[0]
        if st in want:
            return d, out
        assert time.monotonic() < deadline, f"migration still '{st}' after {timeout} s:\n{out}"
        assert st in ("setup", "active"), f"unexpected status:\n{out}"
        time.sleep(0.5)


def bench_transfer(src, dst, dst_ip, port, mib, timeout=600):
    """`net bench send` of mib MiB from src to dst (listening on port), the
    payload checksum checked at both ends. Returns the receiver's and the
    sender's MB/s and the host's seconds from the command to the receiver's
    line, as a dict (recv_mbs, send_mbs, wall_s)."""
    t0 = time.monotonic()
    out = src.cmd(f"net bench send {dst_ip} {port} {mib}")
    if "error" in out:
        raise RuntimeError(f"bench send: {out}")
    m = dst.expect(r"bench recv: (\d+) bytes in ([0-9.]+) s, ([0-9.]+) MB/s, checksum (ok|MISMATCH) \(",
                   timeout=timeout)
    if m.group(4) != "ok":
        raise RuntimeError("bench recv: checksum mismatch")
    r = dict(recv_mbs=float(m.group(3)), wall_s=time.monotonic() - t0)
    m = src.expect(r"bench send: \d+ bytes to \S+ in [0-9.]+ s, ([0-9.]+) MB/s, receiver checksum ok", timeout=120)
    return dict(r, send_mbs=float(m.group(1)))


class Instances:
    """Start QEMU instances in workdir and close them all (by pid) on the
    way out: `with Instances(wd) as start: a, b, _ = start_linked_pair(start, nic)`."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.started = []

    def __enter__(self):
        return self.start

    def start(self, **kw):
        inst = Qemu(self.workdir, **kw)
        self.started.append(inst)
        return inst

    def __exit__(self, *exc):
        for inst in self.started:
            inst.close()
        return False


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


# ---------------------------------------------------------------------------
# The Linux guest (tests/linux): its image, its shell, its programs' output.

def linux_boot_files():
    """{name: host path} of the Linux guest image, for Qemu(boot_files=...).
    Raises FileNotFoundError naming the first missing file."""
    files = {n: os.path.join(LINUX, n) for n in LINUX_BOOT_FILES}
    for path in files.values():
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} is missing: run 'make linux-guest'")
    return files


def linux_fetch_error():
    """None when tools/fetch-linux.sh can get the kernel and busybox (into
    FERRY_CACHE, as make does); else its message, for a test to skip with."""
    cache = os.environ.get("FERRY_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "ferry"))
    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run(["bash", os.path.join(ROOT, "tools", "fetch-linux.sh"), cache, out],
                           capture_output=True, text=True, timeout=600)
    return None if r.returncode == 0 else (r.stderr.strip() or f"exit status {r.returncode}")


class GuestShell:
    """The Linux guest's console: con is a pexpect object reading it, send
    a function writing a str to it (QEMU's stdio: con.send; COM2:
    SerialSocket.send)."""

    def __init__(self, con, send):
        self.con = con
        self.send = send
        self.release = None

    def wait_ready(self, timeout=BOOT_TIMEOUT):
        """Wait for /init's ready line and the shell's first prompt; returns
        the kernel release it printed."""
        self.con.expect(GUEST_READY_RE, timeout=timeout)
        self.release = self.con.match.group(1)
        self.con.expect_exact(GUEST_PROMPT, timeout=CMD_TIMEOUT)
        return self.release

    def run(self, line, timeout=CMD_TIMEOUT):
        """Run one shell line; return its output (echo and prompt removed,
        no carriage returns). Kernel messages may be interleaved."""
        self.send(line + "\r")
        self.con.expect_exact(GUEST_PROMPT, timeout=timeout)
        out = self.con.before.replace("\r", "")
        # The shell echoes the line first; busybox's line editor then asks
        # the terminal for the cursor position (ESC [ 6 n) at each prompt.
        _, _, rest = out.partition("\n")
        return rest.replace("\x1b[6n", "")


class DirectLinux(Instance):
    """The Linux guest image booted by QEMU itself (-kernel/-initrd, TCG),
    without ferry. self.shell is its GuestShell: on stdio (COM1), or with
    com2=True on a SerialSocket as COM2 (console=ttyS1 instead of ttyS0), the way a
    test will meet the guest under ferry."""

    def __init__(self, workdir, name="linux", mem="256M", append=None, extra=(), com2=False):
        self.name = name
        super().__init__(workdir)
        files = linux_boot_files()
        if append is None:
            with open(files["cmdline"]) as f:
                append = f.read().strip()
        self.com2 = None
        com1 = "stdio"
        if com2:
            # Only one 8250 port can be the kernel's console (the first
            # console=ttyS* wins): replace it. COM1 goes to a file: nobody
            # reads it, and an unread pty would stall the guest's writes.
            append = " ".join([t for t in append.split() if not t.startswith("console=ttyS")]
                              + ["console=ttyS1"])
            self.com2 = SerialSocket(os.path.join(self.workdir, f"{name}-com2.log"))
            com1 = "file:" + os.path.join(self.workdir, f"{name}-com1.log")
        self.argv = ["qemu-system-x86_64", "-accel", "tcg", "-m", mem, "-nodefaults",
                     "-display", "none", "-monitor", "none", "-serial", com1,
                     *(self.com2.args if com2 else []),
                     "-kernel", files["vmlinuz"], "-initrd", files["initrd.img"],
                     "-append", append, *extra]
        self.spawn()
        if com2:
            self.shell = GuestShell(self.com2.con, self.com2.send)
        else:
            self.shell = GuestShell(self.con, self.con.send)

    def wait_ready(self, timeout=BOOT_TIMEOUT):
        self.shell.wait_ready(timeout)
        return self

    def close(self):
        super().close()
        if self.com2:
            self.com2.close()

    def guest_console_text(self):
        """What the guest's console printed so far (COM1 or COM2)."""
        return self.com2.text() if self.com2 else self.console_text()


def parse_stamp(text):
    """tests/linux/stamp's output: (passes, done, mismatches) where passes
    is [(pass, errors)] from its once-a-second lines, done (passes, errors)
    from its final line or None, mismatches its MISMATCH lines."""
    passes = [(int(a), int(b)) for a, b in re.findall(r"stamp: pass (\d+) errors (\d+)$", text, re.M)]
    m = re.search(r"^stamp: done passes (\d+) errors (\d+)$", text, re.M)
    done = (int(m.group(1)), int(m.group(2))) if m else None
    return passes, done, re.findall(r"^stamp: MISMATCH .*$", text, re.M)


def parse_idle(text):
    """tests/linux/idle's output: [(tick, guest seconds)]. A line may follow
    a shell prompt that has no newline of its own."""
    return [(int(n), float(t)) for n, t in re.findall(r"idle: tick (\d+) at ([0-9.]+) s$", text, re.M)]
