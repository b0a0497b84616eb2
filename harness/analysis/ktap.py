"""Pure KTAP / TAP parser for kernel console logs (no I/O, never raises on garbage).

The tree-building rules follow kunit_tool's ``tools/testing/kunit/kunit_parser.py``
(Linux 7.2) so that statuses and counts agree with it on the kernel's own corpus.
On top of that this module:

* finds *several* top-level documents in one console (the boot-time KUnit run
  and every test module loaded later prints its own ``KTAP version 1`` / ``1..N``),
  interleaved with unrelated kernel messages; their top-level tests are merged
  under one ``main`` root;
* uses indentation as an extra end-of-subtest signal (a result line indented less
  than the subtest's header closes it), so plan-less, name-less KTAP v1 subtests
  are not swallowed up to the end of the log as they are by kunit_tool;
* treats a subtest whose result line never came because the output ended as
  CRASH (kunit_tool calls an unnamed one NO_TESTS), and propagates a failed child
  to its parent (kunit_tool only propagates crashes);
* knows XFAIL (``# XFAIL`` and ``SKIP``/``TODO`` reasons starting with "XFAIL");
* bounds nesting depth and the number of synthesised "missing" tests so that
  hostile input cannot exhaust the stack or memory.
"""

from __future__ import annotations

import collections
import enum
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_LINE_LENGTH",
    "MAX_MISSING",
    "Counts",
    "KtapDocument",
    "Metric",
    "TestNode",
    "TestStatus",
    "cap_line",
    "extract_ktap_lines",
    "metrics_from",
    "parse_console",
    "parse_ktap",
    "running_test_at",
    "strip_escapes",
]

MAX_DEPTH = 64  # deeper "KTAP version"/"# Subtest:" lines are kept as diagnostics
MAX_MISSING = 10_000  # cap on synthesised CRASH nodes for a garbage plan like 1..99999999
# Console lines longer than this are cut (with a warning) before any pattern sees them;
# no kernel or KTAP line comes near it, and it bounds the work and memory per line.
MAX_LINE_LENGTH = 64 * 1024
# A run of consecutive diagnostic lines (what a test prints between two KTAP lines) keeps
# its first MAX_DIAG_HEAD_LINES and last MAX_DIAG_TAIL_LINES lines, each end at most
# MAX_DIAG_BYTES characters; the lines in between are replaced by one marker line and a
# warning on the test. A test's diagnostics are a few such runs, so the tree's memory
# depends on the number of tests, not on how much each prints. No real test comes near
# it (the largest KUnit logs print a few hundred lines per case).
MAX_DIAG_HEAD_LINES = 2000
MAX_DIAG_TAIL_LINES = 2000
MAX_DIAG_BYTES = 1024 * 1024

KTAP_VERSIONS = (1,)
TAP_VERSIONS = (13, 14)


class TestStatus(enum.StrEnum):
    """Outcome of one test (leaf or suite)."""

    __test__ = False  # not a pytest test class

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    CRASH = "crash"  # planned but missing, or no result line because the output ended
    NO_TESTS = "no_tests"
    XFAIL = "xfail"  # SKIP/TODO whose reason starts with "XFAIL", or an XFAIL directive


@dataclass
class Counts:
    """Leaf counts of a (sub)tree, as kunit_tool's TestCounts plus xfail."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    crashed: int = 0
    xfail: int = 0
    errors: int = 0  # parse problems (warnings) in the subtree

    def total(self) -> int:
        return self.passed + self.failed + self.skipped + self.crashed + self.xfail

    def add(self, other: Counts) -> None:
        self.passed += other.passed
        self.failed += other.failed
        self.skipped += other.skipped
        self.crashed += other.crashed
        self.xfail += other.xfail
        self.errors += other.errors

    def add_status(self, status: TestStatus) -> None:
        match status:
            case TestStatus.PASS:
                self.passed += 1
            case TestStatus.FAIL:
                self.failed += 1
            case TestStatus.SKIP:
                self.skipped += 1
            case TestStatus.XFAIL:
                self.xfail += 1
            case TestStatus.CRASH:
                self.crashed += 1
            case _:
                pass  # NO_TESTS counts nothing

    def status(self) -> TestStatus:
        """Aggregate status (kunit_tool's TestCounts.get_status, crash first)."""
        if self.crashed:
            return TestStatus.CRASH
        if self.failed:
            return TestStatus.FAIL
        if self.passed:
            return TestStatus.PASS
        if self.xfail:
            return TestStatus.XFAIL
        if self.skipped:
            return TestStatus.SKIP
        return TestStatus.NO_TESTS


@dataclass
class TestNode:
    """One test: a leaf case, or a suite/parent with ``subtests``."""

    __test__ = False  # not a pytest test class

    name: str
    status: TestStatus
    directive: str | None = None  # text after "#" on the result line, e.g. "SKIP reason"
    diagnostics: list[str] = field(default_factory=list)
    subtests: list[TestNode] = field(default_factory=list)
    planned: int | None = None  # from "1..N"
    first_line: int | None = None  # 1-based console line where this test's output starts
    last_line: int | None = None  # its result line, or the last line seen if it has none
    number: int | None = None  # number on its result line (or planned slot if missing)
    reported: TestStatus | None = None  # status from its own result line; None if missing
    duration: float | None = None  # seconds, from printk timestamps when available
    warnings: list[str] = field(default_factory=list)  # parse problems attached here

    @property
    def is_leaf(self) -> bool:
        return not self.subtests

    @property
    def reason(self) -> str:
        """Directive text without its keyword (the SKIP/TODO/XFAIL reason)."""
        if not self.directive:
            return ""
        parts = self.directive.split(maxsplit=1)
        if parts[0].upper() in _DIRECTIVE_KEYWORDS:
            return parts[1] if len(parts) > 1 else ""
        return self.directive

    def children_counts(self) -> Counts:
        """The summed counts of the subtests (this node's own result left out)."""
        total = Counts()
        for sub in self.subtests:
            total.add(sub.counts())
        return total

    def counts(self) -> Counts:
        """Recursive leaf counts, with kunit_tool's rules for suites.

        A suite contributes itself only when it has no counted children, or when its
        own result line is worse than its children (kunit_tool counts a "not ok"
        suite with passing cases as one failure; we extend that to skipped/xfail
        children and to a suite that crashed after all its cases finished).
        """
        children = self.children_counts()
        own = Counts(errors=len(self.warnings))
        own.add(children)
        child_status = children.status()
        if children.total() == 0:
            own.add_status(self.status)
        elif self.status is TestStatus.FAIL and child_status in _OK_STATUSES:
            own.failed += 1
        elif self.status is TestStatus.CRASH and child_status is not TestStatus.CRASH:
            own.crashed += 1
        return own

    def walk(self) -> Iterator[tuple[list[str], TestNode]]:
        """Depth-first (pre-order) walk of all descendants with their name paths.

        The node itself is not yielded; paths are relative to it, so walking the
        root gives ``["suite"]``, ``["suite", "case"]``, ... Iterative, so any depth
        is fine.
        """
        stack: list[tuple[list[str], TestNode]] = [
            ([sub.name], sub) for sub in reversed(self.subtests)
        ]
        while stack:
            path, node = stack.pop()
            yield path, node
            stack.extend(([*path, sub.name], sub) for sub in reversed(node.subtests))


_OK_STATUSES = (TestStatus.PASS, TestStatus.SKIP, TestStatus.XFAIL)
_DIRECTIVE_KEYWORDS = frozenset({"SKIP", "TODO", "XFAIL", "XPASS", "TIMEOUT", "ERROR"})


@dataclass
class KtapDocument:
    """All KTAP output of one console; ``root`` is the synthetic "main" test."""

    root: TestNode
    warnings: list[str] = field(default_factory=list)
    complete: bool = True  # False if output ended before plans/subtests were finished

    @property
    def status(self) -> TestStatus:
        return self.root.status

    def counts(self) -> Counts:
        return self.root.counts()

    def walk(self) -> Iterator[tuple[list[str], TestNode]]:
        return self.root.walk()


@dataclass
class Metric:
    """One ``# kbulk-metric: test=<name> key=value ...`` diagnostic line."""

    test_path: list[str]  # path of the KTAP test whose log holds the line
    test: str  # the test= field (defaults to the KTAP test's name)
    values: dict[str, float | str]


# --------------------------------------------------------------------------- lines

_VERSION_RE = re.compile(r"^\s*(KTAP|TAP) version (\d+)$")
_HEADER_RE = re.compile(r"^\s*# Subtest: (.*)$")
_PLAN_RE = re.compile(r"^\s*1\.\.(\d+)")  # no end anchor, as kunit_tool ("1..3 # x")
_RESULT_RE = re.compile(r"^\s*(ok|not ok) (\d+)(?:\s+(.*))?$")
# "#" starting the directive: at the start or after whitespace, so "test#1" stays a name.
_DIRECTIVE_SPLIT_RE = re.compile(r"(?:^|\s)#")


class _Kind(enum.Enum):
    VERSION = enum.auto()
    HEADER = enum.auto()
    PLAN = enum.auto()
    RESULT = enum.auto()
    OTHER = enum.auto()


@dataclass(frozen=True, slots=True)
class _Result:
    ok: bool
    number: int
    name: str
    directive: str | None


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    text: str  # printk prefix already stripped, trailing whitespace removed
    indent: int  # width of leading whitespace (tabs expanded)
    kind: _Kind
    value: int = 0  # version number or plan count
    name: str = ""  # "# Subtest:" name
    result: _Result | None = None
    dropped: int = 0  # a marker standing for this many dropped diagnostic lines


def _safe_int(digits: str) -> int:
    # Python refuses int() of >4300 digits; any such number is garbage anyway.
    return int(digits) if len(digits) <= 18 else 10**18


def _indent_width(text: str) -> int:
    stripped = text.lstrip()
    return len(text[: len(text) - len(stripped)].expandtabs(8))


def _parse_result(ok: str, number: str, rest: str | None) -> _Result:
    rest = rest or ""
    if rest.startswith("- "):  # TAP's optional "ok 1 - name"
        rest = rest[2:]
    split = _DIRECTIVE_SPLIT_RE.search(rest)
    if split is None:
        name, directive = rest, None
    else:
        name, directive = rest[: split.start()], rest[split.end() :].strip() or None
    return _Result(ok == "ok", _safe_int(number), name.strip(), directive)


def _classify(number: int, text: str) -> _Line:
    text = text.rstrip()
    indent = _indent_width(text)
    if m := _VERSION_RE.match(text):
        return _Line(number, text, indent, _Kind.VERSION, _safe_int(m[2]), name=m[1])
    if m := _HEADER_RE.match(text):
        return _Line(number, text, indent, _Kind.HEADER, name=m[1])
    if m := _PLAN_RE.match(text):
        return _Line(number, text, indent, _Kind.PLAN, _safe_int(m[1]))
    if m := _RESULT_RE.match(text):
        return _Line(number, text, indent, _Kind.RESULT, result=_parse_result(m[1], m[2], m[3]))
    return _Line(number, text, indent, _Kind.OTHER)


def _dedent(text: str, width: int) -> str:
    """Remove up to ``width`` columns of leading whitespace (keeps relative indent)."""
    i = col = 0
    while i < len(text) and col < width and text[i] in " \t":
        col = (col // 8 + 1) * 8 if text[i] == "\t" else col + 1
        i += 1
    return text[i:]


def _result_status(result: _Result) -> TestStatus:
    keyword, _, reason = (result.directive or "").partition(" ")
    keyword = keyword.upper()
    xfail_reason = reason.lstrip().upper().startswith("XFAIL")
    if keyword == "XFAIL" or (keyword in ("SKIP", "TODO") and xfail_reason):
        return TestStatus.XFAIL
    if keyword == "SKIP":  # either "ok" or "not ok" may carry SKIP (KTAP spec)
        return TestStatus.SKIP
    # TODO/TIMEOUT/ERROR/unknown: fall back to ok / not ok like kunit_tool.
    return TestStatus.PASS if result.ok else TestStatus.FAIL


# ------------------------------------------------------------------------- parser


class _Parser:
    """Recursive-descent parser mirroring kunit_parser.parse_test()."""

    def __init__(self, timestamps: Mapping[int, float], warnings: list[str]) -> None:
        self._ts = timestamps
        self._doc_warnings = warnings
        self._lines: Sequence[_Line] = ()
        self._pos = 0
        self.last_line: int | None = None  # number of the last consumed line
        self.truncated = False  # output ended while a plan/subtest was open
        self._missing_budget = MAX_MISSING

    # stream helpers
    def _peek(self) -> _Line | None:
        return self._lines[self._pos] if self._pos < len(self._lines) else None

    def _pop(self) -> _Line:
        line = self._lines[self._pos]
        self._pos += 1
        self.last_line = line.number
        return line

    def _warn(self, node: TestNode, line: int | None, message: str) -> None:
        text = f"line {line}: {message}" if line is not None else message
        node.warnings.append(text)
        self._doc_warnings.append(text)

    def _structural(self, line: _Line, depth: int) -> bool:
        if line.kind is _Kind.OTHER:
            return False
        return not (line.kind in (_Kind.VERSION, _Kind.HEADER) and depth > MAX_DEPTH)

    def _diag(self, depth: int, node: TestNode) -> list[_Line]:
        """Consume non-structural lines (kunit_parser.parse_diagnostic)."""
        out: list[_Line] = []
        while (line := self._peek()) is not None and not self._structural(line, depth):
            if line.kind is not _Kind.OTHER:
                self._warn(node, line.number, f"nesting deeper than {MAX_DEPTH}; kept as text")
            out.append(self._pop())
        return out

    def _header_follows_diag(self, depth: int) -> bool:
        """Whether non-structural lines, then a subtest header, come next."""
        pos = self._pos
        while pos < len(self._lines) and not self._structural(self._lines[pos], depth):
            pos += 1
        if pos == self._pos or pos >= len(self._lines):
            return False
        following = self._lines[pos]
        return following.kind is _Kind.HEADER

    def _take(self, kind: _Kind, depth: int) -> _Line | None:
        line = self._peek()
        if line is not None and line.kind is kind and self._structural(line, depth):
            return self._pop()
        return None

    @staticmethod
    def _names_result(line: _Line | None, name: str) -> bool:
        """kunit_parser.peek_test_name_match: a result line carrying ``name``."""
        return (
            line is not None
            and line.result is not None
            and bool(name)
            and (line.result.name == name)
        )

    def _closes_block(self, node: TestNode, block_indent: int) -> bool:
        line = self._peek()
        if line is None or line.result is None:
            return False
        # Our addition: a result line indented less than the block's header ends it.
        return self._names_result(line, node.name) or line.indent < block_indent

    # grammar
    def parse_document(self, lines: Sequence[_Line]) -> TestNode:
        self._lines, self._pos = lines, 0
        return self._parse_test(0, [], is_subtest=False, depth=0, start=None)

    def _parse_test(
        self,
        expected_num: int,
        log: list[_Line],
        *,
        is_subtest: bool,
        depth: int,
        start: int | None,
    ) -> TestNode:
        node = TestNode(name="", status=TestStatus.CRASH, number=expected_num or None)
        raw = [*log, *self._diag(depth, node)]
        headers = self._parse_headers(node, raw, is_subtest=is_subtest, depth=depth)
        is_parent = not is_subtest or any(h.kind is not _Kind.PLAN for h in headers)
        block_indent = max((h.indent for h in headers), default=0)
        if is_parent:
            self._parse_subtests(node, raw, is_subtest=is_subtest, depth=depth, indent=block_indent)
        result_line: _Line | None = None
        ended = False  # output ended before this test's result line
        if is_subtest:
            result_line, ended = self._parse_own_result(node, raw, expected_num, is_parent, depth)
        empty = is_parent and not node.subtests
        if empty and not ended and node.status in (TestStatus.CRASH, TestStatus.PASS):
            # kunit_tool: a parent without subtests ran no tests.
            node.status = TestStatus.NO_TESTS
            self._warn(node, self.last_line, f"0 tests run in {node.name or 'test'!r}")
        if is_subtest and node.subtests:
            self._bubble_up(node)
        own_indent = result_line.indent if result_line and not is_parent else block_indent
        self._finish(node, raw, headers, result_line, own_indent, start)
        return node

    def _parse_headers(
        self, node: TestNode, raw: list[_Line], *, is_subtest: bool, depth: int
    ) -> list[_Line]:
        headers: list[_Line] = []
        if version := self._take(_Kind.VERSION, depth):
            headers.append(version)
            self._check_version(node, version)
            if is_subtest and self._header_follows_diag(depth):
                # Our addition: a kernel message printed between a subtest's KTAP
                # version line and its "# Subtest:" line (another CPU's printk) is a
                # diagnostic; kunit_tool loses the nesting there and reports a crash.
                raw.extend(self._diag(depth, node))
        if is_subtest and (header := self._take(_Kind.HEADER, depth)):
            headers.append(header)
            node.name = header.name
        if not is_subtest:
            node.name = "main"
        raw.extend(self._diag(depth, node))
        if plan := self._take(_Kind.PLAN, depth):
            headers.append(plan)
            node.planned = plan.value
        return headers

    def _check_version(self, node: TestNode, line: _Line) -> None:
        accepted = KTAP_VERSIONS if line.name == "KTAP" else TAP_VERSIONS
        if line.value < min(accepted):
            self._warn(node, line.number, f"{line.name} version lower than expected")
        elif line.value > max(accepted):
            self._warn(node, line.number, f"{line.name} version higher than expected")

    def _parse_subtests(
        self, node: TestNode, raw: list[_Line], *, is_subtest: bool, depth: int, indent: int
    ) -> None:
        expected = node.planned
        num = 1
        while expected is None or num <= expected:
            start = self.last_line
            sub_log = self._diag(depth + 1, node)
            at_end = self._peek() is None
            if at_end or (is_subtest and self._closes_block(node, indent)):
                if not expected or num > expected:
                    raw.extend(sub_log)
                    return
                if self._missing_budget <= 0:
                    self._warn(node, self.last_line, "too many missing tests; rest not listed")
                    raw.extend(sub_log)
                    return
                self._missing_budget -= 1
                self.truncated |= at_end
                where = self.last_line if at_end else self._peek_number()
                self._warn(node, where, f"missing expected subtest {num} of {expected}")
                node.subtests.append(self._placeholder(num, sub_log, indent))
            else:
                node.subtests.append(
                    self._parse_test(num, sub_log, is_subtest=True, depth=depth + 1, start=start)
                )
            num += 1

    def _peek_number(self) -> int | None:
        line = self._peek()
        return line.number if line else None

    def _warn_dropped(self, node: TestNode, raw: Sequence[_Line]) -> None:
        """One warning per test whose diagnostics lost lines to the run cap."""
        markers = [line for line in raw if line.dropped]
        if markers:
            self._warn(node, markers[0].number, _dropped_message(node.name, markers))

    def _placeholder(self, num: int, sub_log: list[_Line], indent: int) -> TestNode:
        lines = [line.number for line in sub_log]
        node = TestNode(
            name="",
            status=TestStatus.CRASH,
            diagnostics=[_dedent(line.text, indent) for line in sub_log],
            number=num,
            first_line=lines[0] if lines else None,
            last_line=lines[-1] if lines else None,
        )
        self._warn_dropped(node, sub_log)
        return node

    def _parse_own_result(
        self, node: TestNode, raw: list[_Line], expected_num: int, is_parent: bool, depth: int
    ) -> tuple[_Line | None, bool]:
        raw.extend(self._diag(depth, node))
        line = self._peek()
        if line is None:
            self.truncated = True
            if is_parent or node.name:
                # Our rule: the output ended inside this test, so it crashed.
                self._warn(node, self.last_line, f"output ended before result of {node.name!r}")
                node.status = TestStatus.CRASH
            else:  # a stray plan line at the very end (kunit_tool: NO_TESTS)
                self._warn(node, self.last_line, "no more test results")
                node.status = TestStatus.NO_TESTS
            return None, True
        if node.name and not self._names_result(line, node.name):
            self._warn(node, line.number, f"missing result line for subtest {node.name!r}")
            return None, False
        if line.result is None:
            self._warn(node, line.number, "expected a test result line")
            return None, False
        self._pop()
        result = line.result
        node.name = result.name
        node.number = result.number
        node.directive = result.directive
        node.status = node.reported = _result_status(result)
        if result.number != expected_num:
            got = result.number
            self._warn(node, line.number, f"expected test number {expected_num}, got {got}")
        return line, False

    @staticmethod
    def _bubble_up(node: TestNode) -> None:
        child_status = node.children_counts().status()
        if child_status is TestStatus.CRASH:
            node.status = TestStatus.CRASH  # kunit_tool
        elif child_status is TestStatus.FAIL and node.status is not TestStatus.CRASH:
            node.status = TestStatus.FAIL  # KTAP spec: a test fails if any subtest fails

    def _finish(
        self,
        node: TestNode,
        raw: list[_Line],
        headers: list[_Line],
        result_line: _Line | None,
        indent: int,
        start: int | None,
    ) -> None:
        node.diagnostics = [_dedent(line.text, indent) for line in raw]
        self._warn_dropped(node, raw)
        starts = [line.number for line in (*raw[:1], *headers[:1])]
        node.first_line = min(starts) if starts else (result_line.number if result_line else None)
        node.last_line = result_line.number if result_line else self.last_line
        if result_line is not None and start is not None:
            begin, end = self._ts.get(start), self._ts.get(result_line.number)
            if begin is not None and end is not None and end >= begin:
                node.duration = round(end - begin, 6)


def _dropped_message(name: str, markers: Sequence[_Line]) -> str:
    count = sum(line.dropped for line in markers)
    return (
        f"{count} diagnostic lines of {name or 'test'!r} dropped (a run of more than "
        f"{MAX_DIAG_HEAD_LINES} + {MAX_DIAG_TAIL_LINES} lines or 2 x {MAX_DIAG_BYTES} "
        "characters keeps its first and last ones)"
    )


class _DiagRuns:
    """Collects classified KTAP lines into ``out``, capping each run of consecutive
    diagnostic (OTHER) lines as it streams: the head is kept as it comes, the tail in a
    bounded deque, and what falls out of the tail is counted (its timestamp forgotten),
    so memory does not grow with the run's length."""

    def __init__(self, out: list[_Line], timestamps: dict[int, float]) -> None:
        self.out = out
        self.timestamps = timestamps
        self._reset()

    def _reset(self) -> None:
        self.head = self.head_bytes = 0
        self.tail: collections.deque[_Line] = collections.deque()
        self.tail_bytes = 0
        self.dropped = 0
        self.first_dropped: _Line | None = None
        self.last_dropped = 0

    def add(self, line: _Line) -> None:
        if line.kind is not _Kind.OTHER:
            self.flush()
            self.out.append(line)
            return
        size = len(line.text)
        if (
            not self.tail
            and self.head < MAX_DIAG_HEAD_LINES
            and self.head_bytes + size <= MAX_DIAG_BYTES
        ):
            self.head += 1
            self.head_bytes += size
            self.out.append(line)
            return
        self.tail.append(line)
        self.tail_bytes += size
        while len(self.tail) > MAX_DIAG_TAIL_LINES or self.tail_bytes > MAX_DIAG_BYTES:
            old = self.tail.popleft()
            self.tail_bytes -= len(old.text)
            self.timestamps.pop(old.number, None)
            self.first_dropped = self.first_dropped or old
            self.dropped += 1
            self.last_dropped = old.number

    def flush(self) -> None:
        if first := self.first_dropped:
            lead = first.text[: len(first.text) - len(first.text.lstrip())]
            text = (
                f"{lead}# kbulk: {self.dropped} lines dropped "
                f"(console lines {first.number}-{self.last_dropped})"
            )
            marker = _Line(first.number, text, first.indent, _Kind.OTHER, dropped=self.dropped)
            self.out.append(marker)
        self.out.extend(self.tail)
        self._reset()


def _split_documents(lines: Sequence[_Line]) -> list[Sequence[_Line]]:
    """Cut at every unindented version line: each starts a new top-level document."""
    cuts = [
        i for i, line in enumerate(lines) if i and line.kind is _Kind.VERSION and line.indent == 0
    ]
    bounds = [0, *cuts, len(lines)]
    return [lines[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _merge(root: TestNode, main: TestNode) -> None:
    root.subtests.extend(main.subtests)
    root.diagnostics.extend(main.diagnostics)
    root.warnings.extend(main.warnings)
    if main.planned is not None:
        root.planned = (root.planned or 0) + main.planned
    for attr, pick in (("first_line", min), ("last_line", max)):
        values = [v for v in (getattr(root, attr), getattr(main, attr)) if v is not None]
        setattr(root, attr, pick(values) if values else None)


def _normalize(lines: Iterable[Any] | str | bytes) -> list[_Line]:
    if isinstance(lines, bytes | bytearray):
        lines = bytes(lines).decode("utf-8", "replace")
    if isinstance(lines, str):
        lines = _split_text(lines)
    out: list[_Line] = []
    for index, item in enumerate(lines, start=1):
        if isinstance(item, tuple) and len(item) == 2:
            number, text = item
        else:
            number, text = index, item
        if isinstance(text, bytes | bytearray):
            text = bytes(text).decode("utf-8", "replace")
        out.append(_classify(int(number), str(text)))
    return out


def _parse_lines(lines: list[_Line], timestamps: Mapping[int, float]) -> KtapDocument:
    warnings: list[str] = []
    root = TestNode(name="main", status=TestStatus.NO_TESTS)
    if not lines:
        root.warnings.append("no KTAP output found")
        return KtapDocument(root=root, warnings=["no KTAP output found"], complete=True)
    parser = _Parser(timestamps, warnings)
    segments = _split_documents(lines)
    for segment in segments:
        headless = segment[0].kind is not _Kind.VERSION
        if headless and len(segments) > 1 and all(x.kind is _Kind.OTHER for x in segment):
            # Plain text before the first document: keep it, but it is no test run.
            root.diagnostics.extend(line.text for line in segment)
            if markers := [line for line in segment if line.dropped]:
                message = f"line {markers[0].number}: {_dropped_message('main', markers)}"
                root.warnings.append(message)
                warnings.append(message)
            continue
        _merge(root, parser.parse_document(segment))
    root.status = root.children_counts().status()
    return KtapDocument(root=root, warnings=warnings, complete=not parser.truncated)


def parse_ktap(
    lines: Iterable[tuple[int, str]] | Iterable[str] | str,
    *,
    timestamps: Mapping[int, float] | None = None,
) -> KtapDocument:
    """Parse KTAP lines (from :func:`extract_ktap_lines`, or plain strings numbered 1..n).

    Plain strings must already be free of printk prefixes; use :func:`parse_console`
    for a raw console log. Never raises: an internal error becomes a warning.
    """
    return _parse_guarded(lambda: _normalize(lines), timestamps or {})


def _parse_guarded(
    make: Callable[[], list[_Line]], timestamps: Mapping[int, float]
) -> KtapDocument:
    try:
        return _parse_lines(make(), timestamps)
    except Exception as exc:  # last-resort guard: garbage must never crash the harness
        message = f"internal parser error: {exc!r}"
        root = TestNode(name="main", status=TestStatus.NO_TESTS, warnings=[message])
        return KtapDocument(root=root, warnings=[message], complete=False)


# --------------------------------------------------------------------- extraction

_TS = r"\[ *\d+\.\d+\]"
_CALLER = r"\[ *[TC]\d+\]"
# "<6>", "[    1.234567]", "[    T1]"/"[    C0]" (CONFIG_PRINTK_CALLER) and combinations.
_PRINTK_PREFIX_RE = re.compile(
    rf"^(?:<\d{{1,3}}>(?:{_TS})?(?:{_CALLER})?|{_TS}(?:{_CALLER})?|{_CALLER}) ?"
)
_TIMESTAMP_RE = re.compile(r"\[ *(\d+\.\d+)\]")
_VERSION_ANYWHERE_RE = re.compile(r"K?TAP version \d+$")
_KTAP_END_RE = re.compile(
    r"^\s*(?:List of all partitions:|Kernel panic - not syncing: VFS:|reboot: System halted)"
)
_EXECUTOR_ERROR_RE = re.compile(r"^\s*kunit executor: ")


class _Prefix:
    """How to strip the prefix seen on a document's version line from its other lines."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.printk = bool(_PRINTK_PREFIX_RE.fullmatch(text))

    def strip(self, line: str) -> str:
        if self.printk:
            # By shape, not length: timestamps change from line to line.
            m = _PRINTK_PREFIX_RE.match(line)
            return line[m.end() :] if m else line
        if self.text and line.startswith(self.text):
            return line[len(self.text) :]
        return line  # no prefix, or a line from another source (e.g. userspace)


def _split_text(console: str) -> list[str]:
    # Only "\n" separates console lines; str.splitlines() would also split on \x1c, \x85...
    parts = console.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


# Terminal escapes a guest may print (colours, titles, resets): CSI (ESC [ or C1 0x9b),
# OSC ended by BEL or ST, and the other ESC sequences (ECMA-48 nF/Fp/Fe/Fs). The classes
# in each branch are disjoint, so matching stays linear.
_ESCAPE_RE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-~]"
)


def strip_escapes(text: str) -> str:
    """``text`` without terminal escape sequences (ANSI colours, OSC titles, resets)."""
    return (
        _ESCAPE_RE.sub("", text) if ("\x1b" in text or "\x9b" in text or "\x9d" in text) else text
    )


def cap_line(text: str, limit: int = MAX_LINE_LENGTH) -> tuple[str, bool]:
    """``text`` cut to ``limit`` characters, and whether it was cut."""
    return (text[:limit], True) if len(text) > limit else (text, False)


def _console_lines(console: str | bytes | Iterable[str]) -> Iterable[str]:
    if isinstance(console, bytes | bytearray):
        console = bytes(console).decode("utf-8", "replace")
    if isinstance(console, str):
        return _split_text(console)
    return console


def _is_top_version(text: str) -> bool:
    return bool(_VERSION_RE.match(text)) and _indent_width(text) == 0


def _extract(
    console: str | bytes | Iterable[str],
) -> tuple[list[_Line], dict[int, float], list[str]]:
    out: list[_Line] = []
    timestamps: dict[int, float] = {}
    runs = _DiagRuns(out, timestamps)
    warnings: list[str] = []
    prefix: _Prefix | None = None  # None: not inside a document
    for number, raw_line in enumerate(_console_lines(console), start=1):
        line, cut = cap_line(str(raw_line))
        if cut:
            warnings.append(
                f"line {number}: {len(str(raw_line))} characters, truncated to {MAX_LINE_LENGTH}"
            )
        line = strip_escapes(line).rstrip()
        printk = _PRINTK_PREFIX_RE.match(line)
        bare = line[printk.end() :] if printk else line
        kept: str | None = None
        version = _VERSION_ANYWHERE_RE.search(line)
        if version and (
            prefix is None or _is_top_version(bare) or _is_top_version(prefix.strip(line))
        ):
            prefix = _Prefix(line[: version.start()])
            kept = line[version.start() :]
        elif prefix is not None:
            text = prefix.strip(line)
            if _KTAP_END_RE.match(text):
                prefix = None  # end of this document; the next version line starts another
            else:
                kept = text
        elif _EXECUTOR_ERROR_RE.match(bare):
            kept = bare
        if kept is None:
            continue
        # Timestamps of the kept (KTAP) lines only: the rest of a long console costs nothing.
        if printk and (ts := _TIMESTAMP_RE.search(printk.group())):
            timestamps[number] = float(ts[1])
        runs.add(_classify(number, kept))
    runs.flush()
    return out, timestamps, warnings


def extract_ktap_lines(console: str | bytes | Iterable[str]) -> list[tuple[int, str]]:
    """Isolate KTAP/TAP documents in a raw console log, keeping 1-based line numbers.

    Every ``KTAP version N`` / ``TAP version N`` line that is not indented (after
    its printk prefix) starts a new document; the prefix found on it is stripped
    from the document's lines (by shape for printk prefixes, so changing timestamps
    are fine; lines without it are kept as they are). A document ends at the next
    one, or at kunit_tool's end markers ("List of all partitions:", ...); lines
    between documents are dropped except "kunit executor:" errors.
    A run of more than MAX_DIAG_HEAD_LINES + MAX_DIAG_TAIL_LINES consecutive
    diagnostic lines keeps its first and last ones, with one marker line between.
    """
    try:
        return [(line.number, line.text) for line in _extract(console)[0]]
    except Exception:  # never raise on garbage; nothing usable was found
        return []


def parse_console(console: str | bytes | Iterable[str]) -> KtapDocument:
    """Extract every KTAP document from a console log and parse them into one tree."""
    try:
        lines, timestamps, cut = _extract(console)
    except Exception as exc:  # e.g. an iterable that raises while being read
        message = f"internal extraction error: {exc!r}"
        root = TestNode(name="main", status=TestStatus.NO_TESTS, warnings=[message])
        return KtapDocument(root=root, warnings=[message], complete=False)
    doc = _parse_guarded(lambda: lines, timestamps)
    if cut:  # long lines are parse problems like any other: listed, and counted on the root
        doc.warnings[:0] = cut
        doc.root.warnings[:0] = cut
    return doc


# ----------------------------------------------------------------------- queries


def running_test_at(source: KtapDocument | TestNode, line: int) -> list[str] | None:
    """Name path of the innermost test whose output spans console ``line``.

    Used to attribute a kernel oops to the test that was running. Diagnostic lines
    before a result line belong to that test, as in kunit_tool.
    """
    root = source.root if isinstance(source, KtapDocument) else source
    best: list[str] | None = None
    for path, node in root.walk():
        lo, hi = node.first_line, node.last_line
        inside = lo is not None and hi is not None and lo <= line <= hi
        if inside and (best is None or len(path) > len(best)):
            best = path
    return best


_METRIC_RE = re.compile(r"^#\s*(?:[^\s:]+:\s*)?kbulk-metric:\s*(?P<body>.*)$")
# key=value. A key is tried only where a run of key characters starts (the lookbehind),
# skipping leading characters that cannot start a key: the same keys as a plain
# "[A-Za-z_][\w.\-/]*=" scan, but a long token is scanned once, not once per character.
_KV_RE = re.compile(
    r'(?<![\w.\-/])(?:(?![A-Za-z_])[\w.\-/])*([A-Za-z_][\w.\-/]*)=("(?:[^"\\]|\\.)*"|\S*)'
)
_INT_RE = re.compile(r"[-+]?\d{1,18}")


def _metric_value(text: str) -> float | str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if _INT_RE.fullmatch(text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text  # keep "nan"/"inf" as text (JSON-safe)


def _metrics_in(path: list[str], node: TestNode) -> Iterator[Metric]:
    for line in node.diagnostics:
        m = _METRIC_RE.match(line.strip())
        if not m:
            continue
        values: dict[str, float | str] = {
            key: _metric_value(value) for key, value in _KV_RE.findall(m["body"])
        }
        test = values.pop("test", node.name)
        yield Metric(test_path=list(path), test=str(test), values=values)


def metrics_from(source: KtapDocument | TestNode) -> list[Metric]:
    """All ``# kbulk-metric: test=<name> key=value ...`` lines in a tree, in order.

    Also accepts KUnit's ``# <case>: kbulk-metric: ...`` form (kunit_info()). Values
    become int/float when numeric, else strings; ``key="a b"`` may be quoted.
    """
    root = source.root if isinstance(source, KtapDocument) else source
    metrics = list(_metrics_in([], root))
    for path, node in root.walk():
        metrics.extend(_metrics_in(path, node))
    return metrics
