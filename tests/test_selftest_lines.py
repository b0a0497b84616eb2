"""test_vmalloc's "Summary:" lines become a suite of test cases."""

from harness.analysis.analyze import analyze
from harness.analysis.ktap import TestStatus
from harness.analysis.selftest_lines import parse_summaries

# as printed by lib/test_vmalloc.c (7.2) built in, two workers
CONSOLE = """\
[5.100000] Summary: fix_size_alloc_test passed: 1 failed: 0 xfailed: 0 repeat: 1 loops: 2 avg: 812
[5.100100] Summary: no_block_alloc_test passed: 0 failed: 0 xfailed: 1 repeat: 1 loops: 2 avg: 90
[5.100200] Summary: vm_map_ram_test passed: 0 failed: 1 xfailed: 0 repeat: 1 loops: 2 avg: 51
[5.100300] All test took worker0=1234 cycles
[5.100400] Summary: fix_size_alloc_test passed: 1 failed: 0 xfailed: 0 repeat: 1 loops: 2 avg: 799
[5.100500] Summary: no_block_alloc_test passed: 1 failed: 0 xfailed: 0 repeat: 1 loops: 2 avg: 88
[5.100600] Summary: vm_map_ram_test passed: 1 failed: 0 xfailed: 0 repeat: 1 loops: 2 avg: 50
""".splitlines()


def test_cases_merge_workers_and_fail_on_any_failure():
    (suite,) = parse_summaries(CONSOLE)
    assert suite.name == "test_vmalloc"
    statuses = {n.name: n.status for n in suite.subtests}
    assert statuses == {
        "fix_size_alloc_test": TestStatus.PASS,
        "no_block_alloc_test": TestStatus.PASS,  # one worker passed, one xfailed
        "vm_map_ram_test": TestStatus.FAIL,  # one worker failed
    }
    assert suite.status == TestStatus.FAIL
    assert suite.subtests[0].first_line == 1


def test_no_summary_lines_no_suite():
    assert parse_summaries(["[    1.0] Summary of nothing", "ok 1 foo"]) == []


def test_analyze_counts_them_with_kunit():
    ktap = [
        "KTAP version 1",
        "1..1",
        "    KTAP version 1",
        "    # Subtest: s",
        "    1..1",
        "    ok 1 c",
        "ok 1 s",
    ]
    lines = ktap + CONSOLE[:1]
    result = analyze(lines, None, [])
    names = [".".join(p) for p, n in result.ktap.walk() if n.is_leaf]
    assert names == ["s.c", "test_vmalloc.fix_size_alloc_test"]
    assert result.ktap.counts().passed == 2
