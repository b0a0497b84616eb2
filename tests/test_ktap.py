"""Tests for harness.analysis.ktap: kunit_tool parity, KTAP semantics, consoles, robustness."""

from __future__ import annotations

import os
import random
import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from harness.analysis.analyze import analyze
from harness.analysis.ktap import (
    MAX_DEPTH,
    MAX_MISSING,
    Counts,
    KtapDocument,
    Metric,
    TestNode,
    TestStatus,
    extract_ktap_lines,
    metrics_from,
    parse_console,
    parse_ktap,
    running_test_at,
)
from harness.record.status import ExitReason, RunStatus

DATA = Path(__file__).parent / "data" / "ktap"


# The kernel tree whose kunit_tool we compare against (read-only).
def _find_linux_src() -> Path:
    """KBULK_LINUX_SRC, else a kernel tree the harness already extracted into its cache."""
    if env := os.environ.get("KBULK_LINUX_SRC"):
        return Path(env)
    from harness.paths import cache_root

    trees = sorted(cache_root().glob("sources/*/linux-source-*/tools/testing/kunit"))
    return trees[-1].parents[2] if trees else cache_root() / "sources" / "absent"


LINUX_SRC = _find_linux_src()
KUNIT_DIR = LINUX_SRC / "tools" / "testing" / "kunit"
KUNIT_LOGS = sorted((KUNIT_DIR / "test_data").glob("*.log")) if KUNIT_DIR.is_dir() else []
NO_KERNEL_TREE = "kernel source tree (tools/testing/kunit) not present"


def ktap(text: str) -> KtapDocument:
    return parse_console(textwrap.dedent(text).lstrip("\n"))


def node(doc: KtapDocument, *path: str) -> TestNode:
    found = {tuple(p): n for p, n in doc.walk()}
    return found[path]


def statuses(doc: KtapDocument) -> dict[str, TestStatus]:
    return {".".join(p): n.status for p, n in doc.walk()}


# ------------------------------------------------------------- kunit_tool parity


@pytest.fixture(scope="module")
def kunit_parser() -> Iterator[ModuleType]:
    if not KUNIT_DIR.is_dir():
        pytest.skip(NO_KERNEL_TREE)
    sys.path.insert(0, str(KUNIT_DIR))
    try:
        import kunit_parser as module  # the kernel's own parser
        import kunit_printer

        module._test_printer = kunit_printer.Printer(print=False)
        yield module
    finally:
        sys.path.remove(str(KUNIT_DIR))


def _kunit_status(kp: ModuleType, status: Any) -> TestStatus:
    return {
        kp.TestStatus.SUCCESS: TestStatus.PASS,
        kp.TestStatus.FAILURE: TestStatus.FAIL,
        kp.TestStatus.SKIPPED: TestStatus.SKIP,
        kp.TestStatus.TEST_CRASHED: TestStatus.CRASH,
        kp.TestStatus.NO_TESTS: TestStatus.NO_TESTS,
        # Our root is NO_TESTS with a "no KTAP output found" warning instead.
        kp.TestStatus.FAILURE_TO_PARSE_TESTS: TestStatus.NO_TESTS,
    }[status]


def _kunit_tree(kp: ModuleType, test: Any, depth: int = 0) -> list[tuple[Any, ...]]:
    rows = [(depth, test.name, _kunit_status(kp, test.status), [x.strip() for x in test.log])]
    for sub in test.subtests:
        rows += _kunit_tree(kp, sub, depth + 1)
    return rows


def _our_tree(test: TestNode, depth: int = 0) -> list[tuple[Any, ...]]:
    rows = [(depth, test.name, test.status, [x.strip() for x in test.diagnostics])]
    for sub in test.subtests:
        rows += _our_tree(sub, depth + 1)
    return rows


def _kunit_parse(kp: ModuleType, lines: list[str]) -> Any:
    return kp.parse_run_tests(lines, kp._test_printer)


def _assert_same_as_kunit(kp: ModuleType, lines: list[str]) -> KtapDocument:
    expected = _kunit_parse(kp, lines)
    doc = parse_console(lines)
    want, got = _kunit_tree(kp, expected), _our_tree(doc.root)
    if expected.name == "<missing>":  # kunit_tool's name for "no KTAP at all"
        want[0] = (0, "main", *want[0][2:])
    assert [row[:3] for row in got] == [row[:3] for row in want], "tree/status differs"
    assert [row[3] for row in got] == [row[3] for row in want], "log attribution differs"
    ours, theirs = doc.counts(), expected.counts
    assert (ours.passed, ours.failed, ours.crashed, ours.skipped + ours.xfail, ours.errors) == (
        theirs.passed,
        theirs.failed,
        theirs.crashed,
        theirs.skipped,
        theirs.errors,
    )
    return doc


@pytest.mark.parametrize(
    "log",
    KUNIT_LOGS or [pytest.param(None, marks=pytest.mark.skip(reason=NO_KERNEL_TREE))],
    ids=lambda p: p.name if p else "absent",
)
def test_matches_kunit_tool_on_its_corpus(kunit_parser: ModuleType, log: Path) -> None:
    lines = log.read_text().splitlines(keepends=True)
    _assert_same_as_kunit(kunit_parser, lines)


KUNIT_TOOL_TEST_INLINE = {
    # Inputs written inline in kunit_tool_test.py.
    "summarize_failures": """
        KTAP version 1
        1..2
        \t# Subtest: all_failed_suite
        \t1..2
        \tnot ok 1 - test1
        \tnot ok 2 - test2
        not ok 1 - all_failed_suite
        \t# Subtest: some_failed_suite
        \t1..2
        \tok 1 - test1
        \tnot ok 2 - test2
        not ok 1 - some_failed_suite
    """,
    "show_test_output_on_failure": """
        KTAP version 1
        1..1
          Test output.
            Indented more.
        not ok 1 test1
    """,
    "late_test_plan": """
        TAP version 13
        ok 4 test4
        1..4
    """,
    "exec_no_tests": "TAP version 14\n1..0\n",
}


@pytest.mark.parametrize("name", sorted(KUNIT_TOOL_TEST_INLINE))
def test_matches_kunit_tool_on_inline_cases(kunit_parser: ModuleType, name: str) -> None:
    text = textwrap.dedent(KUNIT_TOOL_TEST_INLINE[name]).lstrip("\n")
    _assert_same_as_kunit(kunit_parser, text.splitlines())


def test_documented_deviations_from_kunit_tool(kunit_parser: ModuleType) -> None:
    """Where we deliberately differ, check both sides so a kunit change is noticed."""
    kp = kunit_parser

    # 1. A suite whose own line says "ok" although a case failed: kunit keeps PASS.
    text = "KTAP version 1\n1..1\n    # Subtest: s\n    1..2\n    ok 1 a\n    not ok 2 b\nok 1 s\n"
    assert _kunit_parse(kp, text.splitlines()).subtests[0].status == kp.TestStatus.SUCCESS
    assert node(parse_console(text), "s").status is TestStatus.FAIL

    # 2. Output ends inside an unnamed (KTAP v1, no "# Subtest:") suite: kunit says
    #    NO_TESTS and the run passes; the kernel died, so we say CRASH.
    text = "KTAP version 1\n1..1\n    KTAP version 1\n    1..2\n    ok 1 a\n    ok 2 b\n"
    kunit = _kunit_parse(kp, text.splitlines())
    assert (kunit.status, kunit.subtests[0].status) == (
        kp.TestStatus.SUCCESS,
        kp.TestStatus.NO_TESTS,
    )
    doc = parse_console(text)
    assert (doc.status, doc.root.subtests[0].status, doc.complete) == (
        TestStatus.CRASH,
        TestStatus.CRASH,
        False,
    )

    # 3. Plan-less unnamed KTAP v1 suites: kunit swallows the rest of the log into
    #    the first one; the lower-indented result line ends it for us.
    text = (
        "KTAP version 1\n1..2\n    KTAP version 1\n    ok 1 a\nok 1 s1\n"
        "    KTAP version 1\n    ok 1 c\nok 2 s2\n"
    )
    assert _kunit_parse(kp, text.splitlines()).status == kp.TestStatus.TEST_CRASHED
    assert statuses(parse_console(text)) == {
        "s1": TestStatus.PASS,
        "s1.a": TestStatus.PASS,
        "s2": TestStatus.PASS,
        "s2.c": TestStatus.PASS,
    }

    # 4. Several documents in one console: kunit_tool only reads the first.
    text = "KTAP version 1\n1..1\nok 1 a\nmsg\nKTAP version 1\n1..1\nnot ok 1 b\n"
    assert _kunit_parse(kp, text.splitlines()).status == kp.TestStatus.SUCCESS
    assert parse_console(text).status is TestStatus.FAIL


# ----------------------------------------------------- bundled corpus (no kernel)


def test_failure_log() -> None:
    doc = parse_console((DATA / "test_is_test_passed-failure.log").read_text())
    assert doc.status is TestStatus.FAIL and doc.complete and not doc.warnings
    assert doc.counts() == Counts(passed=9, failed=1)
    assert [t.name for t in doc.root.subtests] == ["sysctl_test", "example"]
    assert node(doc, "sysctl_test").planned == 8
    failed = node(doc, "example", "example_simple_test")
    assert failed.status is TestStatus.FAIL
    assert failed.diagnostics == [
        "init_suite",
        "# example_simple_test: initializing",
        "# example_simple_test: EXPECTATION FAILED at lib/kunit/example-test.c:30",
        "Expected 1 + 1 == 3, but",
        "\t1 + 1 == 2",  # relative indentation is kept
        "\t3 == 3",
        "# example_simple_test: example_simple_test failed",
    ]
    # Lines after the last case and before the suite's result belong to the suite.
    assert node(doc, "example").diagnostics == ["kunit example: one or more tests failed"]
    assert (failed.first_line, failed.last_line) == (25, 32)


def test_kernel_panic_log_marks_missing_tests_crashed() -> None:
    doc = parse_console((DATA / "test_kernel_panic_interrupt.log").read_text())
    assert doc.status is TestStatus.CRASH and not doc.complete
    assert doc.counts() == Counts(passed=8, crashed=2, errors=3)
    suite = node(doc, "string-stream-test")
    assert suite.status is TestStatus.CRASH and suite.reported is None
    assert [(t.name, t.number, t.status) for t in suite.subtests] == [
        ("string_stream_test_empty_on_creation", 1, TestStatus.PASS),
        ("", 2, TestStatus.CRASH),
        ("", 3, TestStatus.CRASH),
    ]
    assert "line 20: missing expected subtest 2 of 3" in doc.warnings


def test_nested_suite_log() -> None:
    doc = parse_console((DATA / "test_is_test_passed-all_passed_nested.log").read_text())
    assert doc.status is TestStatus.PASS and doc.counts() == Counts(passed=7)
    inner = node(doc, "sysctl_test", "example")
    assert [t.name for t in inner.subtests] == ["example_simple_test", "example_mock_test"]
    assert node(doc, "example", "example_mock_test").status is TestStatus.PASS


def test_attribute_diagnostics_attribution() -> None:
    doc = parse_console((DATA / "test_parse_attributes.log").read_text())
    assert node(doc, "suite").diagnostics == ["# module: example"]
    assert node(doc, "suite", "test").diagnostics == ["# test.speed: slow"]


# ------------------------------------------------------------- KTAP semantics


def test_nested_ktap_v1_three_levels_with_parameterised_case() -> None:
    doc = ktap(
        """
        KTAP version 1
        1..1
            KTAP version 1
            # Subtest: outer
            1..2
                KTAP version 1
                # Subtest: param_case
                1..3
                ok 1 param-0
                ok 2 param-1 # SKIP not applicable
                ok 3 param-2
            ok 1 param_case
            ok 2 plain_case
        ok 1 outer
        """
    )
    assert statuses(doc) == {
        "outer": TestStatus.PASS,
        "outer.param_case": TestStatus.PASS,
        "outer.param_case.param-0": TestStatus.PASS,
        "outer.param_case.param-1": TestStatus.SKIP,
        "outer.param_case.param-2": TestStatus.PASS,
        "outer.plain_case": TestStatus.PASS,
    }
    assert doc.counts() == Counts(passed=3, skipped=1)
    assert node(doc, "outer", "param_case", "param-1").reason == "not applicable"


def test_tap14_subtest_header_at_parent_indent() -> None:
    doc = ktap(
        """
        TAP version 14
        1..2
        # Subtest: first
            1..1
            ok 1 - a
        ok 1 - first
        # Subtest: second
            ok 1 - b
            not ok 2 - c
        not ok 2 - second
        """
    )
    assert statuses(doc) == {
        "first": TestStatus.PASS,
        "first.a": TestStatus.PASS,
        "second": TestStatus.FAIL,
        "second.b": TestStatus.PASS,
        "second.c": TestStatus.FAIL,
    }


def test_directives_skip_todo_xfail() -> None:
    doc = ktap(
        """
        KTAP version 1
        1..8
        ok 1 skipped # SKIP needs hardware
        not ok 2 skipped_not_ok # SKIP
        ok 3 xfail_by_skip # SKIP XFAIL: known bug 1234
        not ok 4 xfail_by_todo # TODO XFAIL broken on arm64
        not ok 5 todo # TODO not yet
        ok 6 # XFAIL kselftest style, no name
        not ok 7 timeout # TIMEOUT 30 seconds
        ok 8 commented # rcode=0
        """
    )
    got = {t.number: (t.name, t.status, t.directive) for t in doc.root.subtests}
    assert got == {
        1: ("skipped", TestStatus.SKIP, "SKIP needs hardware"),
        2: ("skipped_not_ok", TestStatus.SKIP, "SKIP"),
        3: ("xfail_by_skip", TestStatus.XFAIL, "SKIP XFAIL: known bug 1234"),
        4: ("xfail_by_todo", TestStatus.XFAIL, "TODO XFAIL broken on arm64"),
        5: ("todo", TestStatus.FAIL, "TODO not yet"),  # unknown/TODO: falls back to not ok
        6: ("", TestStatus.XFAIL, "XFAIL kselftest style, no name"),
        7: ("timeout", TestStatus.FAIL, "TIMEOUT 30 seconds"),
        8: ("commented", TestStatus.PASS, "rcode=0"),
    }
    assert doc.counts() == Counts(passed=1, failed=2, skipped=2, xfail=3)
    assert doc.status is TestStatus.FAIL


def test_names_with_hash_and_hyphen() -> None:
    doc = ktap("KTAP version 1\n1..2\nok 1 - test#1\nok 2 -  spaced name  # SKIP why\n")
    assert [(t.name, t.status) for t in doc.root.subtests] == [
        ("test#1", TestStatus.PASS),
        ("spaced name", TestStatus.SKIP),
    ]


def test_suite_status_derivation() -> None:
    doc = ktap(
        """
        KTAP version 1
        1..3
            # Subtest: all_skipped
            1..2
            ok 1 a # SKIP x
            ok 2 b # SKIP x
        ok 1 all_skipped # SKIP
            # Subtest: says_ok_but_failed
            1..1
            not ok 1 c
        ok 2 says_ok_but_failed
            # Subtest: says_not_ok_cases_pass
            1..1
            ok 1 d
        not ok 3 says_not_ok_cases_pass
        """
    )
    assert node(doc, "all_skipped").status is TestStatus.SKIP
    assert node(doc, "says_ok_but_failed").status is TestStatus.FAIL
    assert node(doc, "says_not_ok_cases_pass").status is TestStatus.FAIL
    # kunit_tool counts the failing suite itself once when its cases all passed.
    assert node(doc, "says_not_ok_cases_pass").counts() == Counts(passed=1, failed=1)
    assert doc.counts() == Counts(passed=1, failed=2, skipped=2)


def test_no_tests() -> None:
    assert ktap("KTAP version 1\n1..0\n").status is TestStatus.NO_TESTS
    doc = parse_console("Linux version 7.2\nnothing to see\n")
    assert doc.status is TestStatus.NO_TESTS
    assert doc.warnings == ["no KTAP output found"] and doc.complete
    empty_suite = ktap("KTAP version 1\n1..1\n  # Subtest: s\n  1..0\n  ok 1 s\n")
    assert node(empty_suite, "s").status is TestStatus.NO_TESTS
    assert empty_suite.status is TestStatus.NO_TESTS


def test_diagnostics_attribution() -> None:
    doc = ktap(
        """
        KTAP version 1
        # before the plan goes to main
        1..2
        # before the suite header goes to the suite
            KTAP version 1
            # Subtest: s
            # module: mymod
            1..2
            # a: setting up
            ok 1 a
            # b: EXPECTATION FAILED
            not ok 2 b
            # s: pass:1 fail:1 skip:0 total:2
        not ok 1 s
        # between top-level tests goes to the next one
        ok 2 t
        """
    )
    assert doc.root.diagnostics == ["# before the plan goes to main"]
    assert node(doc, "s").diagnostics == [
        "# before the suite header goes to the suite",
        "# module: mymod",
        "# s: pass:1 fail:1 skip:0 total:2",
    ]
    assert node(doc, "s", "a").diagnostics == ["# a: setting up"]
    assert node(doc, "s", "b").diagnostics == ["# b: EXPECTATION FAILED"]
    assert node(doc, "t").diagnostics == ["# between top-level tests goes to the next one"]


def test_numbering_mismatch_is_a_warning() -> None:
    doc = ktap("KTAP version 1\n1..3\nok 1 a\nok 3 c\nok 3 d\n")
    assert [t.name for t in doc.root.subtests] == ["a", "c", "d"]
    assert doc.warnings == [
        "line 4: expected test number 2, got 3",
    ]
    assert doc.counts().errors == 1 and doc.status is TestStatus.PASS


def test_version_warnings() -> None:
    doc = ktap("KTAP version 2\n1..1\nok 1 a\n")
    assert doc.warnings == ["line 1: KTAP version higher than expected"]
    assert doc.status is TestStatus.PASS


def test_missing_plan_entries_become_crash_nodes() -> None:
    # The suite's result line arrives after 2 of 4 planned cases: not truncated,
    # but the missing cases are CRASH (kunit_tool does the same).
    doc = ktap(
        """
        KTAP version 1
        1..1
            # Subtest: s
            1..4
            ok 1 a
            ok 2 b
        ok 1 s
        """
    )
    suite = node(doc, "s")
    assert [(t.number, t.status) for t in suite.subtests] == [
        (1, TestStatus.PASS),
        (2, TestStatus.PASS),
        (3, TestStatus.CRASH),
        (4, TestStatus.CRASH),
    ]
    assert suite.status is TestStatus.CRASH and doc.status is TestStatus.CRASH
    assert doc.complete  # the output did not end early
    assert doc.counts() == Counts(passed=2, crashed=2, errors=2)


def test_truncated_output_is_crash() -> None:
    doc = ktap(
        """
        KTAP version 1
        1..2
            KTAP version 1
            # Subtest: s
            1..3
            ok 1 a
            # b: running
        """
    )
    assert not doc.complete and doc.status is TestStatus.CRASH
    suite = node(doc, "s")
    assert suite.status is TestStatus.CRASH and suite.reported is None
    assert [t.status for t in suite.subtests] == [
        TestStatus.PASS,
        TestStatus.CRASH,
        TestStatus.CRASH,
    ]
    # What was printed before the kernel died is kept on the test that was running.
    assert suite.subtests[1].diagnostics == ["# b: running"]
    assert doc.root.subtests[1].status is TestStatus.CRASH  # 2nd planned top-level test
    assert doc.counts() == Counts(passed=1, crashed=3, errors=4)


def test_truncated_inside_suite_whose_cases_all_passed() -> None:
    # All planned cases done, but the suite result line never came (died in exit).
    doc = ktap("KTAP version 1\n1..1\n  # Subtest: s\n  1..1\n  ok 1 a\n")
    assert node(doc, "s").status is TestStatus.CRASH
    assert doc.counts() == Counts(passed=1, crashed=1, errors=1)
    assert doc.status is TestStatus.CRASH and not doc.complete


def test_walk_paths_and_counts_total() -> None:
    doc = ktap("KTAP version 1\n1..1\n  # Subtest: s\n  1..2\n  ok 1 a\n  ok 2 b\nok 1 s\n")
    assert [p for p, _ in doc.walk()] == [["s"], ["s", "a"], ["s", "b"]]
    assert list(doc.root.subtests[0].subtests[0].walk()) == []
    assert doc.counts().total() == 2


# ------------------------------------------------------------------- consoles

MULTI_DOC_CONSOLE = """\
[    0.000000] Linux version 7.2.13 (builder@host) #1 SMP PREEMPT_DYNAMIC
[    0.412345] Run KUnit tests at boot
[    1.000000] KTAP version 1
[    1.000001] 1..2
[    1.000100]     KTAP version 1
[    1.000101]     # Subtest: list
[    1.000102]     # module: list_test
[    1.000103]     1..2
[    1.100000]     ok 1 list_add
[    1.150000] random: crng init done
[    1.200000]     ok 2 list_del
[    1.200001] # list: pass:2 fail:0 skip:0 total:2
[    1.200002] ok 1 list
[    1.300000]     KTAP version 1
[    1.300001]     # Subtest: bits
[    1.300002]     1..1
[    1.350000]     ok 1 bits_test # SKIP not on this arch
[    1.350001] ok 2 bits # SKIP not on this arch
[    2.000000] Freeing unused kernel image (initmem) memory: 2048K
[    2.100000] Run /init as init process
kbulk-init: loading test modules
<6>[   12.345678] KTAP version 1
<6>[   12.345679] 1..1
<6>[   12.345680]     KTAP version 1
<6>[   12.345681]     # Subtest: kbulk_stress
<6>[   12.345682]     1..2
<6>[   12.500000]     # alloc: kbulk-metric: test=alloc ops=1500 ns_per_op=12.5 mode="fast path"
<4>[   12.600000] some_driver: unrelated warning while the test runs
<6>[   13.345682]     ok 1 alloc
<6>[   13.400000]     # free: EXPECTATION FAILED at drivers/kbulk/stress.c:42
<6>[   13.545682]     not ok 2 free
<6>[   13.545683] # kbulk_stress: pass:1 fail:1 skip:0 total:2
<6>[   13.545690] not ok 1 kbulk_stress
kbulk-init: module kbulk_stress done
TAP version 13
1..1
# selftests: kbulk: smoke
ok 1 selftests: kbulk: smoke
[   20.000000] reboot: Power down
"""


def test_multiple_documents_in_one_console() -> None:
    doc = parse_console(MULTI_DOC_CONSOLE)
    assert [t.name for t in doc.root.subtests] == [
        "list",
        "bits",
        "kbulk_stress",
        "selftests: kbulk: smoke",
    ]
    assert doc.root.planned == 4
    assert doc.complete and not doc.warnings
    assert doc.status is TestStatus.FAIL
    assert doc.counts() == Counts(passed=4, failed=1, skipped=1)
    # Line numbers are console line numbers.
    assert node(doc, "list").first_line == 5
    assert node(doc, "kbulk_stress", "free").last_line == 31
    # Interleaved kernel messages become diagnostics of the test they interrupt.
    assert node(doc, "list", "list_del").diagnostics == ["random: crng init done"]
    assert node(doc, "kbulk_stress", "alloc").diagnostics[-1] == (
        "some_driver: unrelated warning while the test runs"
    )
    # Messages between documents belong to no test.
    everything = [d for _, n in doc.walk() for d in n.diagnostics] + doc.root.diagnostics
    assert not any("Run /init" in d or "kbulk-init" in d for d in everything)
    # Durations from printk timestamps: previous result line -> this result line.
    assert node(doc, "list", "list_add").duration == pytest.approx(0.099897)
    assert node(doc, "kbulk_stress", "free").duration == pytest.approx(0.2)


def test_extract_strips_prefixes_per_document() -> None:
    lines = dict(extract_ktap_lines(MULTI_DOC_CONSOLE))
    assert 1 not in lines and 2 not in lines  # before the first document
    assert lines[3] == "KTAP version 1"
    assert lines[6] == "    # Subtest: list"
    assert lines[10] == "random: crng init done"
    assert lines[21] == "kbulk-init: loading test modules"  # no printk prefix: kept as is
    assert lines[22] == "KTAP version 1"  # "<6>[...]" prefix of the new document
    assert lines[28] == "some_driver: unrelated warning while the test runs"  # "<4>[...]"
    assert lines[35] == "TAP version 13"


def test_extract_caller_id_and_changing_timestamp_width() -> None:
    console = [
        "[    9.999990][    T1] KTAP version 1\n",
        "[    9.999991][    T1] 1..1\n",
        "[   10.000000][   T42]     # Subtest: s\n",
        "[   10.5][    C0]     1..1\n",
        "[  100.000000][    T1]     ok 1 a\n",
        "[  100.000001][    T1] ok 1 s\n",
    ]
    assert [text for _, text in extract_ktap_lines(console)] == [
        "KTAP version 1",
        "1..1",
        "    # Subtest: s",
        "    1..1",
        "    ok 1 a",
        "ok 1 s",
    ]
    assert parse_console(console).counts() == Counts(passed=1)


def test_ktap_end_markers_close_a_document() -> None:
    console = (
        "KTAP version 1\n1..1\nok 1 a\nList of all partitions:\n# not part of any test\n"
        "KTAP version 1\n1..1\nok 1 b\n"
    )
    doc = parse_console(console)
    assert [t.name for t in doc.root.subtests] == ["a", "b"]
    assert "# not part of any test" not in [text for _, text in extract_ktap_lines(console)]


def test_new_document_interrupts_an_unfinished_one() -> None:
    # The kernel rebooted mid-suite (e.g. panic=1) and ran the tests again.
    console = (
        "[ 1.0] KTAP version 1\n[ 1.0] 1..2\n[ 1.0]   # Subtest: s\n[ 1.0]   1..2\n"
        "[ 1.1]   ok 1 a\n[ 1.2] Kernel panic - not syncing: Fatal exception\n"
        "[ 0.0] Linux version 7.2\n[ 1.0] KTAP version 1\n[ 1.0] 1..1\n[ 1.1] ok 1 again\n"
    )
    doc = parse_console(console)
    assert [(t.name, t.status) for t in doc.root.subtests] == [
        ("s", TestStatus.CRASH),
        ("", TestStatus.CRASH),
        ("again", TestStatus.PASS),
    ]
    assert not doc.complete
    # The panic lines stay with the test that was running.
    crashed = node(doc, "s").subtests[1]
    assert crashed.diagnostics[0] == "Kernel panic - not syncing: Fatal exception"
    assert running_test_at(doc, 6) == ["s", ""]


def test_executor_errors_are_kept() -> None:
    doc = parse_console("kunit executor: error adding attr to test suite\n")
    assert doc.root.diagnostics == ["kunit executor: error adding attr to test suite"]
    assert doc.status is TestStatus.NO_TESTS


def test_running_test_at_attributes_oops_to_case() -> None:
    console = (
        "KTAP version 1\n1..1\n    # Subtest: s\n    1..2\n    ok 1 a\n"
        "BUG: kernel NULL pointer dereference, address: 0000000000000000\n"
        "Oops: 0002 [#1] SMP\n    not ok 2 b\nnot ok 1 s\n"
    )
    doc = parse_console(console)
    assert running_test_at(doc, 6) == ["s", "b"]
    assert running_test_at(doc, 5) == ["s", "a"]
    assert running_test_at(doc, 1) is None
    assert node(doc, "s", "b").diagnostics[0].startswith("BUG: kernel NULL")


def test_parse_ktap_accepts_strings_tuples_and_text() -> None:
    text = "KTAP version 1\n1..1\nok 1 a\n"
    from_text = parse_ktap(text)
    from_list = parse_ktap(text.splitlines())
    from_tuples = parse_ktap([(10, "KTAP version 1"), (11, "1..1"), (12, "ok 1 a")])
    assert from_text == from_list
    assert from_tuples.root.subtests[0].last_line == 12
    assert from_text.counts() == Counts(passed=1)


# -------------------------------------------------------------------- metrics


def test_metrics_parsing() -> None:
    metrics = metrics_from(parse_console(MULTI_DOC_CONSOLE))
    assert metrics == [
        Metric(
            test_path=["kbulk_stress", "alloc"],
            test="alloc",
            values={"ops": 1500, "ns_per_op": 12.5, "mode": "fast path"},
        )
    ]


def test_metrics_forms_and_value_types() -> None:
    doc = ktap(
        r"""
        KTAP version 1
        1..1
            # Subtest: bench
            1..1
            # kbulk-metric: test=memcpy bytes=4096 gbps=1.5e1 delta=-3 note="a \"q\"" nan=nan
            # kbulk-metric: ratio=0.25
            # not a kbulk-metric: line
            ok 1 memcpy
            # kbulk-metric: test=suite_total runs=1
        ok 1 bench
        """
    )
    metrics = metrics_from(doc)
    assert [(m.test_path, m.test) for m in metrics] == [
        (["bench"], "suite_total"),
        (["bench", "memcpy"], "memcpy"),
        (["bench", "memcpy"], "memcpy"),  # test= missing: the KTAP test's name
    ]
    assert metrics[1].values == {
        "bytes": 4096,
        "gbps": 15.0,
        "delta": -3,
        "note": 'a "q"',
        "nan": "nan",  # non-finite numbers stay text (JSON-safe)
    }
    assert metrics[2].values == {"ratio": 0.25}
    # From a node: its own lines have an empty path, descendants relative paths.
    assert [(m.test_path, m.test) for m in metrics_from(node(doc, "bench"))] == [
        ([], "suite_total"),
        (["memcpy"], "memcpy"),
        (["memcpy"], "memcpy"),
    ]
    assert [m.test_path for m in metrics_from(node(doc, "bench", "memcpy"))] == [[], []]


# ----------------------------------------------------------------- robustness

_FRAGMENTS = [
    "KTAP version 1",
    "TAP version 14",
    "KTAP version 99999999999999999999999",
    "1..3",
    "1..0",
    "1..40",
    "ok 1 a",
    "not ok 2 b # SKIP x",
    "ok 3 # XFAIL",
    "# Subtest: s",
    '# kbulk-metric: test=x v=1 w="',
    "List of all partitions:",
    "kunit executor: x",
    "[    1.000000] ",
    "<6>[ 2.5][  T1] ",
    "ok",
    "not ok 1",
    "#",
    "\x00\x1b[31m\x85\u2028",
]


def _random_console(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(0, 80)):
        if rng.random() < 0.6:
            indent = " " * rng.choice([0, 0, 2, 4, 8]) + "\t" * rng.choice([0, 0, 1])
            parts.append(indent + rng.choice(_FRAGMENTS) + rng.choice(["\n", "\n", " x", ""]))
        else:
            parts.append(
                bytes(rng.randrange(256) for _ in range(rng.randint(0, 24))).decode("latin-1")
            )
    return "".join(parts)


def _check_invariants(doc: KtapDocument) -> None:
    assert isinstance(doc, KtapDocument)
    assert not any(w.startswith("internal") for w in doc.warnings), doc.warnings
    counts = doc.counts()
    assert min(counts.__dict__.values()) >= 0
    for _, test in doc.walk():
        assert isinstance(test.status, TestStatus)
    metrics_from(doc)


def test_random_garbage_never_raises() -> None:
    rng = random.Random(20260525)  # fixed seed: reproducible
    for _ in range(400):
        text = _random_console(rng)
        _check_invariants(parse_console(text))
        _check_invariants(parse_console(text.encode("utf-8", "surrogatepass")))
        _check_invariants(parse_ktap(text.split("\n")))


def test_random_bytes_never_raise() -> None:
    rng = random.Random(7)
    for _ in range(200):
        blob = bytes(rng.randrange(256) for _ in range(rng.randint(0, 2000)))
        _check_invariants(parse_console(blob))


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.log")))
def test_every_truncation_of_a_real_log(name: str) -> None:
    lines = (DATA / name).read_text().splitlines()
    plan_at = next(n for n, text in extract_ktap_lines(lines) if re.match(r"\s*1\.\.\d", text))
    end = max(t.last_line or 0 for t in parse_console(lines).root.subtests)
    for cut in range(len(lines) + 1):
        doc = parse_console(lines[:cut])
        _check_invariants(doc)
        if plan_at <= cut < end:  # the kernel "died" after announcing its plan
            assert not doc.complete and doc.status is TestStatus.CRASH, cut


def test_deep_nesting_is_bounded() -> None:
    depth = 400
    text = "KTAP version 1\n1..1\n" + "".join(
        f"{'  ' * i}KTAP version 1\n{'  ' * i}# Subtest: s{i}\n{'  ' * i}1..1\n"
        for i in range(1, depth)
    )
    doc = parse_console(text)
    _check_invariants(doc)
    deepest = max(len(path) for path, _ in doc.walk())
    assert MAX_DEPTH <= deepest <= MAX_DEPTH + 1
    assert any("nesting deeper" in w for w in doc.warnings)
    assert doc.status is TestStatus.CRASH


def test_implausible_plan_is_bounded() -> None:
    doc = parse_console("KTAP version 1\n1..999999999999999999999\nok 1 a\n")
    assert len(doc.root.subtests) == MAX_MISSING + 1
    assert doc.counts().crashed == MAX_MISSING
    assert any("too many missing tests" in w for w in doc.warnings)


def test_iterable_that_raises_is_contained() -> None:
    def broken() -> Iterator[str]:
        yield "KTAP version 1"
        raise OSError("serial port went away")

    doc = parse_console(broken())
    assert doc.warnings and doc.warnings[0].startswith("internal extraction error")
    assert doc.status is TestStatus.NO_TESTS and not doc.complete


def test_printk_between_a_subtests_ktap_version_and_its_header_is_a_diagnostic() -> None:
    # A real x86_64 boot (two runs sharing the host): the i8042 driver's
    # "input: AT Translated Set 2 keyboard" landed between a parameterised
    # case's "KTAP version 1" and its "# Subtest:" line. kunit_tool loses the
    # nesting there and reports the suite as crashed; the kernel printed nothing
    # wrong, every case passed.
    log = (
        Path(__file__).parent
        / "data"
        / "console"
        / ("x86_64-printk-between-ktap-version-and-subtest.log")
    )
    lines = log.read_text().splitlines()
    found = analyze(lines, ExitReason.COMPLETED, ["kbulk_stress"])
    assert found.status is RunStatus.PASS, found.message
    assert found.ktap.warnings == []
    suite = next(t for t in found.ktap.root.subtests if t.name == "page_alloc_bulk_order")
    assert [t.number for t in suite.subtests] == list(range(1, 16))
    param = suite.subtests[1]
    assert param.name == "bulk_order_opportunistic"
    assert [c.name for c in param.subtests] == ["GFP_NOWAIT", "GFP_ATOMIC"]
    assert any("AT Translated Set 2 keyboard" in d for d in param.diagnostics)
