#!/usr/bin/env python3
"""Parse time and peak memory on pathological console lines and a large console.

    .venv/bin/python scripts/bench_parse.py [--scale 1.0] [--limit SECONDS] [--only NAME]

The last cases ("read: ...") parse a file the way `kbulk parse` does: a ConsoleFile
(re-read from disk on every analysis pass, lines cut as read, the --max-bytes cap at
its 64 MB default), so their memory is what parsing a log of that size costs end to
end: constant for noise outside KTAP, and for diagnostics inside it (each run of
diagnostic lines keeps its first and last ktap.MAX_DIAG_*_LINES lines).

Each case runs in its own child process (so one that never finishes is cut at
--limit and reported as such, and peak memory is that case's alone). A case
feeds the console to what `kbulk parse` and the live pipeline run on it:
analyze() (KTAP tree, crash reports, self-test lines, metrics, module steps).
Time is wall clock of analyze() only; memory is the child's peak RSS
(getrusage ru_maxrss) before analyze() (the input built) and after it, so
"parse mem" is what the parse added on top of holding the input.

Lines longer than ktap.MAX_LINE_LENGTH are cut before the patterns see them, so
the "under the cap" cases are the ones that show whether the patterns
themselves are linear.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

KiB = 1024


def _ktap(line: str) -> list[str]:
    return [
        "KTAP version 1",
        "1..1",
        "    KTAP version 1",
        "    # Subtest: suite",
        "    1..1",
        line,
        "    ok 1 case",
        "ok 1 suite",
    ]


def _result(line: str) -> list[str]:
    """``line`` as the result line of the only case."""
    lines = _ktap("")
    lines[5:7] = [line]
    return lines


def _large_console(lines: int) -> list[str]:
    """A KUnit-like console with printk timestamps: suites of 50 cases with diagnostics
    and metric lines, and one kernel WARNING report per suite."""
    body = ["kbulk-init: start", "KTAP version 1"]
    suites = max(1, lines // 160)
    body.append(f"1..{suites}")
    for s in range(suites):
        body += ["    KTAP version 1", f"    # Subtest: suite_{s}", "    1..50"]
        for c in range(1, 51):
            body.append(f"    # case_{c}: kbulk-metric: test=case_{c} ns={c * 7} n=3")
            body.append(f"    # case_{c}: EXPECTATION ok at lib/x.c:{c}")
            if c == 25:
                body += [
                    "------------[ cut here ]------------",
                    f"WARNING: CPU: 0 PID: {s} at mm/page_alloc.c:{c} f+0x1/0x2",
                    "---[ end trace 0000000000000000 ]---",
                ]
            body.append(f"    ok {c} case_{c}")
        body.append(f"ok {s + 1} suite_{s}")
    body.append("kbulk-init: done")
    return [f"[{i * 0.000123:12.6f}] {line}" for i, line in enumerate(body)]


def cases(scale: float) -> dict[str, Callable[[], list[str]]]:
    def n(size: int) -> int:
        return max(1, int(size * scale))

    return {
        # under the cap: the patterns themselves
        "result line + 60 KB spaces + x": lambda: _result("    ok 1 case" + " " * n(60_000) + "x"),
        "crash-pattern line + 60 KB spaces": lambda: ["ok 1 " + " " * n(60_000) + "x"],
        "metric + 50 KB token": lambda: _ktap("    # kbulk-metric: test=t " + "a" * n(50_000)),
        "60 KB of dashes": lambda: ["-" * n(60_000) + "x"],
        "60 KB ANSI CSI garbage": lambda: _ktap("    # " + "\x1b[" * n(30_000)),
        # over the cap: cut, with a warning
        "result line + 100 KB spaces + x": lambda: _result("    ok 1 c" + " " * n(100 * KiB) + "x"),
        "1 MB line": lambda: _ktap("    # " + "x" * n(1024 * KiB)),
        "1 MB metric token": lambda: _ktap("    # kbulk-metric: test=t " + "a" * n(1024 * KiB)),
        # volume
        "large console (25k lines)": lambda: _large_console(n(25_000)),
        "large console (100k lines)": lambda: _large_console(n(100_000)),
    }


def _child(name: str, scale: float, queue: mp.Queue) -> None:
    from harness.analysis.analyze import analyze

    lines = cases(scale)[name]()
    size = sum(len(line) + 1 for line in lines)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KiB
    start = time.perf_counter()
    found = analyze(lines, None, [])
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KiB
    cut = sum("truncated to" in w for w in found.ktap.warnings)
    queue.put((size, len(lines), elapsed, before, after, found.status.value, cut))


class _Stream:
    """A file-like source of ``total`` bytes of ``pattern`` repeated, made on demand
    (so the input itself takes no memory in the child)."""

    def __init__(self, pattern: bytes, total: int, head: bytes = b"") -> None:
        self.block = pattern * max(1, (1 << 20) // len(pattern))
        self.head = head
        self.left = total

    def read(self, size: int = -1) -> bytes:
        if self.head:
            head, self.head = self.head, b""
            self.left -= len(head)
            return head
        n = min(self.left, len(self.block) if size < 0 else min(size, len(self.block)))
        self.left -= n
        return self.block[:n]


def read_cases(scale: float) -> dict[str, Callable[[], _Stream]]:
    mb = int((1 << 20) * scale)
    noise = b"[   12.345678] virtio_blk virtio0: [vda] 2048 512-byte logical blocks\n"
    metric = b"[   12.345678]     # case_7: kbulk-metric: test=case_7 ns=49 n=3\n"
    ktap = b"KTAP version 1\n1..1\nok 1 first\n"
    # One KUnit case that never prints its result line (the log ends inside it).
    one_case = b"KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: suite\n    1..1\n"
    return {
        "read: 200 MB one line (no newline)": lambda: _Stream(b"x", 200 * mb),
        "read: 16 MB noise, no KTAP": lambda: _Stream(noise, 16 * mb),
        "read: 64 MB noise, no KTAP": lambda: _Stream(noise, 64 * mb),
        "read: 16 MB noise after KTAP": lambda: _Stream(noise, 16 * mb, ktap),
        "read: 64 MB noise after KTAP": lambda: _Stream(noise, 64 * mb, ktap),
        "read: 200 MB noise (64 MB cap)": lambda: _Stream(noise, 200 * mb, ktap),
        "read: 16 MB KTAP diagnostics": lambda: _Stream(metric, 16 * mb, b"KTAP version 1\n"),
        "read: 64 MB KTAP diagnostics": lambda: _Stream(metric, 64 * mb, b"KTAP version 1\n"),
        "read: 16 MB diagnostics of one case": lambda: _Stream(metric, 16 * mb, one_case),
        "read: 64 MB diagnostics of one case": lambda: _Stream(metric, 64 * mb, one_case),
    }


def _read_child(name: str, scale: float, queue: mp.Queue) -> None:
    import tempfile

    from harness.analysis.analyze import analyze
    from harness.analysis.reader import ConsoleFile

    stream = read_cases(scale)[name]()
    total = stream.left
    with tempfile.NamedTemporaryFile(prefix="bench-parse-") as log:
        while chunk := stream.read():
            log.write(chunk)
        log.flush()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KiB
        start = time.perf_counter()
        console = ConsoleFile(Path(log.name))  # what `kbulk parse` does, 64 MB default cap
        found = analyze(console, None, [])
        elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KiB
    cut = f"cut at {console.cut_at}" if console.cut_at else "whole"
    queue.put((total, len(console), elapsed, before, after, found.status.value, cut))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size")
    parser.add_argument("--limit", type=float, default=120.0, help="seconds per case")
    parser.add_argument("--only", help="run the cases whose name contains this")
    args = parser.parse_args()
    print(
        f"{'case':36} {'input':>9} {'lines':>7} {'time':>10} {'rss in':>8} {'rss out':>8} "
        f"{'parse mem':>9}  status, cut lines"
    )
    ctx = mp.get_context("fork")
    for name in cases(args.scale):
        if args.only and args.only not in name:
            continue
        queue: mp.Queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(name, args.scale, queue))
        proc.start()
        proc.join(args.limit)
        if proc.is_alive():
            proc.kill()
            proc.join()
            print(f"{name:36} {'':>9} {'> ' + str(int(args.limit)) + ' s':>9}  did not finish")
            continue
        size, count, elapsed, before, after, status, cut = queue.get()
        mib = KiB * KiB
        print(
            f"{name:36} {size / KiB:8.0f}K {count:7} {elapsed * 1000:8.1f}ms "
            f"{before / mib:7.1f}M {after / mib:7.1f}M {(after - before) / mib:8.1f}M  "
            f"{status}, {cut}"
        )
    print(
        f"\n{'kbulk parse reader + analyze':36} {'input':>9} {'lines':>7} {'time':>10} "
        f"{'rss in':>8} {'rss out':>8} {'parse mem':>9}  status, input"
    )
    for name in read_cases(args.scale):
        if args.only and args.only not in name:
            continue
        queue = ctx.Queue()
        proc = ctx.Process(target=_read_child, args=(name, args.scale, queue))
        proc.start()
        proc.join(args.limit)
        if proc.is_alive():
            proc.kill()
            proc.join()
            print(f"{name:36} did not finish in {args.limit} s")
            continue
        size, count, elapsed, before, after, status, longest = queue.get()  # longest: cut
        mib = KiB * KiB
        print(
            f"{name:36} {size / mib:8.0f}M {count:7} {elapsed * 1000:8.1f}ms "
            f"{before / mib:7.1f}M {after / mib:7.1f}M {(after - before) / mib:8.1f}M  "
            f"{status}, {longest}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
