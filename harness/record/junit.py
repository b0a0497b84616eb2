"""JUnit XML for a set of runs: one flat <testsuite> per (run, KTAP suite)."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from harness.analysis.ktap import TestNode, TestStatus
from harness.fsutil import atomic_write_bytes
from harness.record.run import ArchRun, CrashReport
from harness.record.status import RunStatus

__all__ = ["build_junit", "write_junit"]

CONSOLE_TAIL_LINES = 100

# Characters XML 1.0 cannot carry at all (console logs contain ESC, NUL, ...).
_XML_INVALID_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_safe(text: str) -> str:
    return _XML_INVALID_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _label(node: TestNode) -> str:
    if node.name:
        return node.name
    return f"#{node.number}" if node.number is not None else "#?"


def _failure_message(node: TestNode) -> str:
    for line in node.diagnostics:
        if "FAILED" in line or "failed" in line:
            return line.lstrip("# ").strip()
    return "test failed"


def _xfail_message(node: TestNode) -> str:
    reason = node.reason
    return reason if reason.upper().startswith("XFAIL") else f"XFAIL {reason}".rstrip()


def _crash_for(run: ArchRun, dotted: str) -> CrashReport | None:
    """The crash that most plausibly killed test ``dotted`` (exact, ancestor, any)."""
    for matches in (
        lambda c: c.test == dotted,
        lambda c: c.test is not None and dotted.startswith(c.test + "."),
        lambda c: c.test is None,
        lambda c: True,
    ):
        for crash in run.crashes:
            if matches(crash):
                return crash
    return None


def _crash_text(crash: CrashReport) -> str:
    lines = [crash.title, *crash.excerpt]
    if crash.decoded:
        lines += ["", "decoded:", *crash.decoded]
    return "\n".join(lines)


def _case_result(run: ArchRun, node: TestNode, dotted: str) -> Failure | Error | Skipped | None:
    match node.status:
        case TestStatus.FAIL:
            result: Failure | Error | Skipped = Failure(_xml_safe(_failure_message(node)), "fail")
            result.text = _xml_safe("\n".join(node.diagnostics)) or None  # type: ignore[assignment]
        case TestStatus.CRASH:
            crash = _crash_for(run, dotted)
            title = crash.title if crash else "no result line: kernel crashed or output ended"
            result = Error(_xml_safe(title), crash.kind if crash else "crash")
            result.text = _xml_safe(_crash_text(crash)) if crash else None  # type: ignore[assignment]
        case TestStatus.SKIP:
            result = Skipped(_xml_safe(node.reason or "skipped"))
        case TestStatus.XFAIL:
            result = Skipped(_xml_safe(_xfail_message(node)))
        case TestStatus.NO_TESTS:
            result = Skipped("no tests run")
        case _:
            return None
    return result


def _testcase(run: ArchRun, node: TestNode, classname: str, dotted: str, name: str) -> TestCase:
    case = TestCase(_xml_safe(name), _xml_safe(classname), node.duration)
    result = _case_result(run, node, dotted)
    if result is not None:
        case.result = [result]
    if node.diagnostics and node.status in (TestStatus.FAIL, TestStatus.CRASH):
        case.system_out = _xml_safe("\n".join(node.diagnostics))
    return case


def _suite_own_case(run: ArchRun, node: TestNode, classname: str, dotted: str) -> TestCase | None:
    """A testcase for a suite whose own outcome is not visible in any of its cases.

    Mirrors TestNode.counts(): a "not ok" suite with passing cases, a suite that
    crashed after its cases finished, or a suite that ran no tests.
    """
    children = node.children_counts()
    own_failure = node.status is TestStatus.FAIL and not (children.failed or children.crashed)
    own_crash = node.status is TestStatus.CRASH and not children.crashed
    if not (own_failure or own_crash or node.status is TestStatus.NO_TESTS):
        return None
    as_leaf = TestNode(
        name=node.name,
        status=node.status,
        directive=node.directive,
        diagnostics=node.diagnostics,
        number=node.number,
    )
    return _testcase(run, as_leaf, classname, dotted, "(suite)")


def _add(suite: TestSuite, case: TestCase) -> None:
    """Add without recounting (add_testcase() recounts the suite each time: quadratic)."""
    suite.append(case)  # type: ignore[no-untyped-call]


def _new_suite(name: str, run: ArchRun) -> TestSuite:
    suite = TestSuite(_xml_safe(name))
    for key, value in (
        ("arch", run.arch),
        ("kernel", run.kernel),
        ("run_status", str(run.status)),
        ("accelerator", run.accelerator or ""),
    ):
        suite.add_property(key, _xml_safe(value))
    return suite


def _flatten(
    run: ArchRun, node: TestNode, labels: list[str], names: list[str]
) -> Iterator[TestSuite]:
    """One <testsuite> per KTAP suite, nested suites flattened with dotted names.

    ``labels`` is the display path including the run label (suite/class names);
    ``names`` the raw KTAP name path (matched against CrashReport.test).
    """
    classname = ".".join(labels)
    suite = _new_suite(classname, run)
    cases = 0
    nested: list[TestNode] = []
    for child in node.subtests:
        if child.is_leaf:
            dotted = ".".join([*names, child.name])
            _add(suite, _testcase(run, child, classname, dotted, _label(child)))
            cases += 1
        else:
            nested.append(child)
    if own := _suite_own_case(run, node, classname, ".".join(names)):
        _add(suite, own)
        cases += 1
    if cases:
        yield suite
    for child in nested:
        yield from _flatten(run, child, [*labels, _label(child)], [*names, child.name])


def _console_excerpt(run: ArchRun, base: Path | None) -> str | None:
    if run.crashes:
        return "\n\n".join(_crash_text(c) for c in run.crashes)
    if base is None or not run.console_log:
        return None
    path = base / run.console_log
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            tail = deque(fh, maxlen=CONSOLE_TAIL_LINES)
    except OSError:
        return None
    return "".join(tail).rstrip("\n")


_RUN_ERRORS = frozenset(
    {
        RunStatus.CRASH,
        RunStatus.TIMEOUT,
        RunStatus.BUILD_FAILURE,
        RunStatus.CONFIG_ERROR,
        RunStatus.PATCH_FAILURE,
        RunStatus.INFRA_ERROR,
        RunStatus.NO_TESTS,
    }
)


def _run_suite(run: ArchRun, label: str, base: Path | None) -> TestSuite:
    """The single testcase standing for a run that produced no (or not all) tests."""
    name = f"{label}.run"
    suite = _new_suite(name, run)
    total = sum(run.durations.values()) if run.durations else None
    case = TestCase(_xml_safe(run.kernel or "run"), _xml_safe(name), total)
    if run.status in _RUN_ERRORS:
        error = Error(_xml_safe(run.message or f"run status: {run.status}"), str(run.status))
        error.text = _xml_safe("\n".join([run.message, *(c.title for c in run.crashes)]).strip())
        case.result = [error]
    if excerpt := _console_excerpt(run, base):
        case.system_out = _xml_safe(excerpt)
    _add(suite, case)
    return suite


def _run_labels(runs: Sequence[ArchRun]) -> list[str]:
    # "<arch>" normally; "<arch>@<kernel>" when one arch has several kernels, so that
    # suite names stay unique (JUnit consumers merge equal names).
    per_arch: dict[str, int] = {}
    for run in runs:
        per_arch[run.arch] = per_arch.get(run.arch, 0) + 1
    labels = []
    for run in runs:
        label = run.arch if per_arch[run.arch] == 1 else f"{run.arch}@{run.kernel}"
        if run.repetition is not None:
            label += f"#r{run.repetition}"
        labels.append(label)
    return labels


def _suites_for_run(run: ArchRun, label: str, base: Path | None) -> list[TestSuite]:
    tests = run.ktap.root.subtests if run.ktap is not None else []
    suites: list[TestSuite] = []
    top_leaves = [t for t in tests if t.is_leaf]  # e.g. kselftest programs
    if top_leaves:
        suite = _new_suite(label, run)
        for leaf in top_leaves:
            _add(suite, _testcase(run, leaf, label, leaf.name, _label(leaf)))
        suites.append(suite)
    for test in tests:
        if not test.is_leaf:
            suites.extend(_flatten(run, test, [label, _label(test)], [test.name]))
    cases = [case for suite in suites for case in suite]
    has_error = any(isinstance(r, Error) for case in cases for r in case.result)
    if not cases or (run.status in _RUN_ERRORS and not has_error):
        suites.append(_run_suite(run, label, base))
    return suites


def build_junit(
    runs: Sequence[ArchRun], *, run_dir: str | os.PathLike[str] | None = None
) -> JUnitXml:
    """JUnit tree for ``runs``: one flat <testsuite> per (run, KTAP suite).

    Nested KTAP suites (e.g. parameterised cases) are *flattened* into sibling
    <testsuite name="<arch>.<suite>.<case>"> elements rather than nested
    <testsuite>s: Jenkins, GitLab and most GitHub report actions ignore or
    mis-count nested suites, while dotted flat names render everywhere and keep
    the hierarchy readable. ``run_dir`` locates ``console_log`` for excerpts.
    """
    base = Path(run_dir) if run_dir is not None else None
    xml = JUnitXml()
    for run, label in zip(runs, _run_labels(runs), strict=True):
        for suite in _suites_for_run(run, label, base):
            xml.append(suite)  # type: ignore[no-untyped-call]  # not add_testsuite(): O(n^2)
    # Cases are added with append() (junitparser's add_testcase() recounts the whole
    # suite on every add: quadratic); this counts every suite once, at the end.
    xml.update_statistics()  # type: ignore[no-untyped-call]
    return xml


def _pretty_xml(raw: bytes) -> bytes:
    # junitparser may be backed by lxml or ElementTree; re-parse to indent portably.
    element = ET.fromstring(raw)
    ET.indent(element)
    data: bytes = ET.tostring(element, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def write_junit(
    path: str | os.PathLike[str],
    runs: Sequence[ArchRun],
    *,
    run_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Write JUnit XML atomically; console excerpts are read relative to ``run_dir``
    (default: the directory of ``path``)."""
    target = Path(path)
    xml = build_junit(runs, run_dir=run_dir if run_dir is not None else target.parent)
    raw: bytes = xml.tostring()  # type: ignore[no-untyped-call]
    atomic_write_bytes(target, _pretty_xml(raw))
