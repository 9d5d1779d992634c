"""Migration under constraints (docs/migration.md, "Policy"): max-bandwidth
held on the wire and changed during a migration, a link that cannot keep
up (tools/netfault.py's bottleneck) with XBZRLE auto and with auto-converge,
the round limit with both no-convergence actions, the XBZRLE cache reserved
at `migrate` or the command refused, resized live, and capabilities agreed
in-band. Two instances on a dgram link through the relay, stream guests;
every decision the source made is read back from `info migrate` and every
pass from `info migrate iterations`.
"""
import re
import time

import pytest

from ferrylib import info_fields, start_linked_pair, wait_status

IP_A, IP_B, PORT = "10.0.0.1", "10.0.0.2", 4444
MIGRATE_TIMEOUT = 180  # s: a bound on a hung migration, not what is measured
MIB = 1 << 20


def info(inst, what="info migrate"):
    out = inst.cmd(what)
    return info_fields(out), out


def decisions(out):
    """The `decisions:` lines of `info migrate`, without their indent."""
    _, _, rest = out.partition("\ndecisions:")
    return [ln.strip() for ln in rest.splitlines()[1:] if ln.startswith("  ")]


def iterations(inst):
    """`info migrate iterations` as a list of dicts, one per pass."""
    out = inst.cmd("info migrate iterations")
    lines = out.strip().splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("round"))
    keys = lines[head].split()
    return [dict(zip(keys, ln.split())) for ln in lines[head + 1:]], out


def stamp_passes(inst):
    m = re.search(r"counters: passes (\d+), errors (\d+)", inst.cmd("info guest"))
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def assert_stamp_runs(inst, what):
    p0, _ = stamp_passes(inst)
    deadline = time.monotonic() + 30
    while True:
        time.sleep(1)
        p1, e1 = stamp_passes(inst)
        if p1 > p0 + 2 or time.monotonic() > deadline:
            break
    assert p1 > p0 + 2 and e1 == 0, f"{what}: passes {p0} -> {p1}, errors {e1}:\n{inst.cmd('info guest')}"


@pytest.fixture
def link(qemu):
    """A and B through the relay, networked; B listens."""
    made = []

    def make(guest, a_cmds=(), b_cmds=()):
        a, b, i = start_linked_pair(qemu, "virtio-net-pci", link="relay")
        relay = i["relay"]
        made.append(relay)
        assert "net:" in a.cmd(f"net config {IP_A}/24")
        assert "net:" in b.cmd(f"net config {IP_B}/24")
        for c in a_cmds:
            out = a.cmd(c)
            assert out.strip() == "", f"A: {c}: {out}"
        for c in b_cmds:
            out = b.cmd(c)
            assert out.strip() == "", f"B: {c}: {out}"
        assert "running" in a.cmd(f"guest start {guest}")
        assert "listening" in b.cmd(f"migrate_incoming tcp:0:{PORT}")
        return a, b, relay
    yield make
    for r in made:
        r.close()


def test_max_bandwidth_holds_on_the_wire_and_changes_live(link):
    # The stream's bytes on the wire (TCP payload from A to B, counted by
    # the relay) over every 1-second window stay within 5% of the cap, the
    # cap is used (not starved), and a new cap takes effect at once.
    a, b, relay = link("stamp 32M", a_cmds=["migrate_set_parameter max-bandwidth 2M"])
    relay.record_rate("ab")
    t0 = time.monotonic()
    a.cmd(f"migrate tcp:{IP_B}:{PORT}")
    time.sleep(5)
    t_change = time.monotonic()
    assert a.cmd("migrate_set_parameter max-bandwidth 6M").strip() == ""
    d, out = wait_status(a, ("completed", "failed"), MIGRATE_TIMEOUT)
    t_end = time.monotonic()
    print(out)
    assert d["Migration status"].startswith("completed"), out
    assert "max-bandwidth: 6291456 bytes/s (6.0 MiB/s)" in a.cmd("info migrate_parameters")
    before = relay.rates("ab", since=t0 + 0.5, until=t_change)
    after = relay.rates("ab", since=t_change + 0.1, until=t_end)
    assert before and after, (before, after)
    top_before = max(n for _, n in before)
    top_after = max(n for _, n in after)
    print(f"busiest second: {top_before / MIB:.2f} MiB at 2 MiB/s, {top_after / MIB:.2f} MiB at 6 MiB/s")
    assert top_before <= 1.05 * 2 * MIB, f"{top_before} bytes in a second at max-bandwidth 2M"
    assert top_after <= 1.05 * 6 * MIB, f"{top_after} bytes in a second at max-bandwidth 6M"
    # Not starved: on average the first seconds ran near the cap (a lost
    # frame costs TCP a retransmission timeout now and then), and the new
    # cap let more through than the old one could.
    early = [n for t, n in before if t < t_change - 1.5]
    assert sum(early) / len(early) >= 0.8 * 2 * MIB, before
    assert top_after > 1.5 * 2 * MIB, f"the new cap did not take effect: {top_after} bytes/s at most"
    # Both ends say how fast pages went.
    assert int(d["pages per second"]) > 0, out
    db, outb = wait_status(b, ("completed", "failed"), 30)
    assert db["Migration status"].startswith("completed") and int(db["pages per second"]) > 0, outb
    assert_stamp_runs(b, "B")


def test_xbzrle_auto_converges_on_a_slow_link(link):
    # A link of 8 MiB/s each way; the synthetic guest dirties faster than
    # that: auto turns XBZRLE on (and says why), the migration converges
    # within the downtime limit, and every pass is accounted for.
    a, b, relay = link("synthetic 64M")
    relay.set_rate("ab", 8 * MIB)
    relay.set_rate("ba", 8 * MIB)
    a.cmd(f"migrate tcp:{IP_B}:{PORT}")
    d, out = wait_status(a, ("completed", "failed"), MIGRATE_TIMEOUT)
    print(out)
    assert d["Migration status"].startswith("completed"), out
    log = decisions(out)
    assert any(re.match(r"round [01]: xbzrle on: dirty [\d.]+ MB/s > 50% of the link's [\d.]+ MB/s; \d+ MiB cache "
                        r"for a [\d.]+ MB dirty set$", x) for x in log), log
    assert re.match(r"round \d+: switch-over: [\d.]+ MB fits [\d.]+ MB/s x 300 ms$", log[-1]), log
    assert d["rounds"].endswith("stopped: converged"), out
    rows, text = iterations(a)
    print(text)
    rounds = int(d["rounds"].split(",")[0])
    # The bulk pass, each round, the final pass; each sent exactly the
    # pages it had to, one way or another.
    assert [int(r["round"]) for r in rows] == list(range(rounds + 2)), text
    for r in rows:
        sent = sum(int(r[k]) for k in ("zero", "raw", "xbzrle", "skipped"))
        assert sent == int(r["dirty"]), f"round {r['round']}: {sent} pages sent of {r['dirty']}:\n{text}"
    assert int(rows[0]["dirty"]) == 64 * 256, text
    assert any(int(r["xbzrle"]) > 0 for r in rows), text
    assert int(rows[-1]["dirty"]) == int(d["remaining at stop"].split()[0]), text
    assert int(d["xbzrle pages"].split()[0]) == sum(int(r["xbzrle"]) for r in rows), out
    assert int(d["cache in use"].split()[0]) <= int(d["cache size"].split()[0]), out
    db, outb = wait_status(b, ("completed", "failed"), 30)
    assert db["Migration status"].startswith("completed"), outb


def test_auto_converge_throttles_and_lifts(link):
    # XBZRLE off on a 4 MiB/s link: the stamp guest's 16 MB working set
    # never fits, the throttle rises in steps (each with its reason) and the
    # guest really gets that much less CPU; at the maximum it stalls and
    # no-convergence fail gives up: the throttle is lifted and the guest
    # runs at full speed on A again.
    a, b, relay = link("stamp 32M", a_cmds=[
        "migrate_set_capability xbzrle off", "migrate_set_capability auto-converge on",
        "migrate_set_parameter cpu-throttle-initial 40", "migrate_set_parameter cpu-throttle-increment 30",
        "migrate_set_parameter max-cpu-throttle 70", "migrate_set_parameter stall-iterations 3",
        "migrate_set_parameter no-convergence fail"])
    relay.set_rate("ab", 4 * MIB)
    relay.set_rate("ba", 4 * MIB)
    a.cmd(f"migrate tcp:{IP_B}:{PORT}")
    shares = []
    deadline = time.monotonic() + MIGRATE_TIMEOUT
    while True:
        d, out = info(a)
        g = a.cmd("info guest")
        m = re.search(r"throttle: (\d+)% \(auto-converge\): ran ([\d.]+) s of the last ([\d.]+) s", g)
        if m and float(m.group(3)) > 3:
            shares.append((int(m.group(1)), float(m.group(2)) / float(m.group(3))))
        if not d["Migration status"].startswith(("setup", "active")):
            break
        assert time.monotonic() < deadline, out
        time.sleep(1)
    print(out)
    print(shares)
    assert d["Migration status"].startswith("failed"), out
    assert re.match(r"cannot converge: stalled: no new low for 3 rounds at the maximum throttle 70%; "
                    r"expected downtime \d+ ms, over the 300 ms limit", d["result"]), out
    log = decisions(out)
    steps = [int(m.group(1)) for m in (re.match(r"round \d+: throttle (\d+)%: ", x) for x in log) if m]
    assert steps == [40, 70], log
    assert re.match(r"round \d+: fail: stalled", log[-1]), log
    # Throttled by p%, the guest ran at most (100 - p)% of the time (and
    # close to it: it always has work).
    assert shares, "never saw the throttle in `info guest`"
    for pct, share in shares:
        assert share <= (100 - pct) / 100 + 0.05, shares
        assert share >= (100 - pct) / 100 - 0.15, shares
    rows, text = iterations(a)
    assert max(int(r["thr%"]) for r in rows) == 70, text
    # Lifted: no throttle line, the guest runs (and checks) on A at full speed.
    g = a.cmd("info guest")
    assert "throttle:" not in g, g
    assert_stamp_runs(a, "A after giving up")
    db, outb = wait_status(b, ("setup",), 30)
    assert "guest: none" in b.cmd("info guest"), outb


def test_round_limit_switches_over_or_fails(link):
    # downtime-limit 1 ms: the stamp guest never fits. max-iterations 2 and
    # no-convergence fail: the source gives up after round 2 and keeps its
    # guest. Then switch-over: it stops the guest anyway and says by how much
    # the downtime went over.
    a, b, relay = link("stamp 32M", a_cmds=[
        "migrate_set_parameter downtime-limit 1", "migrate_set_parameter max-iterations 2",
        "migrate_set_parameter no-convergence fail", "migrate_set_capability xbzrle off"])
    a.cmd(f"migrate tcp:{IP_B}:{PORT}")
    d, out = wait_status(a, ("completed", "failed"), MIGRATE_TIMEOUT)
    print(out)
    assert re.match(r"cannot converge: max-iterations 2 reached; [\d.]+ MB left; expected downtime \d+ ms, "
                    r"over the 1 ms limit$", d["result"]), out
    assert d["rounds"].startswith("2"), out
    assert re.match(r"round 2: fail: max-iterations 2 reached", decisions(out)[-1]), out
    assert_stamp_runs(a, "A after giving up")
    wait_status(b, ("setup",), 30)
    assert "guest: none" in b.cmd("info guest")
    assert a.cmd("migrate_set_parameter no-convergence switch-over").strip() == ""
    a.cmd(f"migrate tcp:{IP_B}:{PORT}")
    d, out = wait_status(a, ("completed", "failed"), MIGRATE_TIMEOUT)
    print(out)
    assert d["Migration status"].startswith("completed"), out
    assert d["rounds"] == "2, stopped: max-iterations", out
    assert re.match(r"\d+ ms \(over the 1 ms limit\)$", d["downtime"]), out
    assert re.match(r"round 2: switch-over: max-iterations 2 reached; [\d.]+ MB left; expected downtime \d+ ms, "
                    r"over the 1 ms limit$", decisions(out)[-1]), out
    assert_stamp_runs(b, "B")


def test_cache_reserved_resized_live_and_capabilities_agreed(link):
    # B turns zero pages and the record CRC off: A offers both, B agrees to
    # neither, and A sends zero pages raw. A's cache budget is reserved at
    # `migrate`: 1 GiB does not fit this 256 MiB machine and the command is
    # refused with the numbers; 8 MiB is reserved, then cut to 2 MiB
    # during the migration, keeping what fits; then a live downtime-limit
    # (20 s) lets it converge.
    a, b, relay = link("stamp 32M", a_cmds=[
        "migrate_set_capability xbzrle on", "migrate_set_parameter downtime-limit 1",
        "migrate_set_parameter max-iterations 1000", "migrate_set_parameter stall-iterations 100",
        "migrate_set_parameter xbzrle-cache-size 1G"],
        b_cmds=["migrate_set_capability zero-pages off", "migrate_set_capability record-crc off"])
    out = a.cmd(f"migrate tcp:{IP_B}:{PORT}")
    assert re.match(r"error: cannot reserve the XBZRLE cache: xbzrle-cache-size 1024 MiB needs \d+ KiB, \d+ KiB "
                    r"free; lower xbzrle-cache-size or turn xbzrle off$", out.strip()), out
    assert info(a)[0]["Migration status"] == "none", a.cmd("info migrate")
    assert_stamp_runs(a, "A after the refusal")
    assert a.cmd("migrate_set_parameter xbzrle-cache-size 8M").strip() == ""
    a.cmd(f"migrate tcp:{IP_B}:{PORT}")
    deadline = time.monotonic() + 60
    while int(info(a)[0].get("rounds", "0").split(",")[0]) < 3:
        assert time.monotonic() < deadline, a.cmd("info migrate")
        time.sleep(0.5)
    caps = a.cmd("info migrate_capabilities")
    for want in ("xbzrle: on (peer agreed at the last HELLO: yes)", "zero-pages: on (peer agreed at the last HELLO: no)",
                 "record-crc: on (peer agreed at the last HELLO: no)", "auto-converge: off (this end only)"):
        assert want in caps, caps
    assert "zero-pages: off (peer agreed at the last HELLO: no)" in b.cmd("info migrate_capabilities")
    # Negotiated: cannot change now. Live: can.
    assert "it applies to the next one" in a.cmd("migrate_set_capability record-crc off")
    assert a.cmd("migrate_set_parameter xbzrle-cache-size 2M").strip() == ""
    d, out = info(a)
    assert d["cache size"] == "2097152 bytes", out
    assert any(re.match(r"round \d+: xbzrle cache 2 MiB: xbzrle-cache-size \(set during the migration\)", x)
               for x in decisions(out)), out
    time.sleep(2)
    d, out = info(a)
    assert int(d["cache in use"].split()[0]) == 2 * MIB, out
    assert a.cmd("migrate_set_parameter downtime-limit 20000").strip() == ""
    d, out = wait_status(a, ("completed", "failed"), MIGRATE_TIMEOUT)
    print(out)
    assert d["Migration status"].startswith("completed"), out
    assert d["duplicate"] == "0 pages", out  # no ZERO_PAGES: the untouched half went raw
    assert int(d["normal"].split()[0]) >= 8192, out
    # The live downtime-limit decided it.
    assert d["rounds"].endswith("converged"), out
    assert re.match(r"round \d+: switch-over: [\d.]+ MB fits [\d.]+ MB/s x 20000 ms$", decisions(out)[-1]), out
    assert_stamp_runs(b, "B")


CONSOLE_CASES = [
    ("migrate_set_parameter max-bandwidth 1",
     r"^error: bad max-bandwidth '1' \(0 \(unlimited\) or 262144\.\.1099511627776 bytes/s; K, M, G suffixes\)\n$"),
    ("migrate_set_parameter max-bandwidth 8M", r"^$"),
    ("migrate_set_parameter avail-switchover-bandwidth 100M", r"^$"),
    ("migrate_set_parameter cpu-throttle-initial 100", r"^error: bad cpu-throttle-initial '100' \(1\.\.99%\)\n$"),
    ("migrate_set_parameter max-iterations 0", r"^error: bad max-iterations '0' \(1\.\.1000\)\n$"),
    ("migrate_set_parameter no-convergence maybe", r"^error: bad no-convergence 'maybe' \(switch-over or fail\)\n$"),
    ("migrate_set_parameter no-convergence fail", r"^$"),
    ("migrate_set_parameter turbo 1",
     r"^error: unknown parameter 'turbo'; 'migrate_set_parameter' alone lists them\n$"),
    ("migrate_set_parameter", r"^usage: migrate_set_parameter NAME VALUE; NAME is one of:\n(  [a-z-]+ +.*\n){13}$"),
    ("migrate_set_capability auto-converge on", r"^$"),
    ("migrate_set_capability auto-converge auto", r"^error: bad value 'auto' for auto-converge \(on or off\)\n$"),
    ("info migrate_capabilities",
     r"^xbzrle: auto \(no peer yet\)\nzero-pages: on \(no peer yet\)\nrecord-crc: on \(no peer yet\)\n"
     r"verify-after: on \(no peer yet\)\nauto-converge: on \(this end only\)\n$"),
    ("info migrate_parameters",
     r"^max-bandwidth: 8388608 bytes/s \(8\.0 MiB/s\)\ndowntime-limit: 300 ms\n"
     r"avail-switchover-bandwidth: 104857600 bytes/s \(100\.0 MiB/s\)\nxbzrle-cache-size: 67108864 bytes\n"
     r"max-iterations: 30\nstall-iterations: 5\ncpu-throttle-initial: 20%\ncpu-throttle-increment: 10%\n"
     r"max-cpu-throttle: 99%\nno-convergence: fail\nmax-downtime: 0 \(no budget\)\nx-xbzrle-auto-fit: on\n"
     r"x-flip-gpa: 0x0 \(off\)\n"),
    ("info migrate iterations", r"^no pre-copy pass on record \(the source keeps them\)\n$"),
]


def test_parameter_console(qemu):
    inst = qemu(name="con")
    inst.wait_ready()
    for line, want in CONSOLE_CASES:
        out = inst.cmd(line)
        assert re.search(want, out), f"'{line}': expected /{want}/, got:\n{out}"
