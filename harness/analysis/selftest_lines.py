"""In-kernel self-tests that report in their own format instead of KTAP.

Some tests that reach the bulk allocator predate KTAP: lib/test_vmalloc.c
prints one "Summary:" line per test case and worker. Built in (=y) they run at
boot; this module turns their lines into a suite of TestNodes next to the
KUnit suites, so they show up in results.json, JUnit and compare like any
other case. Each format is data (suite name + line pattern), not code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from harness.analysis.ktap import MAX_LINE_LENGTH, TestNode, TestStatus, strip_escapes


@dataclass(frozen=True)
class SummaryFormat:
    suite: str
    # named groups: case, passed, failed, and optionally xfailed
    pattern: re.Pattern[str]


FORMATS = (
    # lib/test_vmalloc.c, vmalloc_test_init():
    # "Summary: fix_size_alloc_test passed: 1 failed: 0 xfailed: 0 repeat: 1 loops: 2000
    #  avg: 80 usec" (one line)
    SummaryFormat(
        "test_vmalloc",
        re.compile(
            r"Summary: (?P<case>\w+) passed: (?P<passed>\d+) failed: (?P<failed>\d+)"
            r"(?: xfailed: (?P<xfailed>\d+))?(?P<rest>.*)$"
        ),
    ),
)


def _count(digits: str | None) -> int:
    # int() refuses > 4300 digits (and is slow well before); such a count is garbage.
    return 0 if not digits else int(digits) if len(digits) <= 18 else 10**18


def _status(passed: int, failed: int, xfailed: int) -> TestStatus:
    if failed:
        return TestStatus.FAIL
    if passed:
        return TestStatus.PASS
    if xfailed:
        return TestStatus.XFAIL
    return TestStatus.SKIP


def parse_summaries(
    lines: Iterable[str], formats: Iterable[SummaryFormat] = FORMATS
) -> list[TestNode]:
    """One suite per format that matched; a case reported by several workers is merged."""
    formats = list(formats)
    cases: dict[str, dict[str, list[int]]] = {f.suite: {} for f in formats}
    first: dict[tuple[str, str], tuple[int, str]] = {}
    for number, raw in enumerate(lines, start=1):
        line = strip_escapes(raw[:MAX_LINE_LENGTH])  # ktap's parse records the cut
        for fmt in formats:
            m = fmt.pattern.search(line)
            if m is None:
                continue
            counts = cases[fmt.suite].setdefault(m.group("case"), [0, 0, 0])
            counts[0] += _count(m.group("passed"))
            counts[1] += _count(m.group("failed"))
            counts[2] += _count(m.group("xfailed"))
            first.setdefault((fmt.suite, m.group("case")), (number, m.group(0).strip()))
    suites = []
    for suite, by_case in cases.items():
        if not by_case:
            continue
        node = TestNode(name=suite, status=TestStatus.NO_TESTS, planned=len(by_case))
        for index, (case, (passed, failed, xfailed)) in enumerate(by_case.items(), start=1):
            line_no, text = first[(suite, case)]
            leaf = TestNode(
                name=case,
                status=_status(passed, failed, xfailed),
                diagnostics=[text],
                first_line=line_no,
                last_line=line_no,
                number=index,
            )
            leaf.reported = leaf.status
            node.subtests.append(leaf)
        node.status = node.counts().status()
        node.reported = node.status
        suites.append(node)
    return suites
