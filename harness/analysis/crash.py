"""Find kernel crash reports in a console log and say which test was running.

Pure functions over console lines; the patterns follow what LAVA/TuxRun and
syzkaller look for. One incident (e.g. BUG -> Oops -> panic) is reported once,
with the most severe kind it reached.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.analysis.ktap import MAX_LINE_LENGTH, strip_escapes
from harness.boot.guest.markers import STEP_BEGIN, STEP_END
from harness.record.run import CrashReport
from harness.record.status import CrashKind

# printk prefixes: "[    1.234567] ", "<4>[ 1.2] ", or nothing.
_PREFIX = re.compile(r"^(?:<\d+>)?(?:\[\s*\d+\.\d+\]\s?)?(?:\[\s*[CT]\d+\]\s?)?")

# (kind, pattern) in order of severity; the first match names the kind.
_PATTERNS: list[tuple[CrashKind, re.Pattern[str]]] = [
    (CrashKind.PANIC, re.compile(r"Kernel panic - not syncing")),
    (CrashKind.KASAN, re.compile(r"BUG: KASAN: ")),
    (CrashKind.KFENCE, re.compile(r"BUG: KFENCE: ")),
    (CrashKind.SOFT_LOCKUP, re.compile(r"BUG: soft lockup")),
    (CrashKind.HARD_LOCKUP, re.compile(r"Watchdog detected hard LOCKUP")),
    (CrashKind.HUNG_TASK, re.compile(r"INFO: task \S+ blocked for more than")),
    (CrashKind.RCU_STALL, re.compile(r"rcu: INFO: \S+ (?:self-)?detected stalls?")),
    (CrashKind.BUG, re.compile(r"kernel BUG at |BUG: (?!KASAN|KFENCE|soft lockup)")),
    (
        CrashKind.OOPS,
        re.compile(r"Oops: |Internal error: Oops|Unable to handle kernel|general protection fault"),
    ),
    (CrashKind.UBSAN, re.compile(r"UBSAN: ")),
    # "WARNING: CPU: 1 PID: 7 at f" (before 6.x), "WARNING: at f" and, since then,
    # "WARNING: mm/x.c:12 at f, CPU#1: comm/7" (kernel/panic.c __warn()).
    (CrashKind.WARNING, re.compile(r"WARNING: (?:CPU: \d+ PID: \d+ at|at |\S+:\d+ at )")),
]
_SEVERITY = {kind: i for i, (kind, _) in enumerate(_PATTERNS)}
# Only ever searched: "-[ cut here ]-" matches the same lines as "-+\[ cut here \]-+", and a
# long run of dashes is not rescanned from every dash.
_CUT_HERE = re.compile(r"-\[ cut here \]-")
_END = re.compile(r"---\[ end (?:trace|Kernel panic)")
_MAX_REPORT_LINES = 200
_PANIC_FOLLOWS_LINES = 40  # x86 repeats the register dump after "end trace"

_SUBTEST = re.compile(r"^(\s*)# Subtest: (\S+)")
# A KTAP result line: "ok N", then a space (name), or only whitespace and a "#" directive
# or the end. A lookahead, not "(?: ([^#]*?))?\s*(?:#.*)?$", which backtracks
# quadratically over a long run of spaces.
_RESULT = re.compile(r"^(\s*)(?:not )?ok (\d+)(?= |\s*(?:#|$))")
# Lines that carry test names (results, subtest headers): never a crash report,
# even for a test named after one ("ok 3 Kernel panic - not syncing test").
_TEST_NAME_LINE = re.compile(r"^\s*(?:(?:not )?ok \d|# Subtest: )")


def _console_text(raw: str) -> str:
    """A console line as the patterns see it: capped, escapes and printk prefix removed."""
    return strip_prefix(strip_escapes(raw[:MAX_LINE_LENGTH]))


def crash_kind(raw: str) -> str | None:
    """Kind of crash report a raw console line starts, or None (test-name lines never do)."""
    text = _console_text(raw)
    return None if _TEST_NAME_LINE.match(text) else classify_line(text)


def strip_prefix(line: str) -> str:
    return _PREFIX.sub("", line.rstrip("\r\n"), count=1)


def classify_line(text: str) -> CrashKind | None:
    for kind, pattern in _PATTERNS:
        if pattern.search(text):
            return kind
    return None


@dataclass
class _Suite:
    indent: int
    name: str
    last_case: int = 0


@dataclass
class RunningTestTracker:
    """Follows KTAP framing (and the guest init's step markers) line by line."""

    suites: list[_Suite] = field(default_factory=list)
    module: str | None = None

    def feed(self, text: str) -> None:
        if m := STEP_BEGIN.search(text):
            self.module = m.group(1)
            return
        if STEP_END.search(text):
            self.module = None
            return
        if m := _SUBTEST.match(text):
            indent = len(m.group(1))
            while self.suites and self.suites[-1].indent >= indent:
                self.suites.pop()
            self.suites.append(_Suite(indent, m.group(2)))
            return
        if m := _RESULT.match(text):
            indent = len(m.group(1))
            while self.suites and self.suites[-1].indent > indent:
                self.suites.pop()
            if self.suites and self.suites[-1].indent == indent:
                digits = m.group(2)  # int() refuses > 4300 digits; such a number is garbage
                self.suites[-1].last_case = int(digits) if len(digits) <= 18 else 10**18

    def current(self) -> str | None:
        if self.suites:
            path = ".".join(s.name for s in self.suites)
            return f"{path}.<case #{self.suites[-1].last_case + 1}>"
        if self.module:
            return f"module:{self.module}"
        return None


@dataclass(frozen=True)
class Evidence:
    """Text about a boot from somewhere other than its console: a machine's pstore
    record read back by its own kernel after the reboot (``source`` names the file,
    relative to the console log's directory)."""

    source: str
    lines: list[str]


@dataclass
class _Open:
    kind: CrashKind
    title: str
    line: int
    test: str | None
    lines: list[str]


def find_crashes(console_lines: Iterable[str]) -> list[CrashReport]:
    """Return one CrashReport per incident, in console order."""
    reports: list[CrashReport] = []
    tracker = RunningTestTracker()
    current: _Open | None = None
    pending_cut: tuple[int, str] | None = None  # "cut here" seen, title not yet

    def close() -> None:
        nonlocal current
        if current is None:
            return
        previous = reports[-1] if reports else None
        # "Kernel panic - not syncing: Fatal exception" right after an oops
        # is the same incident: keep the root cause's title, escalate its kind.
        if (
            previous is not None
            and current.kind is CrashKind.PANIC
            and current.line - (previous.line + len(previous.excerpt)) <= _PANIC_FOLLOWS_LINES
        ):
            previous.kind = CrashKind.PANIC
            previous.excerpt.extend(current.lines)
        else:
            reports.append(
                CrashReport(
                    kind=current.kind,
                    title=current.title,
                    test=current.test,
                    line=current.line,
                    excerpt=current.lines,
                )
            )
        current = None

    for index, raw in enumerate(console_lines, start=1):
        text = _console_text(raw)
        kind = None if _TEST_NAME_LINE.match(text) else classify_line(text)
        if current is not None:
            current.lines.append(text)
            if kind and _SEVERITY[kind] < _SEVERITY[current.kind]:
                current.kind = kind
                if kind is CrashKind.PANIC:
                    current.title = text.strip()
            if _END.search(text) or len(current.lines) >= _MAX_REPORT_LINES:
                close()
            continue
        if _CUT_HERE.search(text):
            pending_cut = (index, text)
            continue
        if kind:
            lines = [text]
            start = index
            if pending_cut and index - pending_cut[0] <= 2:
                lines = [pending_cut[1], text]
                start = pending_cut[0]
            current = _Open(kind, text.strip(), start, tracker.current(), lines)
            pending_cut = None
            if kind is CrashKind.PANIC and "end Kernel panic" in text:
                close()
            continue
        tracker.feed(text)
    close()
    return reports


def running_test(console_lines: Iterable[str]) -> str | None:
    """The test (or module) still running at the end of a console, named as in crash reports.

    Follows the same ``kbulk-init: step begin/end`` framing and KTAP position as
    :func:`find_crashes` does for the test a crash interrupted.
    """
    tracker = RunningTestTracker()
    for raw in console_lines:
        tracker.feed(_console_text(raw))
    return tracker.current()
