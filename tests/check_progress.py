#!/usr/bin/python3
"""The progress line of `sales`, seen as a user sees it: under a pseudo-terminal.

Usage: check_progress.py SALES GEN_SALES SEND_LINES

On a terminal, a batch run over a file, a batch run over an event log, a Kappa replay, a served
Kappa view's first replay (--replay with --serve) and a Lambda start that catches up with its log
each draw a progress line on stderr (redrawn with \\r, its share growing, erased before the answer
or once the view serves); with stderr on a pipe, or with --quiet, not one control character is
written. The answers are the same either way. --progress-every 0 makes a
report due after every step of a run (an 8 MiB slice, a replay poll), so that a run of a few
MiB draws intermediate lines without depending on how fast this machine is."""
import json
import os
import pty
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SALES, GEN_SALES, SEND_LINES = sys.argv[1:4]
AMOUNT = rb"[0-9.]+(?:[kMGTP]| [KMGTP]?i?B)?"
DRAWN = re.compile(rb"\rsales: (" + AMOUNT + rb") / (" + AMOUNT + rb")\s+(\d+)%\s+" + AMOUNT + rb" rows")


def fail(msg):
    print("check_progress: " + msg, file=sys.stderr)
    sys.exit(1)


class OnTty:
    """args running with stdin/stdout/stderr on a new pseudo-terminal; a thread of this script
    collects the bytes written to it (in `out`), so that the script can talk to the program
    meanwhile (over HTTP) without the terminal's buffer filling up."""

    def __init__(self, args):
        self.args = args
        self.out = b""
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(args[0], args)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            self.out += chunk

    def kill_and_fail(self, msg):
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        fail(f"{self.args} {msg}; its terminal showed: {self.out[-2000:]!r}")

    def wait_until(self, test, what, timeout=120):
        """test(bytes written so far), once it is true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = test(self.out)
            if result:
                return result
            if not self.reader.is_alive():
                self.kill_and_fail(f"closed its terminal before it could {what}")
            time.sleep(0.05)
        self.kill_and_fail(f"did not {what} within {timeout} s")

    def wait_for(self, pattern, timeout=120):
        """The match of `pattern` (a bytes regex) in what the program wrote, once it appears."""
        return self.wait_until(lambda out: re.search(pattern, out), f"write {pattern!r}", timeout)

    def wait(self, timeout=120):
        """(exit code, bytes written to the terminal) once the program ended."""
        self.reader.join(timeout)
        if self.reader.is_alive():
            self.kill_and_fail(f"did not end within {timeout} s")
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status), self.out


def run_on_tty(args, until=None, then_signal=None, timeout=120):
    """Runs args on a new pseudo-terminal; returns (exit code, bytes written to it). With
    `until`, sends `then_signal` once those bytes appeared."""
    run = OnTty(args)
    if until is not None:
        run.wait_for(re.escape(until), timeout)
        os.kill(run.pid, then_signal)
    return run.wait(timeout)


def run_piped(args):
    r = subprocess.run(args, capture_output=True, timeout=120)
    if r.returncode != 0:
        fail(f"{args} exited {r.returncode}: {r.stderr.decode(errors='replace')}")
    return r.stdout, r.stderr


def answer_lines(tty_bytes):
    """The answer's CSV lines from a terminal's bytes (\\r\\n line ends; progress lines erased)."""
    text = tty_bytes.replace(b"\r\n", b"\n")
    lines = [l.rsplit(b"\x1b[K", 1)[-1] for l in text.split(b"\n")]  # what is left of a line after an erase
    return [l for l in lines if re.match(rb"^[a-z-]+,\d+,[0-9.]+$", l) or l == b"category,cnt,revenue"]


def check_lines(what, tty_bytes, answer_at, sampled=False):
    """Progress lines drawn, shares never going back, and the last one erased before the byte at
    `answer_at`. A run that reports after every step draws at least 2, one part way through; a
    `sampled` one (a status read on a clock) at least 1: which shares a sampler sees depends on
    how this machine schedules it (a busy one may show only 100%)."""
    drawn = DRAWN.findall(tty_bytes)
    if len(drawn) < (1 if sampled else 2):
        fail(f"{what}: too few progress lines on the terminal: {tty_bytes[:3000]!r}")
    shares = [int(p) for _, _, p in drawn]
    if shares != sorted(shares) or shares[-1] > 100:
        fail(f"{what}: the share went back or past 100%: {shares}")
    if not sampled and not any(0 < s < 100 for s in shares):
        fail(f"{what}: no line part way through: {shares}")
    last = tty_bytes.rfind(b"\rsales: ")
    if answer_at < last or b"\r\x1b[K" not in tty_bytes[last:answer_at]:
        fail(f"{what}: the progress line was not erased: {tty_bytes[last - 200:answer_at + 40]!r}")


def check_drawn(what, tty_bytes, expected_answer):
    # The last line drawn is erased before the answer comes.
    check_lines(what, tty_bytes, tty_bytes.find(b"category,cnt,revenue"))
    if answer_lines(tty_bytes) != expected_answer:
        fail(f"{what}: the answer on the terminal differs from the piped run's")


def check_served_replay(log, expected):
    """A served Kappa view (--replay with --serve) draws its first replay's progress from its
    status (progress_follower), erases it once the view serves, and serves the batch answer."""
    what = "served replay"
    run = OnTty([SALES, "by-category", "--replay", log, "--serve", "127.0.0.1:0", "--progress-every", "0"])
    url = "http://" + run.wait_for(rb"serving on http://([0-9.:]+)").group(1).decode()
    deadline = time.monotonic() + 120
    while json.load(urllib.request.urlopen(url + "/status", timeout=10))["serving_generation"] == 0:
        if time.monotonic() > deadline:
            run.kill_and_fail("did not catch up within 120 s")
        time.sleep(0.05)
    served = urllib.request.urlopen(url + "/by-category", timeout=10).read()
    # Not only at exit: the follower erases its line itself once the view serves.
    run.wait_until(lambda out: DRAWN.search(out) and b"\r\x1b[K" in out[out.rfind(b"\rsales: "):],
                   "draw a progress line and erase it", timeout=10)
    os.kill(run.pid, signal.SIGINT)
    code, tty = run.wait()
    if code != 0:
        fail(f"{what}: exited {code} on SIGINT: {tty[-2000:]!r}")
    check_lines(what, tty, tty.find(b"replayed and tailed"), sampled=True)
    if not re.search(rb"(?:\A|\n|\r\x1b\[K)sales: serving on", tty):
        fail(f"{what}: 'serving on' was printed at the end of a progress line: {tty[:600]!r}")
    if [l for l in served.split(b"\n") if l] != expected:
        fail(f"{what}: the served answer differs from the batch one: {served[:600]!r}")


def main():
    with tempfile.TemporaryDirectory(prefix="sluice_progress_") as tmp:
        data = os.path.join(tmp, "sales.csv")
        subprocess.run([GEN_SALES, "300000", data], check=True, capture_output=True)  # ~19 MB: 3 slices

        # Batch over a file, piped: the answer, and nothing but lines on stderr.
        out, err = run_piped([SALES, "by-category", "--input", data, "--threads", "1", "--progress-every", "0"])
        if b"\r" in err or b"\x1b" in err:
            fail(f"piped stderr holds control characters: {err!r}")
        expected = [l for l in out.split(b"\n") if l]

        code, tty = run_on_tty([SALES, "by-category", "--input", data, "--threads", "1", "--progress-every", "0"])
        if code != 0:
            fail(f"batch on a terminal exited {code}: {tty[-2000:]!r}")
        check_drawn("batch over a file", tty, expected)
        if not re.search(rb"MiB / 1[0-9]\.[0-9] MiB", tty):
            fail(f"batch over a file: no 'MiB / ~18 MiB' in the progress line: {tty[:600]!r}")

        code, tty = run_on_tty([SALES, "by-category", "--input", data, "--threads", "1", "--progress-every", "0",
                                "--quiet"])
        if code != 0 or b"\x1b" in tty or b"\rsales:" in tty:
            fail(f"--quiet on a terminal: exit {code}, or a progress line drawn: {tty[:600]!r}")
        if answer_lines(tty) != expected:
            fail("--quiet: the answer differs")

        # An event log, written by --lambda in segments of 1 MB (about 19 epochs).
        log = os.path.join(tmp, "log")
        lam = subprocess.Popen([SALES, "by-category", "--lambda", "--log", log, "--listen", "127.0.0.1:0",
                                "--serve", "127.0.0.1:0", "--connections", "1", "--segment-bytes", "1000000"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        endpoint = None
        for line in lam.stderr:
            m = re.search(rb"listening on (\S+)", line)
            if m:
                endpoint = m.group(1).decode()
                break
        if endpoint is None:
            fail("--lambda did not say where it listens")
        subprocess.run([SEND_LINES, data, "--to", endpoint], check=True, capture_output=True)
        for line in lam.stderr:
            if b"connections closed" in line:
                break
        lam.send_signal(signal.SIGINT)
        lam.communicate(timeout=60)
        if lam.returncode != 0:
            fail(f"--lambda exited {lam.returncode}")

        # Batch mode over the log, and a Kappa replay of it: lines, then the same answer.
        code, tty = run_on_tty([SALES, "by-category", "--log", log, "--threads", "1", "--progress-every", "0"])
        if code != 0:
            fail(f"batch over the log exited {code}: {tty[-2000:]!r}")
        check_drawn("batch over the log", tty, expected)
        code, tty = run_on_tty([SALES, "by-category", "--replay", log, "--progress-every", "0"])
        if code != 0:
            fail(f"replay exited {code}: {tty[-2000:]!r}")
        check_drawn("replay", tty, expected)
        check_served_replay(log, expected)

        # --lambda over the existing log: its catch-up draws lines, erased before it says it holds them.
        code, tty = run_on_tty([SALES, "by-category", "--lambda", "--log", log, "--listen", "127.0.0.1:0", "--serve",
                                "127.0.0.1:0", "--progress-every", "0"], until=b"listening on",
                               then_signal=signal.SIGINT)
        if code != 0:
            fail(f"--lambda catch-up exited {code}: {tty[-2000:]!r}")
        drawn = DRAWN.findall(tty)
        held = tty.find(b"holds 300000 records")
        if len(drawn) < 2 or held < 0 or b"\r\x1b[K" not in tty[tty.rfind(b"\rsales: "):held]:
            fail(f"--lambda catch-up: no progress lines erased before 'holds 300000 records': {tty[:3000]!r}")
    print("check_progress: batch, log, replay, served replay and Lambda catch-up draw on a terminal; pipes and --quiet get none")


main()
