"""Console input rate under QEMU: how fast ferry takes a line, against how
fast the same console writes, both measured in this run on one instance.
115200 baud carries 11,520 characters a second; QEMU's UART is not held
to it either way, so the output rate is the reference. Human lines are
echoed character by character; JSON mode's are not. Not a test: numbers
only (median of 5)."""
import json
import statistics
import sys
import tempfile
import time

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0] + "/tests/integration")
from ferrylib import PROMPT, Qemu  # noqa: E402

RUNS = 5


def timed(fn):
    t = time.monotonic()
    n = fn()
    return n / (time.monotonic() - t)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        q = Qemu(tmp, name="console")
        try:
            q.wait_ready()

            def output():
                q.send_line("help")
                q.con.expect_exact(PROMPT)
                return len(q.con.before)

            def human():
                line = "help " + "y" * 249
                q.send_line(line)
                q.con.expect_exact(PROMPT)
                return len(line)

            out = statistics.median(timed(output) for _ in range(RUNS))
            hum = statistics.median(timed(human) for _ in range(RUNS))
            q.send_line("mode json")
            q.con.expect("capabilities")
            q.con.send('{"execute": "qmp_capabilities"}\r')
            q.con.expect("return")

            def machine():
                line = json.dumps({"execute": "query-status", "id": "x" * 4000})
                q.con.send(line + "\r")
                q.con.expect(r"\"id\": \"x+\"\}\r*\n")
                return len(line)

            js = statistics.median(timed(machine) for _ in range(RUNS))
        finally:
            q.close()
    print("console under QEMU TCG (chars/s, median of 5)       rate    vs output")
    print(f"  output (help, {RUNS} runs)                        {out:7.0f}     1.00")
    print(f"  human line, 254 chars, echoed                 {hum:7.0f}     {hum / out:.2f}")
    print(f"  JSON request, 4030 chars                      {js:7.0f}     {js / out:.2f}")
    print(f"  (115200 baud: 11520; JSON input {js / 11520:.2f} of it)")


if __name__ == "__main__":
    main()
