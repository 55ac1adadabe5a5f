#!/usr/bin/env python3
"""Runs docs/cookbook.md, so that the cookbook cannot silently rot.

    check_cookbook.py COOKBOOK.md BUILD_DIR [--show]

What it reads in the markdown:
- every ```sh block is run, in document order, by bash (set -eo pipefail) in one scratch
  directory where `build` is a link to BUILD_DIR: later recipes may use the files earlier ones
  wrote. A block must exit 0.
- the ```text block right after a ```sh block is (an excerpt of) its output: every line of it but
  `...` must be a line of the block's stdout + stderr. Durations and rates vary from run to run,
  so a number followed by a time or rate unit (`0.029 s`, `1.5s`, `20ms`, `4907788 lines/s`,
  `213.3 MB/s`) matches any number there.
- a ```cpp block right after `<!-- from PATH -->` is an excerpt of that file (relative to the
  source tree): every line of it but `...` must be a line of the file (compared without the
  leading and trailing blanks), in the same order.
- the addresses 127.0.0.1:9000 and 127.0.0.1:9001 are replaced by free ports everywhere before
  anything runs, so the check can run beside other tests.

--show prints each block's real output (to write the excerpts from).
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

BLOCK_TIMEOUT_S = 60
FENCE = re.compile(r"^```(\w*)\s*$")
FROM = re.compile(r"^<!--\s*from\s+(\S+)\s*-->\s*$")
# A number and a unit of time or rate: what varies between runs.
VARYING = re.compile(r"\d+(?:\.\d+)?(\s?(?:ms|s|(?:lines|rows|events|MB)/s))(?![\w/])")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def blocks(text):
    """(kind, lines, source) for each fenced block; source is the path of a `<!-- from -->` just before it."""
    out = []
    lines = text.splitlines()
    i = 0
    last_from = None
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m and m.group(1):
            kind = m.group(1)
            j = i + 1
            while j < len(lines) and not FENCE.match(lines[j]):
                j += 1
            if j == len(lines):
                sys.exit(f"check_cookbook: line {i + 1}: a ```{kind} block is never closed")
            out.append((kind, lines[i + 1:j], last_from, i + 1))
            last_from = None
            i = j + 1
            continue
        f = FROM.match(lines[i])
        if f:
            last_from = f.group(1)
        elif lines[i].strip():
            last_from = None
        i += 1
    return out


def run_block(script, cwd):
    """(exit status or None on a timeout, stdout + stderr). The block runs in a process group of
    its own, killed afterwards, so that a server it started in the background never outlives it."""
    p = subprocess.Popen(["bash", "-c", script], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=BLOCK_TIMEOUT_S)
        status = p.returncode
    except subprocess.TimeoutExpired:
        status = None
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if status is None:
        out, _ = p.communicate()
    return status, out


def normalized(line):
    return VARYING.sub(lambda m: "<N>" + m.group(1), line.rstrip())


def check_output(expected, actual, where):
    got = {normalized(l) for l in actual.splitlines()}
    missing = [l for l in expected if l.strip() != "..." and normalized(l) not in got]
    return [f"{where}: not in the output: {l!r}" for l in missing]


def check_excerpt(excerpt, source_root, path, where):
    full = os.path.join(source_root, path)
    try:
        with open(full, encoding="utf-8") as f:
            file_lines = [l.strip() for l in f.read().splitlines()]
    except OSError as e:
        return [f"{where}: cannot read {path}: {e}"]
    at = 0
    for line in excerpt:
        want = line.strip()
        if want in ("", "..."):
            continue
        try:
            at = file_lines.index(want, at) + 1
        except ValueError:
            return [f"{where}: not in {path} (in this order): {line!r}"]
    return []


def main():
    args = [a for a in sys.argv[1:] if a != "--show"]
    show = "--show" in sys.argv[1:]
    if len(args) != 2:
        sys.exit(__doc__)
    cookbook, build_dir = os.path.abspath(args[0]), os.path.abspath(args[1])
    source_root = os.path.dirname(os.path.dirname(cookbook))
    with open(cookbook, encoding="utf-8") as f:
        text = f.read()
    for address in ("127.0.0.1:9000", "127.0.0.1:9001"):
        text = text.replace(address, f"127.0.0.1:{free_port()}")

    if "curl " in text and shutil.which("curl") is None:
        sys.exit("check_cookbook: the cookbook's commands need curl (scripts/deps.sh installs it)")

    failures = []
    runs = 0
    with tempfile.TemporaryDirectory(prefix="cookbook.") as scratch:
        os.symlink(build_dir, os.path.join(scratch, "build"))
        found = blocks(text)
        output = None
        for n, (kind, lines, source, line_no) in enumerate(found):
            where = f"cookbook.md:{line_no}"
            if kind == "sh":
                script = "set -eo pipefail\n" + "\n".join(lines) + "\n"
                started = time.monotonic()
                status, output = run_block(script, scratch)
                runs += 1
                if show:
                    print(f"==== {where} ({time.monotonic() - started:.2f} s, exit {status})\n{output}")
                if status is None:
                    failures.append(f"{where}: still running after {BLOCK_TIMEOUT_S} s; output:\n{output}")
                    output = None
                elif status != 0:
                    failures.append(f"{where}: exit status {status}; output:\n{output}")
                    output = None
                continue
            if kind == "text" and n > 0 and found[n - 1][0] == "sh":
                if output is not None:
                    failures += check_output(lines, output, where)
            elif kind == "cpp" and source:
                failures += check_excerpt(lines, source_root, source, where)
            output = None

    if runs == 0:
        failures.append("no ```sh block found")
    for f in failures:
        print(f"check_cookbook: {f}", file=sys.stderr)
    print(f"check_cookbook: {runs} command blocks run, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
