"""The switch-over under faults (docs/migration.md, "Faults"): two instances
on a dgram link through tools/netfault.py's relay, which drops, delays or
cuts each direction, at a phase or the moment a control record (END, READY,
GO, COMMIT, VERIFIED) of this migration crosses it. Plus migrate_cancel and
killed instances at each phase, the downtime budget, and a flipped byte in
the destination's copy.

Every case ends with the stamp guest running on exactly one instance with
its check passing, or stopped in-doubt and then resolved with
migrate_resolve: never on both, never on neither.
"""
import re
import threading
import time

import pytest

from ferrylib import info_fields, start_linked_pair, wait_status
from netfault import RECORDS

IP_A, IP_B, PORT = "10.0.0.1", "10.0.0.2", 4444
GUEST = "stamp 32M"
MIGRATE_TIMEOUT = 120  # s: bounds on a hung migration, not what is measured
INDOUBT_TIMEOUT = 60   # s: the ends' own timeouts are 10 s (source) and 30 s (destination)


def info(inst):
    out = inst.cmd("info migrate")
    return info_fields(out), out


def counters(inst):
    out = inst.cmd("info guest")
    c = re.search(r"counters: passes (\d+), errors (\d+)", out)
    return (int(c.group(1)), int(c.group(2))) if c else (0, 0), out


def assert_runs(inst, what):
    """The stamp guest runs here: passes go up, no mismatch."""
    (p0, _), out0 = counters(inst)
    assert "running" in out0, f"{what}: no running guest:\n{out0}"
    deadline = time.monotonic() + 30
    while True:
        time.sleep(1)
        (p1, e1), out1 = counters(inst)
        if p1 > p0 + 2 or time.monotonic() > deadline:
            break
    assert p1 > p0 + 2, f"{what}: stamp passes did not advance ({p0} -> {p1}):\n{out1}"
    assert e1 == 0, f"{what}: stamp found {e1} mismatches:\n{out1}"
    assert "MISMATCH" not in inst.console_text(), f"{what}: stamp printed a mismatch"


def assert_not_running(inst, what):
    out = inst.cmd("info guest")
    m = re.search(r"^guest: \w+, (\w+),", out, re.M)
    assert "guest: none" in out or (m and m.group(1) == "stopped"), f"{what}:\n{out}"
    (p0, _), _ = counters(inst)
    time.sleep(1.5)
    (p1, _), out1 = counters(inst)
    assert p1 == p0, f"{what}: its guest still runs ({p0} -> {p1}):\n{out1}"


@pytest.fixture
def link(qemu):
    """A and B through the relay; A runs the stamp guest, B listens."""
    made = []

    def make(**kw):
        a, b, i = start_linked_pair(qemu, "virtio-net-pci", link="relay")
        relay = i["relay"]
        made.append(relay)
        assert "net:" in a.cmd(f"net config {IP_A}/24")
        assert "net:" in b.cmd(f"net config {IP_B}/24")
        for k, v in kw.items():
            a.cmd(f"migrate_set_parameter {k} {v}")
        assert "running" in a.cmd(f"guest start {GUEST}")
        out = b.cmd(f"migrate_incoming tcp:0:{PORT}")
        assert "listening" in out, out
        return a, b, relay
    yield make
    for r in made:
        r.close()


def start(a):
    """migrate; returns the migration id A chose."""
    out = a.cmd(f"migrate tcp:{IP_B}:{PORT}")
    assert "connecting" in out, out
    d, out = info(a)
    m = re.search(r"^migration id: ([0-9a-f]{16})$", out, re.M)
    assert m, out
    return int(m.group(1), 16)


def on(relay, direction, name, mig_id, action):
    relay.on_record(direction, RECORDS[name], mig_id, action, name)


def resolve(inst, how):
    out = inst.cmd(f"migrate_resolve {how}")
    want = "the guest runs here" if how == "resume" else "the guest was dropped here"
    assert want in out, out
    return out


def test_commit_lost_leaves_the_source_in_doubt_never_running(link):
    # The failure that ran the guest on both ends before: B's COMMIT (and
    # everything after it from B) is lost, B runs the guest. A must keep
    # its copy stopped, in-doubt, for as long as it takes.
    # From END on, B's frames take 250 ms more (earlier the slow return
    # path would throttle the whole pre-copy); then COMMIT is cut with
    # whatever the relay holds.
    a, b, relay = link()
    mig = start(a)
    on(relay, "ab", "END", mig, lambda: relay.set_delay("ba", 0.25))
    on(relay, "ba", "COMMIT", mig, lambda: relay.cut("ba"))
    d, out = wait_status(a, ("in-doubt", "completed", "failed"), INDOUBT_TIMEOUT)
    assert d["Migration status"] == f"in-doubt (to {IP_B}:{PORT})", out
    assert "timeout" in d["in-doubt"] or "link" in d["in-doubt"], out
    db, outb = wait_status(b, ("completed", "failed"), MIGRATE_TIMEOUT)
    assert db["result"].startswith("guest stamp (32 MiB) running here; memory verified"), outb
    assert_runs(b, "B after its COMMIT was lost")
    assert_not_running(a, "A in-doubt")
    # No timer ends it: still in-doubt well past every timeout of the protocol.
    time.sleep(12)
    d, out = info(a)
    assert d["Migration status"].startswith("in-doubt"), out
    assert_not_running(a, "A still in-doubt")
    out = a.cmd("migrate_cancel")
    assert "error: past the point of no return" in out and "migrate_resolve" in out, out
    out = a.cmd("guest cont")
    assert "error:" in out, out
    resolve(a, "discard")
    assert "guest: none" in a.cmd("info guest")
    assert_runs(b, "B after A dropped its copy")


def test_go_lost_leaves_both_in_doubt_until_resolved(link):
    a, b, relay = link()
    mig = start(a)
    on(relay, "ab", "GO", mig, lambda: relay.cut("ab", "ba"))
    d, out = wait_status(a, ("in-doubt", "completed", "failed"), INDOUBT_TIMEOUT)
    assert d["Migration status"].startswith("in-doubt"), out
    db, outb = wait_status(b, ("in-doubt", "completed", "failed"), INDOUBT_TIMEOUT)
    assert db["Migration status"].startswith(f"in-doubt (from {IP_A}:"), outb
    assert "no GO or CANCEL 30 s after READY" in db["in-doubt"], outb
    assert_not_running(a, "A in-doubt")
    assert_not_running(b, "B in-doubt")
    resolve(b, "discard")
    assert "guest: none" in b.cmd("info guest")
    resolve(a, "resume")
    assert_runs(a, "A resumed by the operator")


def test_cancel_before_go_and_refused_after(link):
    a, b, relay = link()
    # Hold READY on its way back: A sits after END, before GO, and may
    # still take the guest back.
    mig = start(a)
    on(relay, "ba", "READY", mig, lambda: relay.set_delay("ba", 4.0))
    deadline = time.monotonic() + MIGRATE_TIMEOUT
    while not relay.fired("READY"):
        assert time.monotonic() < deadline, a.cmd("info migrate")
        time.sleep(0.05)
    out = a.cmd("migrate_cancel")
    assert "migration cancelled: cancelled by the operator; the guest runs here" in out, out
    relay.set_delay("ba", 0)
    assert_runs(a, "A after cancelling before GO")
    db, outb = wait_status(b, ("setup", "in-doubt"), 30)
    deadline = time.monotonic() + 30
    while "the source sent CANCEL" not in db.get("last connection", ""):
        assert time.monotonic() < deadline, outb
        time.sleep(0.2)
        db, outb = info(b)
    assert "guest: none" in b.cmd("info guest"), outb
    # Again, holding COMMIT: past GO the cancel is refused, and the
    # migration completes.
    mig = start(a)
    on(relay, "ba", "COMMIT", mig, lambda: relay.set_delay("ba", 3.0))
    deadline = time.monotonic() + MIGRATE_TIMEOUT
    while not relay.fired("COMMIT"):
        assert time.monotonic() < deadline, a.cmd("info migrate")
        time.sleep(0.05)
    out = a.cmd("migrate_cancel")
    assert re.search(r"^error: past the point of no return: GO went to 10\.0\.0\.2:4444 at \+\d+ ms", out, re.M), out
    relay.set_delay("ba", 0)
    d, out = wait_status(a, ("completed", "failed", "in-doubt"), MIGRATE_TIMEOUT)
    assert d["result"] == f"guest handed over to {IP_B}:{PORT} (memory verified)", out
    assert_runs(b, "B after the cancel was refused")


def test_destination_cancel_before_go_and_refused_after(link):
    a, b, relay = link()
    # Hold GO on its way: B sits after READY, and its operator may still
    # discard; A hears CANCEL before any COMMIT and resumes.
    mig = start(a)
    on(relay, "ab", "GO", mig, lambda: relay.set_delay("ab", 4.0))
    wait_until(lambda: relay.fired("GO"), MIGRATE_TIMEOUT, lambda: a.cmd("info migrate"))
    out = b.cmd("migrate_cancel")
    assert "migration cancelled: incoming guest discarded by the operator" in out, out
    assert "guest: none" in b.cmd("info guest")
    d, out = wait_status(a, ("failed", "completed", "in-doubt"), MIGRATE_TIMEOUT)
    assert d["result"] == "the destination answered CANCEL; the guest runs here again", out
    relay.set_delay("ab", 0)
    assert_runs(a, "A after B cancelled before GO")
    # Again, holding A's region hashes: B runs the guest, and its cancel
    # is refused; the migration completes.
    out = b.cmd(f"migrate_incoming tcp:0:{PORT}")
    assert "listening" in out, out
    mig = start(a)
    on(relay, "ba", "COMMIT", mig, lambda: relay.set_delay("ab", 4.0))
    wait_until(lambda: relay.fired("COMMIT"), MIGRATE_TIMEOUT, lambda: a.cmd("info migrate"))
    time.sleep(0.3)
    out = b.cmd("migrate_cancel")
    assert "error: past the point of no return: the guest runs here (verification continues)" in out, out
    relay.set_delay("ab", 0)
    d, out = wait_status(a, ("completed", "failed", "in-doubt"), MIGRATE_TIMEOUT)
    assert d["result"] == f"guest handed over to {IP_B}:{PORT} (memory verified)", out
    assert_runs(b, "B after its cancel was refused")


def test_downtime_budget(link):
    a, b, relay = link(**{"max-downtime": 1})
    start(a)
    d, out = wait_status(a, ("completed", "failed", "cancelled"), MIGRATE_TIMEOUT)
    assert re.search(r"^downtime budget exceeded \((\d+) ms, max-downtime 1 ms\)$", d["result"]), out
    assert_runs(a, "A after its downtime budget ran out")
    deadline = time.monotonic() + 30
    while "the source sent CANCEL" not in info(b)[0].get("last connection", ""):
        assert time.monotonic() < deadline, b.cmd("info migrate")
        time.sleep(0.2)
    assert "guest: none" in b.cmd("info guest")


def test_flipped_byte_is_caught_and_the_source_resumes(link):
    a, b, relay = link()
    b.cmd("migrate_set_parameter x-flip-gpa 0x600123")  # region 3
    start(a)
    d, out = wait_status(a, ("completed", "failed", "in-doubt"), MIGRATE_TIMEOUT)
    assert d["result"] == ("the destination answered NACK: 1 of 16 regions differ from the source's: 3 (0x600000);"
                           " the guest runs here again"), out
    assert_runs(a, "A after B's copy differed")
    deadline = time.monotonic() + 30
    while True:
        db, outb = info(b)
        if "regions differ" in db.get("last connection", ""):
            break
        assert time.monotonic() < deadline, outb
        time.sleep(0.2)
    assert db["last connection"] == ("NACK (memory differs after the switch-over): 1 of 16 regions differ from the"
                                     " source's: 3 (0x600000)"), outb
    assert "debug: flipped the byte at guest-physical 0x600123" in b.console_text()
    assert "guest: none" in b.cmd("info guest")
    # Once more: the discarded guest, its tables and both sets of region
    # hashes went back (the first incoming stream grows ferry's heap once).
    used = re.search(r"used [0-9.]+ MiB \((\d+) pages\)", b.cmd("info mem")).group(1)
    b.cmd("migrate_set_parameter x-flip-gpa 0x7ff001")  # region 3 again, last page
    start(a)
    d, out = wait_status(a, ("completed", "failed", "in-doubt"), MIGRATE_TIMEOUT)
    assert "1 of 16 regions differ from the source's: 3 (0x600000)" in d["result"], out
    wait_until(lambda: info(b)[0].get("connections") == "2", 30, lambda: b.cmd("info migrate"))
    out = b.cmd("info mem")
    assert re.search(r"used [0-9.]+ MiB \((\d+) pages\)", out).group(1) == used, f"used {used} pages before:\n{out}"


# ---------------------------------------------------------------------------
# The fault matrix (make check-slow): each phase x fault, with its outcome.
# ---------------------------------------------------------------------------

def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what()
        time.sleep(0.1)


def dirty_syncs(a):
    return int(info(a)[0].get("dirty sync count", "0"))


def transferred_kb(a):
    return int(info(a)[0].get("transferred ram", "0 kbytes").split()[0])


def b_listens_again(b):
    """B discarded its incoming guest and listens again."""
    wait_until(lambda: info(b)[0]["Migration status"].startswith("setup") and info(b)[0].get("last connection"),
               60, lambda: b.cmd("info migrate"))
    assert "guest: none" in b.cmd("info guest")


def outcome_source_keeps(a, b):
    d, out = wait_status(a, ("failed", "cancelled", "completed", "in-doubt"), INDOUBT_TIMEOUT)
    assert d["Migration status"].startswith("failed"), out
    assert_runs(a, "A")
    b_listens_again(b)
    return d["result"]


# (name, arm(a, b, relay, mig) -> None, outcome(a, b) -> str)
def arm_cut_at(direction, record, dirs):
    def arm(a, b, relay, mig):
        on(relay, direction, record, mig, lambda: relay.cut(*dirs))
    return arm


def arm_cut_when(pred, dirs=("ab", "ba")):
    def arm(a, b, relay, mig):
        wait_until(lambda: pred(a), MIGRATE_TIMEOUT, lambda: a.cmd("info migrate"))
        relay.cut(*dirs)
    return arm


def outcome_both_in_doubt(a, b):
    wait_status(a, ("in-doubt",), INDOUBT_TIMEOUT)
    wait_status(b, ("in-doubt",), INDOUBT_TIMEOUT)
    assert_not_running(a, "A in-doubt")
    assert_not_running(b, "B in-doubt")
    resolve(b, "discard")
    resolve(a, "resume")
    assert_runs(a, "A resumed")
    return "A and B in-doubt; resolved: B discard, A resume"


def outcome_dest_runs_source_in_doubt(verified):
    def outcome(a, b):
        d, out = wait_status(a, ("in-doubt", "completed", "failed"), INDOUBT_TIMEOUT)
        assert d["Migration status"].startswith("in-doubt"), out
        db, outb = wait_status(b, ("completed", "failed"), INDOUBT_TIMEOUT)
        assert db["Migration status"].startswith("completed"), outb
        assert ("memory verified" in db["result"]) == verified or verified is None, outb
        assert_runs(b, "B")
        assert_not_running(a, "A in-doubt")
        resolve(a, "discard")
        return f"B runs ({db['result'].split(';')[-1].strip()}); A in-doubt, resolved: discard"
    return outcome


MATRIX = [
    ("bulk: link cut", arm_cut_when(lambda a: transferred_kb(a) > 4096), outcome_source_keeps),
    ("round: link cut", arm_cut_when(lambda a: dirty_syncs(a) >= 2), outcome_source_keeps),
    ("END lost (A to B cut)", arm_cut_at("ab", "END", ("ab",)), outcome_source_keeps),
    ("READY lost (B to A cut)", arm_cut_at("ba", "READY", ("ba",)), outcome_source_keeps),
    ("GO lost (both cut)", arm_cut_at("ab", "GO", ("ab", "ba")), outcome_both_in_doubt),
    ("COMMIT lost (both cut)", arm_cut_at("ba", "COMMIT", ("ab", "ba")), outcome_dest_runs_source_in_doubt(None)),
    ("VERIFIED lost (B to A cut)", arm_cut_at("ba", "VERIFIED", ("ba",)),
     outcome_dest_runs_source_in_doubt(True)),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,arm,outcome", MATRIX, ids=[m[0] for m in MATRIX])
def test_fault(link, name, arm, outcome):
    # A limit of 1 ms keeps the stamp guest in its rounds for the cases
    # that cut there; the others switch over.
    in_rounds = name.startswith(("bulk", "round"))
    a, b, relay = link(**{"downtime-limit": 1 if in_rounds else 100})
    mig = start(a)
    arm(a, b, relay, mig)
    print(f"FAULT {name}: {outcome(a, b)}")


def test_duplicated_and_delayed_frames_change_nothing(link):
    # Every control record arrives twice, and one frame in 16 besides; B's
    # frames come 50 ms late. TCP drops the copies; the handshake sees each
    # record once.
    a, b, relay = link()
    relay.set_duplicate("ab", 16)
    relay.set_duplicate("ba", 16)
    relay.set_delay("ba", 0.05)
    mig = start(a)
    for d, names in (("ab", ("END", "GO")), ("ba", ("READY", "COMMIT", "VERIFIED"))):
        for n in names:
            on(relay, d, n, mig, lambda d=d: relay.dup_once(d))
    d, out = wait_status(a, ("completed", "failed", "in-doubt"), MIGRATE_TIMEOUT)
    assert d["result"] == f"guest handed over to {IP_B}:{PORT} (memory verified)", out
    assert all(relay.fired(n) for n in ("END", "GO", "READY", "COMMIT", "VERIFIED")), relay.seen
    assert_runs(b, "B")


KILLS = [
    # (name, record that triggers, direction, cut first, who dies)
    ("B dies in a round", None, None, True, "b"),
    ("A dies in a round", None, None, True, "a"),
    ("B dies after READY", "READY", "ba", True, "b"),
    ("A dies after GO", "GO", "ab", False, "a"),
    ("B dies after COMMIT", "COMMIT", "ba", True, "b"),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,record,direction,cut,who", KILLS, ids=[k[0] for k in KILLS])
def test_kill(link, name, record, direction, cut, who):
    a, b, relay = link(**{"downtime-limit": 100 if record else 1})
    fired = threading.Event()

    def act():
        if cut:
            relay.cut("ab", "ba")
        fired.set()
    mig = start(a)
    if record:
        on(relay, direction, record, mig, act)
    else:
        wait_until(lambda: dirty_syncs(a) >= 2, MIGRATE_TIMEOUT, lambda: a.cmd("info migrate"))
        act()
    assert fired.wait(MIGRATE_TIMEOUT)
    dead, alive = (a, b) if who == "a" else (b, a)
    dead.close()
    if alive is a:
        d, out = wait_status(a, ("failed", "in-doubt", "completed"), INDOUBT_TIMEOUT)
        if d["Migration status"].startswith("in-doubt"):
            assert_not_running(a, "A in-doubt")
            resolve(a, "resume")  # B is dead: it runs nowhere else
            res = "A in-doubt, resolved: resume"
        else:
            assert d["Migration status"].startswith("failed"), out
            res = f"A resumes ({d['result']})"
        assert_runs(a, "A")
    else:
        if record == "GO":
            db, outb = wait_status(b, ("completed", "failed"), INDOUBT_TIMEOUT)
            assert db["result"].startswith("guest running here, unverified"), outb
            assert_runs(b, "B")
            res = f"B runs ({db['result']})"
        else:
            b_listens_again(b)
            res = f"B discards ({info(b)[0]['last connection']}), listens again"
    print(f"KILL {name}: {res}")
