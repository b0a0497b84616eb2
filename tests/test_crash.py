"""Crash detection on console excerpts in the kernel's own formats."""

from harness.analysis.crash import RunningTestTracker, find_crashes, strip_prefix

NULL_DEREF_PANIC = """\
KTAP version 1
1..1
    KTAP version 1
    # Subtest: kunit_fault
    # module: kunit_test
    1..1
[    2.345678] BUG: kernel NULL pointer dereference, address: 0000000000000000
[    2.345679] #PF: supervisor write access in kernel mode
[    2.345680] Oops: Oops: 0002 [#1] SMP NOPTI
[    2.345681] CPU: 0 UID: 0 PID: 42 Comm: kunit_try_catch Not tainted 7.2.13 #1
[    2.345682] RIP: 0010:kunit_test_null_dereference+0x5/0x10
[    2.345683] Call Trace:
[    2.345684]  <TASK>
[    2.345685]  kunit_generic_run_threadfn_adapter+0x1c/0x40
[    2.345686]  </TASK>
[    2.345687] ---[ end trace 0000000000000000 ]---
[    2.345690] Kernel panic - not syncing: Fatal exception
[    2.345691] ---[ end Kernel panic - not syncing: Fatal exception ]---
"""

WARNING_THEN_OK = """\
KTAP version 1
1..1
    KTAP version 1
    # Subtest: page_alloc_bulk_semantics
    1..3
    ok 1 first
------------[ cut here ]------------
WARNING: CPU: 1 PID: 77 at mm/page_alloc.c:4321 alloc_pages_bulk_noprof+0x123/0x456
Modules linked in:
---[ end trace 0000000000000000 ]---
    ok 2 second
    ok 3 third
ok 1 page_alloc_bulk_semantics
"""

ARM64_OOPS_IN_MODULE = """\
kbulk-init: start
kbulk-init: step begin insmod kbulk_stress duration_ms=10
Unable to handle kernel paging request at virtual address dead000000000100
Internal error: Oops: 0000000096000044 [#1] SMP
pc : kbulk_stress_init+0x20/0x40 [kbulk_stress]
---[ end trace 0000000000000000 ]---
"""


def test_oops_and_panic_are_one_incident_naming_the_suite() -> None:
    reports = find_crashes(NULL_DEREF_PANIC.splitlines())
    assert len(reports) == 1
    crash = reports[0]
    assert crash.kind == "panic"
    assert crash.title.startswith("BUG: kernel NULL pointer dereference")
    assert crash.test == "kunit_fault.<case #1>"
    assert crash.line == 7
    assert any("Kernel panic" in line for line in crash.excerpt)


def test_warning_with_cut_here_is_reported_with_running_case() -> None:
    reports = find_crashes(WARNING_THEN_OK.splitlines())
    assert [(r.kind, r.test, r.line) for r in reports] == [
        ("warning", "page_alloc_bulk_semantics.<case #2>", 7)
    ]
    assert reports[0].excerpt[0].startswith("------------[ cut here ]")


def test_module_step_attribution_on_arm64_oops() -> None:
    reports = find_crashes(ARM64_OOPS_IN_MODULE.splitlines())
    assert len(reports) == 1
    assert reports[0].kind == "oops"
    assert reports[0].test == "module:kbulk_stress"


def test_clean_log_has_no_crashes() -> None:
    text = "KTAP version 1\n1..1\nok 1 x\nBUG_ON is a macro name in a message\n"
    assert find_crashes(text.splitlines()) == []


def test_kinds() -> None:
    samples = {
        "BUG: KASAN: slab-out-of-bounds in foo+0x1/0x2": "kasan",
        "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [x:1]": "soft_lockup",
        "INFO: task kworker/0:1:12 blocked for more than 120 seconds.": "hung_task",
        "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:": "rcu_stall",
        "kernel BUG at mm/page_alloc.c:100!": "bug",
        "general protection fault, probably for non-canonical address": "oops",
    }
    for line, kind in samples.items():
        reports = find_crashes([line])
        assert [r.kind for r in reports] == [kind], line


def test_strip_prefix() -> None:
    assert strip_prefix("[    1.234567] hello") == "hello"
    assert strip_prefix("<4>[ 12.000001] hi\r\n") == "hi"
    assert strip_prefix("[    1.000000][    T1] x") == "x"


def test_tracker_pops_finished_suites() -> None:
    t = RunningTestTracker()
    for line in NULL_DEREF_PANIC.splitlines()[:6]:
        t.feed(line)
    assert t.current() == "kunit_fault.<case #1>"
    t.feed("    ok 1 kunit_test_null_dereference")
    t.feed("ok 1 kunit_fault")
    assert t.current() is None


def test_recorded_x86_panic_from_kunit_fault() -> None:
    # Recorded from a real boot: Linux 7.2.13 x86_64 tinyconfig+KUnit under
    # TCG, kunit.filter_glob=kunit_fault oops=panic panic=-1.
    from pathlib import Path

    log = Path(__file__).parent / "data" / "console" / "x86_64-kunit-fault-panic.log"
    reports = find_crashes(log.read_text().splitlines())
    assert len(reports) == 1
    assert reports[0].kind == "panic"
    assert reports[0].test == "kunit_fault.<case #1>"
    assert reports[0].title.startswith("BUG: kernel NULL pointer dereference")
    assert any("Kernel panic - not syncing: Fatal exception" in x for x in reports[0].excerpt)


def test_warning_in_the_7_2_format_is_a_warning() -> None:
    """kernel/panic.c since 6.x: "WARNING: <file>:<line> at <func>, CPU#<n>: <comm>/<pid>"
    (seen on a 7.2.13 NUMA guest: x86's topology_sane())."""
    from harness.analysis.crash import CrashKind, classify_line

    line = (
        "WARNING: ../linux/arch/x86/kernel/smpboot.c:329 at topology_sane.isra.0+0x33/0x3d, "
        "CPU#1: swapper/1/0"
    )
    assert classify_line(line) is CrashKind.WARNING
    assert classify_line("WARNING: at f+0x1/0x2, CPU#0: init/1") is CrashKind.WARNING
    assert classify_line("sched: WARNING is just a word here") is None
