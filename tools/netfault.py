#!/usr/bin/env python3
"""netfault: a fault-injecting relay between two QEMU `-netdev dgram` NICs.

Each NIC's dgram netdev sends its frames (one UDP datagram each) to the
relay on 127.0.0.1, which passes them on to the other NIC, or drops,
delays, duplicates or holds them, per direction, on command. It can also
act the moment a migration control record (READY, GO, COMMIT, ...) of a
given migration id crosses the link, which is how the switch-over tests
cut a link exactly when GO or COMMIT is in flight.

    relay = Relay(port_a, port_b)       # the NICs' local UDP ports
    relay.ports                         # (for A's remote, for B's remote)
    relay.cut("ba")                     # B to A: drop everything from now
    relay.set_rate("ab", 8 << 20)       # A to B: an 8 MiB/s bottleneck
    relay.on_record("ab", GO, mig_id, lambda: relay.cut("ab"))
    relay.close()

Directions: "ab" (frames from A to B) and "ba". Run as a program it relays
with a fixed set of faults (see --help), for trying things by hand.
"""
import argparse
import heapq
import select
import socket
import struct
import sys
import threading
import time

from streamrec import TYPES as RECORDS  # noqa: E402  (same folder)


def control_header(rtype, mig_id):
    """The first 16 bytes of a control record (END, READY, GO, COMMIT,
    VERIFIED, CANCEL) of migration mig_id; REGION_DIGEST and NACK/ERROR
    carry the id elsewhere, so they match on the type and length only."""
    return struct.pack("<IIQ", rtype, 8, mig_id)


def tcp_seq(frame):
    """The TCP sequence number of an Ethernet/IPv4 frame (None if not TCP)."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return None
    tcp = 14 + (frame[14] & 0x0F) * 4
    return struct.unpack("!I", frame[tcp + 4:tcp + 8])[0] if len(frame) >= tcp + 8 else None


def tcp_payload(frame):
    """The TCP payload of an Ethernet/IPv4 frame, or b""."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return b""
    ihl = (frame[14] & 0x0F) * 4
    total = struct.unpack("!H", frame[16:18])[0]
    tcp = 14 + ihl
    if len(frame) < tcp + 20:
        return b""
    off = (frame[tcp + 12] >> 4) * 4
    return frame[tcp + off:14 + total]


class Relay:
    def __init__(self, port_a, port_b, host="127.0.0.1"):
        self.dest = {"ab": (host, port_b), "ba": (host, port_a)}
        self.sock = {}
        for d in ("ab", "ba"):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((host, 0))
            self.sock[d] = s
        # A sends to the "ab" socket's port, B to the "ba" socket's.
        self.ports = (self.sock["ab"].getsockname()[1], self.sock["ba"].getsockname()[1])
        self.lock = threading.Lock()
        self.dropping = {"ab": False, "ba": False}
        self.delay = {"ab": 0.0, "ba": 0.0}
        self.duplicate = {"ab": 0, "ba": 0}   # every n-th frame twice (0: none)
        self.dup_next = {"ab": False, "ba": False}
        self.held = []         # heap of (due, seq, direction, frame)
        self.rate = {"ab": 0, "ba": 0}        # bytes/s (0: no bottleneck)
        self.queue = {"ab": 0, "ba": 0}       # bottleneck queue, bytes
        self.link_free = {"ab": 0.0, "ba": 0.0}  # when the bottleneck is idle again
        self.sent_log = {"ab": None, "ba": None}  # [(time, new TCP payload bytes)] passed on, when recording
        self.seq_end = {"ab": None, "ba": None}   # the highest sequence number passed on (+ its length)
        self.seq = 0
        self.tail = {"ab": b"", "ba": b""}
        self.triggers = []     # [direction, pattern, action, fired]
        self.counts = {"ab": 0, "ba": 0, "dropped": 0}
        self.seen = []         # (time, direction, record name) of watched records
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    # ---- commands ----
    def cut(self, *dirs):
        """Drop every frame of these directions from now on, and what is
        held for them."""
        with self.lock:
            for d in dirs:
                self.dropping[d] = True
            self.held = [h for h in self.held if h[2] not in dirs]
            heapq.heapify(self.held)

    def heal(self, *dirs):
        with self.lock:
            for d in dirs:
                self.dropping[d] = False

    def set_delay(self, direction, seconds):
        with self.lock:
            self.delay[direction] = seconds

    def set_rate(self, direction, bytes_per_s, queue_bytes=256 << 10):
        """A bottleneck on direction: frames leave at bytes_per_s (their
        Ethernet bytes), queued up to queue_bytes and dropped beyond that,
        as a router's tail-drop queue does (0: no bottleneck)."""
        with self.lock:
            self.rate[direction] = bytes_per_s
            self.queue[direction] = queue_bytes
            self.link_free[direction] = time.monotonic()

    def record_rate(self, direction):
        """From now on, log each frame passed on in direction (time, the
        TCP payload bytes it carries that no earlier frame did: the
        stream's rate, without headers or retransmissions); rates() reads
        the log. One TCP connection at a time."""
        with self.lock:
            self.sent_log[direction] = []
            self.seq_end[direction] = None

    def _log_sent(self, d, frame, t):
        """Under self.lock."""
        data, seq = tcp_payload(frame), tcp_seq(frame)
        if self.sent_log[d] is None or not data or seq is None:
            return
        end = (seq + len(data)) & 0xFFFFFFFF
        last = self.seq_end[d]
        if last is None:
            new = len(data)
        else:
            ahead = (end - last) & 0xFFFFFFFF
            new = min(ahead, len(data)) if ahead < 0x80000000 else 0
        if new:
            self.seq_end[d] = end
            self.sent_log[d].append((t, new))

    def rates(self, direction, window=1.0, since=0.0, until=float("inf")):
        """(start, bytes) passed on in direction over each window-long span
        that starts at a logged frame and lies within [since, until]."""
        with self.lock:
            log = [e for e in self.sent_log[direction] or [] if since <= e[0] <= until]
        out, j, acc = [], 0, 0
        for t, n in log:
            while j < len(log) and log[j][0] < t + window:
                acc += log[j][1]
                j += 1
            if log[-1][0] >= t + window:  # a whole window of traffic follows
                out.append((t, acc))
            acc -= n
        return out

    def set_duplicate(self, direction, every=1):
        """Send every n-th frame of direction twice (0: none)."""
        with self.lock:
            self.duplicate[direction] = every

    def dup_once(self, direction):
        """Send the frame being judged (from a record action) twice."""
        with self.lock:
            self.dup_next[direction] = True

    def on_record(self, direction, rtype, mig_id, action, name=None):
        """Call action() (under no lock) the first time a control record of
        rtype and mig_id crosses direction. The frame that carries it is
        judged after the action: a cut drops it too."""
        pat = control_header(rtype, mig_id)
        with self.lock:
            self.triggers.append([direction, pat, action, False, name or hex(rtype)])

    def fired(self, name):
        return [t for t, _, n in self.seen if n == name]

    def close(self):
        self.stop = True
        self.thread.join(timeout=5)
        for s in self.sock.values():
            s.close()

    # ---- the relay ----
    def _match(self, d, frame):
        data = tcp_payload(frame)
        if not data:
            return []
        with self.lock:
            window = self.tail[d] + data
            self.tail[d] = window[-15:]
            hits = [t for t in self.triggers if not t[3] and t[0] == d and t[1] in window]
            for t in hits:
                t[3] = True
                self.seen.append((time.monotonic(), d, t[4]))
        return [t[2] for t in hits]

    def _forward(self, d, frame):
        for action in self._match(d, frame):
            action()
        with self.lock:
            self.counts[d] += 1
            if self.dropping[d]:
                self.counts["dropped"] += 1
                return
            every = self.duplicate[d]
            n = 2 if self.dup_next[d] or (every and self.counts[d] % every == 0) else 1
            self.dup_next[d] = False
            if self.rate[d]:
                now = time.monotonic()
                start = max(now, self.link_free[d])
                if (start - now) * self.rate[d] > self.queue[d]:
                    self.counts["dropped"] += 1  # the queue is full
                    return
                self.link_free[d] = start + len(frame) * n / self.rate[d]
                for _ in range(n):
                    self.seq += 1
                    heapq.heappush(self.held, (self.link_free[d] + self.delay[d], self.seq, d, frame))
                return
            if self.delay[d] > 0:
                for _ in range(n):
                    self.seq += 1
                    heapq.heappush(self.held, (time.monotonic() + self.delay[d], self.seq, d, frame))
                return
            self._log_sent(d, frame, time.monotonic())
        other = "ba" if d == "ab" else "ab"
        for _ in range(n):
            # Out of the socket the receiving NIC sends to: its source port
            # is the one that NIC's netdev names as remote.
            self.sock[other].sendto(frame, self.dest[d])

    def _flush_held(self):
        now = time.monotonic()
        out = []
        with self.lock:
            while self.held and self.held[0][0] <= now:
                _, _, d, frame = heapq.heappop(self.held)
                if not self.dropping[d]:
                    out.append((d, frame))
                    self._log_sent(d, frame, now)
            nxt = self.held[0][0] - now if self.held else 0.05
        for d, frame in out:
            other = "ba" if d == "ab" else "ab"
            self.sock[other].sendto(frame, self.dest[d])
        return max(0.0, min(nxt, 0.05))

    def _run(self):
        socks = {self.sock["ab"]: "ab", self.sock["ba"]: "ba"}
        while not self.stop:
            wait = self._flush_held()
            r, _, _ = select.select(list(socks), [], [], wait)
            for s in r:
                try:
                    frame, _ = s.recvfrom(65536)
                except OSError:
                    continue
                self._forward(socks[s], frame)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port_a", type=int, help="A's dgram netdev local port")
    ap.add_argument("port_b", type=int, help="B's dgram netdev local port")
    ap.add_argument("--delay-ba", type=float, default=0.0, help="seconds added from B to A")
    ap.add_argument("--delay-ab", type=float, default=0.0, help="seconds added from A to B")
    ap.add_argument("--rate", type=float, default=0.0, help="bottleneck both ways, MiB/s (0: none)")
    ap.add_argument("--cut-at", choices=sorted(RECORDS), help="cut both directions when this record passes")
    ap.add_argument("--mig-id", type=lambda s: int(s, 16), default=0, help="the migration id (hex)")
    ap.add_argument("--seconds", type=float, default=300.0, help="run this long")
    a = ap.parse_args()
    relay = Relay(a.port_a, a.port_b)
    relay.set_delay("ab", a.delay_ab)
    relay.set_delay("ba", a.delay_ba)
    for d in ("ab", "ba"):
        relay.set_rate(d, int(a.rate * (1 << 20)))
    if a.cut_at:
        for d in ("ab", "ba"):
            relay.on_record(d, RECORDS[a.cut_at], a.mig_id, lambda: relay.cut("ab", "ba"), a.cut_at)
    print(f"netfault: A sends to {relay.ports[0]}, B to {relay.ports[1]}", flush=True)
    try:
        time.sleep(a.seconds)
    except KeyboardInterrupt:
        pass
    relay.close()
    print(f"netfault: {relay.counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
