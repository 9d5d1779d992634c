"""The console's JSON mode, shaped like QEMU's QMP (kernel/qmp_cmds.c,
docs/console.md): the greeting and the capabilities negotiation, QEMU's
commands and their errors, malformed and over-long lines answered (never
silence), the human twin of every command, and a migration driven
through JSON on both ends with its events in order."""
import json
import re
import time

import pytest

from ferrylib import CMD_TIMEOUT, PROMPT, start_linked_pair

IP_A, IP_B, PORT = "10.0.7.1", "10.0.7.2", 4447


class Qmp:
    """One instance's console in JSON mode."""

    def __init__(self, inst):
        self.inst = inst
        self.events = []
        inst.send_line("mode json")
        self.greeting = self.read_object()
        assert "QMP" in self.greeting, self.greeting

    def read_object(self, timeout=CMD_TIMEOUT):
        """The next line that is a JSON object (the echo of `mode json` and
        blank lines are skipped); every line must parse."""
        deadline = time.monotonic() + timeout
        while True:
            self.inst.con.expect(r"[^\r\n]*\r*\n", timeout=max(1, deadline - time.monotonic()))
            text = self.inst.con.match.group(0).strip()
            if not text or text == "mode json":
                continue
            return json.loads(text)

    def send(self, line):
        self.inst.con.send(line + "\r")

    def answer(self, timeout=CMD_TIMEOUT):
        """The next answer; events read on the way are kept in order."""
        while True:
            obj = self.read_object(timeout)
            if "event" in obj:
                self.events.append(obj)
                continue
            assert "return" in obj or "error" in obj, obj
            return obj

    def execute(self, name, args=None, ident=None, timeout=CMD_TIMEOUT):
        req = {"execute": name}
        if args is not None:
            req["arguments"] = args
        if ident is not None:
            req["id"] = ident
        self.send(json.dumps(req))
        ans = self.answer(timeout)
        if ident is not None:
            assert ans.get("id") == ident, ans
        return ans

    def ok(self, name, args=None, timeout=CMD_TIMEOUT):
        ans = self.execute(name, args, timeout=timeout)
        assert "return" in ans, f"{name} {args}: {ans}"
        return ans["return"]

    def human(self):
        assert self.execute("human") == {"return": {}}
        self.inst.con.expect_exact(PROMPT, timeout=CMD_TIMEOUT)


def error_of(ans):
    assert "error" in ans, ans
    return ans["error"]["class"], ans["error"]["desc"]


def test_negotiation_commands_and_errors(shared_qemu):
    q = Qmp(shared_qemu)
    try:
        v = q.greeting["QMP"]["version"]
        assert v["qemu"] == {"micro": 0, "minor": 1, "major": 0}
        assert re.match(r"ferry 0\.1\.0 \(build \S+\)$", v["package"]), v
        assert q.greeting["QMP"]["capabilities"] == []
        # nothing before the negotiation
        assert error_of(q.execute("query-status", ident=1)) == (
            "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'")
        assert q.execute("qmp_capabilities", ident="c1") == {"return": {}, "id": "c1"}
        assert error_of(q.execute("qmp_capabilities"))[0] == "CommandNotFound"

        assert q.ok("query-version")["package"] == v["package"]
        st = q.ok("query-status")
        assert st["status"] in ("prelaunch", "running", "paused", "shutdown", "internal-error"), st
        assert st["running"] == (st["status"] == "running")
        names = {c["name"] for c in q.ok("query-commands")}
        for want in ("query-status", "query-version", "query-migrate", "query-migrate-capabilities",
                     "migrate-set-capabilities", "query-migrate-parameters", "migrate-set-parameters",
                     "migrate", "migrate-incoming", "migrate_cancel", "stop", "cont",
                     "human-monitor-command", "human"):
            assert want in names, want
        text = q.ok("human-monitor-command", {"command-line": "info version"})
        assert re.search(r"^ferry 0\.1\.0 \(build ", text, re.M), text
        assert q.ok("query-migrate") == {}  # no migration yet

        # the id comes back as it went, on errors too
        ans = q.execute("frobnicate", ident={"n": [1, 2]})
        assert error_of(ans) == ("CommandNotFound", "The command frobnicate has not been found")
        assert ans["id"] == {"n": [1, 2]}
        cases = [
            ('{"execute": ', "GenericError", "JSON parse error"),
            ('["query-status"]', "GenericError", "QMP input must be a JSON object"),
            ('{"execute": "query-status", "bogus": 1}', "GenericError", "QMP input member 'bogus' is unexpected"),
            ('{"execute": "query-status", "arguments": {"x": 1}}', "GenericError", "Parameter 'x' is unexpected"),
            ('{"execute": "migrate", "arguments": {"uri": 5}}', "GenericError",
             "Invalid parameter type for 'uri', expected: string"),
            ('{"execute": "migrate", "arguments": {}}', "GenericError", "Parameter 'uri' is missing"),
            ('{"execute": "migrate", "arguments": {"uri": "udp:1.2.3.4:5"}}', "GenericError",
             "bad URI 'udp:1.2.3.4:5': only tcp:ADDR:PORT is supported"),
            ('{"execute": "migrate-set-parameters", "arguments": {"downtime-limit": "300"}}', "GenericError",
             "Invalid parameter type for 'downtime-limit', expected: integer"),
            ('{"execute": "migrate-set-parameters", "arguments": {"downtime-limit": 99999999999}}', "GenericError",
             "downtime-limit"),
            ('{"execute": "migrate-set-parameters", "arguments": {"no-such": 1}}', "GenericError",
             "Parameter 'no-such' is unexpected"),
            ('{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "warp", '
             '"state": true}]}}', "GenericError", "Parameter 'capability' does not accept value 'warp'"),
            ('{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "zero-pages", '
             '"state": "yes"}]}}', "GenericError", "Invalid parameter type for 'state', expected: bool"),
            ('{"execute": "cont"}', "GenericError", ""),
            ('{"execute": "human-monitor-command", "arguments": {"command-line": "mode json"}}', "GenericError",
             "'mode' switches the console"),
            ("x" * 5000, "GenericError", "request longer than 4095 bytes"),
            ('{"execute": "guest-start", "arguments": {"size": 1048576}}', "GenericError",
             "Parameter 'workload' is missing"),
            ('{"execute": "guest-start", "arguments": {"workload": "stamp", "size": 1000}}', "GenericError",
             "Parameter 'size' must be a non-zero multiple of 1 MiB"),
            ('{"execute": "guest-start", "arguments": {"workload": "nosuch"}}', "GenericError",
             "usage: guest start WORKLOAD"),
            ('{"execute": "net-config", "arguments": {"address": "10.0.0.300/24"}}', "GenericError",
             "bad address"),
        ]
        for line, cls, desc in cases:
            q.send(line)
            got = error_of(q.answer())
            assert got[0] == cls and desc in got[1], f"{line[:80]!r}: {got}"

        # parameters and capabilities round-trip, and their human twins agree
        assert q.ok("query-migrate-parameters")["downtime-limit"] == 300
        q.ok("migrate-set-parameters", {"downtime-limit": 250, "max-bandwidth": 8 << 20})
        p = q.ok("query-migrate-parameters")
        assert (p["downtime-limit"], p["max-bandwidth"]) == (250, 8 << 20)
        assert re.search(r"downtime-limit: 250 ms",
                         q.ok("human-monitor-command", {"command-line": "info migrate_parameters"}))
        q.ok("migrate-set-parameters", {"downtime-limit": 300, "max-bandwidth": 0})
        q.ok("migrate-set-capabilities", {"capabilities": [{"capability": "auto-converge", "state": True},
                                                           {"capability": "xbzrle", "state": False}]})
        caps = {c["capability"]: c for c in q.ok("query-migrate-capabilities")}
        assert caps["auto-converge"]["state"] is True and caps["xbzrle"]["x-mode"] == "off"
        q.ok("migrate-set-capabilities", {"capabilities": [{"capability": "auto-converge", "state": False},
                                                           {"capability": "xbzrle", "state": True,
                                                            "x-mode": "auto"}]})
        caps = {c["capability"]: c for c in q.ok("query-migrate-capabilities")}
        assert caps["auto-converge"]["state"] is False and caps["xbzrle"]["x-mode"] == "auto"
    finally:
        q.human()
    assert "ferry 0.1.0" in shared_qemu.cmd("info version")


def test_migration_through_json_with_events(qemu):
    a, b, _ = start_linked_pair(qemu, "virtio-net-pci")
    qa, qb = Qmp(a), Qmp(b)
    qa.ok("qmp_capabilities")
    qb.ok("qmp_capabilities")
    qa.ok("net-config", {"address": f"{IP_A}/24"})
    qb.ok("net-config", {"address": f"{IP_B}/24"})
    assert qa.ok("query-guest") == {"backend": "npt"}
    qa.ok("guest-start", {"workload": "stamp", "size": 32 << 20})
    g = qa.ok("query-guest")
    assert (g["workload"], g["state"], g["size"]) == ("stamp", "running", 32 << 20), g
    qb.ok("migrate-incoming", {"uri": f"tcp:0:{PORT}"})
    assert qb.ok("query-status")["status"] == "prelaunch"
    qa.ok("migrate-set-parameters", {"downtime-limit": 300})
    qa.ok("migrate", {"uri": f"tcp:{IP_B}:{PORT}"})
    # a second migrate is refused while one runs
    assert error_of(qa.execute("migrate", {"uri": f"tcp:{IP_B}:{PORT}"}))[0] == "GenericError"
    deadline = time.monotonic() + 120
    while True:
        info = qa.ok("query-migrate")
        if info["status"] in ("completed", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert info["status"] == "completed", info
    assert info["downtime"] > 0 and info["ram"]["transferred"] > 32 << 20
    assert info["ram"]["dirty-sync-count"] >= 1 and info["x-passes"] and info["x-decisions"]
    assert any(d.startswith("round ") and "switch-over" in d for d in info["x-decisions"]), info["x-decisions"]
    # the destination's own account, and its guest runs
    deadline = time.monotonic() + 60
    while qb.ok("query-migrate")["status"] != "completed" and time.monotonic() < deadline:
        time.sleep(0.5)
    ib = qb.ok("query-migrate")
    assert ib["status"] == "completed" and ib["x-role"] == "destination", ib
    assert qb.ok("query-status") == {"running": True, "singlestep": False, "status": "running"}
    assert qa.ok("query-status")["status"] == "postmigrate"
    # the events, in order: each side's statuses, the source's passes before completion
    qa.ok("query-version")
    qb.ok("query-version")
    sa = [e["data"]["status"] for e in qa.events if e["event"] == "MIGRATION"]
    sb = [e["data"]["status"] for e in qb.events if e["event"] == "MIGRATION"]
    assert sa[:1] == ["setup"] and "active" in sa and sa[-1] == "completed", sa
    assert sb[-1] == "completed", sb
    passes = [e["data"]["pass"] for e in qa.events if e["event"] == "MIGRATION_PASS"]
    assert passes and passes == sorted(passes), passes
    done = next(i for i, e in enumerate(qa.events) if e["event"] == "MIGRATION" and e["data"]["status"] == "completed")
    assert any(e["event"] == "MIGRATION_PASS" for e in qa.events[:done])
    assert any(e["event"] == "STOP" for e in qa.events[:done]), qa.events
    assert any(e["event"] == "RESUME" for e in qb.events), qb.events
    for e in qa.events + qb.events:
        assert set(e["timestamp"]) == {"seconds", "microseconds"}
    stamps = [e["timestamp"]["seconds"] * 10**6 + e["timestamp"]["microseconds"] for e in qa.events]
    assert stamps == sorted(stamps)
    qa.human()
    qb.human()
    assert "completed" in a.cmd("info migrate")
