"""Tests for harness.record.store: status taxonomy, JSON round trip, JUnit, ResultDir."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from harness import fsutil
from harness.analysis.ktap import Counts, metrics_from, parse_console
from harness.record import store as results
from harness.record.junit import build_junit, write_junit
from harness.record.meta import RunMeta
from harness.record.run import AbSlot, ArchRun, BootInfo, BuildInfo, CrashReport, status_from_tests
from harness.record.status import (
    EXIT_CODES,
    SEVERITY,
    Accel,
    CrashKind,
    ExitReason,
    RunStatus,
    Variant,
    exit_code,
    worst,
)
from harness.record.store import SCHEMA_VERSION, ResultDir, load_json, write_json

X86_CONSOLE = """\
[    0.000000] Linux version 7.2.13+bulk-v1
[    1.000000] KTAP version 1
[    1.000001] 1..3
[    1.000100]     KTAP version 1
[    1.000101]     # Subtest: basic
[    1.000102]     1..4
[    1.100000]     ok 1 pass_case
[    1.200000]     # fail_case: EXPECTATION FAILED at lib/basic.c:10
[    1.200001]     \x1b[31mExpected 1 == 2\x1b[0m
[    1.300000]     not ok 2 fail_case
[    1.400000]     ok 3 skip_case # SKIP no hardware
[    1.500000]     ok 4 xfail_case # SKIP XFAIL: bug 42
[    1.500001] not ok 1 basic
[    2.000000]     KTAP version 1
[    2.000001]     # Subtest: params
[    2.000002]     1..1
[    2.000003]         KTAP version 1
[    2.000004]         # Subtest: param_case
[    2.000005]         1..2
[    2.100000]         ok 1 p0
[    2.200000]         ok 2 p1
[    2.200001]     ok 1 param_case
[    2.200002] ok 2 params
[    3.000000]     KTAP version 1
[    3.000001]     # Subtest: kbulk_stress
[    3.000002]     1..2
[    3.100000]     # alloc: kbulk-metric: test=alloc ops=1500 ns_per_op=12.5
[    3.200000]     ok 1 alloc
[    3.300000] BUG: kernel NULL pointer dereference, address: 0000000000000000
[    3.300001] Oops: 0002 [#1] SMP NOPTI
[    3.300002] Kernel panic - not syncing: Fatal exception
"""

RISCV_CONSOLE = "KTAP version 1\n1..1\n    # Subtest: s\n    1..1\n    ok 1 a\nok 1 s\n" + "".join(
    f"after tests line {i}\n" for i in range(150)
)


def x86_run() -> ArchRun:
    doc = parse_console(X86_CONSOLE)
    crash = CrashReport(
        kind=CrashKind.PANIC,
        title="BUG: kernel NULL pointer dereference, address: 0000000000000000",
        test="kbulk_stress",
        line=29,
        excerpt=[
            "BUG: kernel NULL pointer dereference, address: 0000000000000000",
            "Oops: 0002 [#1] SMP NOPTI",
            "Kernel panic - not syncing: Fatal exception",
        ],
        decoded=["RIP: 0010:kbulk_free+0x12/0x40 drivers/kbulk/stress.c:42"],
    )
    return ArchRun(
        arch="x86_64",
        kernel="v7.2.13+bulk-v1",
        status=status_from_tests(doc, [crash]),
        series="bulk-v1",
        ktap=doc,
        crashes=[crash],
        metrics=metrics_from(doc),
        console_log="x86_64/console.log",
        durations={"build": 120.5, "boot": 3.25, "test": 3.3},
        build=BuildInfo(
            dir="/cache/build-x86_64-0123456789ab",
            log="/cache/build-x86_64-0123456789ab/build.log",
            warnings=2,
            config_digest="0123456789ab" * 5,
            image="/cache/build-x86_64-0123456789ab/arch/x86/boot/bzImage",
            image_sha256="f" * 64,
            make_argv=["make", "O=/cache/build-x86_64-0123456789ab", "bzImage", "vmlinux"],
        ),
        boot=BootInfo(
            accel=Accel.KVM,
            accel_reason="KVM probe boot reached init in 1.0 s",
            qemu_argv=["qemu-system-x86_64", "-machine", "q35", "-append", "console=ttyS0 a='b c'"],
            memory="1G",
            smp=2,
            cmdline="console=ttyS0 a='b c'",
            exit_reason=ExitReason.GUEST_EXIT,
            qemu_exit_status=0,
            notes=["QEMU did not exit after the guest finished"],
        ),
        module_steps={"kbulk_stress": None},
    )


def arm64_build_failure() -> ArchRun:
    return ArchRun(
        arch="arm64",
        kernel="v7.2.13+bulk-v1",
        status=RunStatus.BUILD_FAILURE,
        message="drivers/kbulk/stress.c:12:3: error: implicit declaration of function 'foo'",
        durations={"build": 30.0},
    )


def riscv_timeout() -> ArchRun:
    return ArchRun(
        arch="riscv64",
        kernel="v7.2.13+bulk-v1",
        status=RunStatus.TIMEOUT,
        boot=BootInfo(accel=Accel.TCG, exit_reason=ExitReason.INACTIVITY),
        ktap=parse_console(RISCV_CONSOLE),
        console_log="riscv64/console.log",
        message="no console output for 300 s",
        durations={"boot": 5.0, "test": 300.0},
    )


def all_runs(run_dir: Path) -> list[ArchRun]:
    for arch, text in (("x86_64", X86_CONSOLE), ("riscv64", RISCV_CONSOLE)):
        (run_dir / arch).mkdir(parents=True, exist_ok=True)
        (run_dir / arch / "console.log").write_text(text)
    return [x86_run(), arm64_build_failure(), riscv_timeout()]


def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.name.endswith(".tmp"))


# ------------------------------------------------------------------- statuses


def test_exit_codes_are_distinct_and_complete() -> None:
    assert set(EXIT_CODES) == set(RunStatus)
    assert len(set(EXIT_CODES.values())) == len(EXIT_CODES)
    assert 2 not in EXIT_CODES.values()  # argparse usage errors
    assert EXIT_CODES[RunStatus.PASS] == 0
    assert set(SEVERITY) == set(RunStatus) and len(SEVERITY) == len(RunStatus)


def test_worst_combines_runs_by_severity() -> None:
    assert worst([]) is RunStatus.NO_TESTS
    assert worst([RunStatus.PASS, RunStatus.PASS]) is RunStatus.PASS
    assert worst([RunStatus.PASS, RunStatus.NO_TESTS]) is RunStatus.NO_TESTS
    assert worst([RunStatus.PASS, RunStatus.INFRA_ERROR]) is RunStatus.INFRA_ERROR
    # A definite finding about the kernel outranks an unknown (infra) result.
    assert worst([RunStatus.INFRA_ERROR, RunStatus.TEST_FAILURE]) is RunStatus.TEST_FAILURE
    assert worst([RunStatus.TIMEOUT, RunStatus.CRASH]) is RunStatus.CRASH
    assert worst([RunStatus.CRASH, RunStatus.BUILD_FAILURE]) is RunStatus.BUILD_FAILURE
    assert worst([RunStatus.BUILD_FAILURE, RunStatus.PATCH_FAILURE]) is RunStatus.PATCH_FAILURE
    runs = [riscv_timeout(), arm64_build_failure()]
    assert worst(r.status for r in runs) is RunStatus.BUILD_FAILURE
    assert exit_code(r.status for r in runs) == 5
    assert exit_code(["fail", "pass"]) == 1  # plain strings are accepted


def test_status_from_tests() -> None:
    passed = parse_console("KTAP version 1\n1..1\nok 1 a\n")
    failed = parse_console("KTAP version 1\n1..1\nnot ok 1 a\n")
    truncated = parse_console("KTAP version 1\n1..2\nok 1 a\n")
    warning = CrashReport("warning", "WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x1", None, 3, [])
    oops = CrashReport("oops", "Oops: 0000 [#1]", "a", 3, [])
    assert status_from_tests(None) is RunStatus.NO_TESTS
    assert status_from_tests(parse_console("")) is RunStatus.NO_TESTS
    assert status_from_tests(passed) is RunStatus.PASS
    assert status_from_tests(passed, [warning]) is RunStatus.PASS
    assert status_from_tests(passed, [warning, oops]) is RunStatus.CRASH
    assert status_from_tests(failed) is RunStatus.TEST_FAILURE
    assert status_from_tests(truncated) is RunStatus.CRASH
    assert x86_run().status is RunStatus.CRASH


# ----------------------------------------------------------------------- JSON


def test_json_round_trip(tmp_path: Path) -> None:
    runs = all_runs(tmp_path)
    meta = results.default_meta(["kbulk", "run", "--arch", "all"])
    meta.kernel = "v7.2.13+series-abc123"
    path = tmp_path / "results.json"
    write_json(path, runs, meta)
    loaded_meta, loaded_runs = load_json(path)
    assert loaded_meta == meta
    assert loaded_runs == runs  # dataclass equality, down to every test node
    assert loaded_runs[0].ktap is not None
    assert loaded_runs[0].ktap.counts() == runs[0].ktap.counts()


def test_json_layout(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write_json(path, all_runs(tmp_path), RunMeta(command_line=["kbulk"]))
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["summary"]["status"] == "build_failure" and data["summary"]["exit_code"] == 5
    x86 = data["runs"][0]
    assert {"arch", "kernel", "status", "accelerator", "durations", "message", "crashes"} <= set(
        x86
    )
    assert x86["metrics"] == [
        {
            "test_path": ["kbulk_stress", "alloc"],
            "test": "alloc",
            "values": {"ops": 1500, "ns_per_op": 12.5},
        }
    ]
    suite = x86["ktap"]["root"]["subtests"][0]
    assert {"name", "status", "directive", "diagnostics", "subtests"} <= set(suite)
    assert suite["name"] == "basic" and suite["status"] == "fail"
    assert x86["ktap"]["counts"]["xfail"] == 1
    assert data["runs"][1]["ktap"] is None


def test_json_round_trip_of_an_ab_slot(tmp_path: Path) -> None:
    run = x86_run()
    run.ab = AbSlot(Variant.PATCHED, 1)
    write_json(tmp_path / "results.json", [run], RunMeta())
    (loaded,) = load_json(tmp_path / "results.json")[1]
    assert loaded.ab == AbSlot(Variant.PATCHED, 1) and loaded.patched and loaded.repetition == 1
    assert loaded == run


def test_json_v2_fields(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write_json(path, [x86_run()], RunMeta())
    run = json.loads(path.read_text())["runs"][0]
    assert "details" not in run
    assert run["boot"]["qemu_argv"][-1] == "console=ttyS0 a='b c'"  # a list, not a string
    assert run["boot"]["notes"] == ["QEMU did not exit after the guest finished"]
    assert run["build"]["make_argv"][-2:] == ["bzImage", "vmlinux"]
    assert run["build"]["config_digest"] == "0123456789ab" * 5
    assert (run["series"], run["accelerator"], run["ab"]) == ("bulk-v1", "kvm", None)
    assert run["module_steps"] == {"kbulk_stress": None}


def test_load_json_rejects_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1, "runs": []}))
    with pytest.raises(ValueError, match="schema_version"):
        load_json(path)


# ---------------------------------------------------------------------- JUnit


def junit_for(tmp_path: Path) -> JUnitXml:
    path = tmp_path / "junit.xml"
    write_junit(path, all_runs(tmp_path))
    ET.parse(path)  # well-formed XML for any consumer, not just junitparser
    return JUnitXml.fromfile(str(path))


def test_junit_suites_cases_and_counts(tmp_path: Path) -> None:
    xml = junit_for(tmp_path)
    suites = {suite.name: suite for suite in xml}
    assert list(suites) == [
        "x86_64.basic",
        "x86_64.params.param_case",  # nested suites are flattened with dotted names
        "x86_64.kbulk_stress",
        "arm64.run",
        "riscv64.s",
        "riscv64.run",
    ]
    basic = suites["x86_64.basic"]
    assert (basic.tests, basic.failures, basic.errors, basic.skipped) == (4, 1, 0, 2)
    assert {case.classname for case in basic} == {"x86_64.basic"}
    assert [case.name for case in suites["x86_64.params.param_case"]] == ["p0", "p1"]
    stress = suites["x86_64.kbulk_stress"]
    assert (stress.tests, stress.errors) == (2, 1)
    # 8 x86_64 cases + arm64.run + riscv64.s.a + riscv64.run
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (11, 1, 3, 2)
    # x86_64 leaf counts line up with the KTAP counts.
    counts = x86_run().ktap.counts()  # type: ignore[union-attr]
    assert counts == Counts(passed=4, failed=1, skipped=1, crashed=1, xfail=1, errors=2)
    props = {p.name: p.value for p in basic.properties()}
    assert props == {
        "arch": "x86_64",
        "kernel": "v7.2.13+bulk-v1",
        "run_status": "crash",
        "accelerator": "kvm",
    }


def test_junit_results_carry_messages(tmp_path: Path) -> None:
    xml = junit_for(tmp_path)
    cases = {(case.classname, case.name): case for suite in xml for case in suite}

    failed = cases[("x86_64.basic", "fail_case")]
    (failure,) = failed.result
    assert isinstance(failure, Failure)
    assert failure.message == "fail_case: EXPECTATION FAILED at lib/basic.c:10"
    assert "EXPECTATION FAILED" in failure.text
    assert "Expected 1 == 2" in failure.text and "\x1b" not in failure.text  # colours dropped
    assert failed.time == pytest.approx(0.2)

    (skipped,) = cases[("x86_64.basic", "skip_case")].result
    assert isinstance(skipped, Skipped) and skipped.message == "no hardware"
    (xfail,) = cases[("x86_64.basic", "xfail_case")].result
    assert isinstance(xfail, Skipped) and xfail.message.startswith("XFAIL")

    crashed = cases[("x86_64.kbulk_stress", "#2")]  # planned test that never ran
    (error,) = crashed.result
    assert isinstance(error, Error) and error.type == "panic"
    assert error.message.startswith("BUG: kernel NULL pointer dereference")
    assert "Kernel panic - not syncing" in error.text and "decoded:" in error.text

    build = cases[("arm64.run", "v7.2.13+bulk-v1")]
    (error,) = build.result
    assert error.type == "build_failure" and "implicit declaration" in error.message
    assert build.time == pytest.approx(30.0)

    # Tests passed but the run hung: a run-level error with the console tail.
    timeout = cases[("riscv64.run", "v7.2.13+bulk-v1")]
    (error,) = timeout.result
    assert error.type == "timeout" and error.message == "no console output for 300 s"
    tail = timeout.system_out.splitlines()
    assert len(tail) == 100 and tail[-1] == "after tests line 149"
    assert cases[("riscv64.s", "a")].result == []


def test_junit_suite_level_outcomes(tmp_path: Path) -> None:
    console = (
        "KTAP version 1\n1..2\n"
        "    # Subtest: bad_init\n    1..1\n    ok 1 a\n"
        "    # suite_init failed\nnot ok 1 bad_init\n"
        "    # Subtest: empty\n    1..0\nok 2 empty\n"
    )
    run = ArchRun("x86_64", "k", RunStatus.TEST_FAILURE, ktap=parse_console(console))
    xml = build_junit([run])
    cases = {(c.classname, c.name): c for suite in xml for c in suite}
    (failure,) = cases[("x86_64.bad_init", "(suite)")].result
    assert isinstance(failure, Failure) and "suite_init failed" in failure.message
    # A suite that ran no tests has no subtests: it is a leaf, listed with the run.
    (skipped,) = cases[("x86_64", "empty")].result
    assert isinstance(skipped, Skipped) and skipped.message == "no tests run"
    assert run.ktap is not None and run.ktap.counts().failed == xml.failures == 1


def test_junit_top_level_leaves_and_same_arch_twice(tmp_path: Path) -> None:
    kselftest = parse_console("TAP version 13\n1..2\nok 1 selftests: a\nnot ok 2 selftests: b\n")
    runs = [
        ArchRun("x86_64", "base", RunStatus.TEST_FAILURE, ktap=kselftest),
        ArchRun("x86_64", "patched", RunStatus.NO_TESTS, ktap=parse_console("")),
    ]
    xml = build_junit(runs)
    assert [suite.name for suite in xml] == ["x86_64@base", "x86_64@patched.run"]
    assert [case.name for case in next(iter(xml))] == ["selftests: a", "selftests: b"]
    (error,) = next(case for suite in xml for case in suite if case.name == "patched").result
    assert error.type == "no_tests"


def test_junit_survives_hostile_text(tmp_path: Path) -> None:
    console = "KTAP version 1\n1..1\n# \x00\x07 <&> ]]> \ud800\nnot ok 1 n\x0bame\x1b\n"
    run = ArchRun("x86_64", "k\x01", RunStatus.TEST_FAILURE, ktap=parse_console(console))
    path = tmp_path / "junit.xml"
    write_junit(path, [run])
    ET.parse(path)
    assert JUnitXml.fromfile(str(path)).failures == 1


# --------------------------------------------------------------- atomic writes


def test_writes_leave_no_temp_files(tmp_path: Path) -> None:
    runs = all_runs(tmp_path)
    write_json(tmp_path / "results.json", runs, RunMeta())
    write_junit(tmp_path / "junit.xml", runs)
    write_json(
        tmp_path / "results.json", runs, RunMeta(extra={"again": True})
    )  # overwrite in place
    assert temp_files(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "junit.xml",
        "results.json",
        "riscv64",
        "x86_64",
    ]
    assert oct((tmp_path / "results.json").stat().st_mode & 0o777) == oct(0o644)


def test_failed_write_keeps_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "results.json"
    write_json(path, [arm64_build_failure()], RunMeta(extra={"version": 1}))
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_json(path, [x86_run()], RunMeta(extra={"version": 2}))
    monkeypatch.undo()
    assert path.read_bytes() == before and temp_files(tmp_path) == []

    # Unserialisable content fails before the file is touched.
    bad = arm64_build_failure()
    bad.durations["build"] = float("nan")
    with pytest.raises(ValueError):
        write_json(path, [bad], RunMeta())
    assert path.read_bytes() == before and temp_files(tmp_path) == []


# ------------------------------------------------------------------ ResultDir

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_result_dir_is_never_overwritten(tmp_path: Path) -> None:
    first = ResultDir.create(tmp_path / "results", run_id="abc123", now=NOW)
    assert first.path == tmp_path / "results" / "20260102T030405Z-abc123"
    marker = first.arch_path("x86_64", "console.log")
    marker.write_text("precious")
    with pytest.raises(FileExistsError):
        ResultDir.create(tmp_path / "results", run_id="abc123", now=NOW)
    assert marker.read_text() == "precious"
    meta, runs = load_json(first.results_json)
    assert runs == [] and meta.run_id == first.path.name and meta.complete is False


def test_result_dir_random_ids_and_collision_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = ResultDir.create(tmp_path, now=NOW)
    b = ResultDir.create(tmp_path, now=NOW)
    assert a.path != b.path
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", a.path.name)
    ids = iter(["aaaaaa", "aaaaaa", "bbbbbb"])
    monkeypatch.setattr(fsutil.secrets, "token_hex", lambda n: next(ids))
    assert ResultDir.create(tmp_path, now=NOW).path.name.endswith("-aaaaaa")
    assert ResultDir.create(tmp_path, now=NOW).path.name.endswith("-bbbbbb")


def test_result_dir_incremental_updates(tmp_path: Path) -> None:
    rd = ResultDir.create(tmp_path, meta=RunMeta(kernel="k1"), run_id="r1", now=NOW)
    console = rd.console_path("x86_64")
    assert console == rd.path / "x86_64" / "console.log" and console.parent.is_dir()
    assert rd.relative(console) == "x86_64/console.log"

    rd.record(arm64_build_failure())
    assert [r.arch for r in load_json(rd.results_json)[1]] == ["arm64"]
    rd.record(x86_run())
    assert [r.arch for r in load_json(rd.results_json)[1]] == ["arm64", "x86_64"]
    retried = arm64_build_failure()
    retried.status = RunStatus.PASS
    rd.record(retried)  # same (arch, kernel): replaced, not duplicated
    meta, runs = load_json(rd.results_json)
    assert [(r.arch, r.status) for r in runs] == [
        ("x86_64", RunStatus.CRASH),
        ("arm64", RunStatus.PASS),
    ]
    assert meta.kernel == "k1" and meta.complete is False

    assert rd.finish() is RunStatus.CRASH
    meta, _ = load_json(rd.results_json)
    assert meta.complete is True and meta.finished is not None
    assert JUnitXml.fromfile(str(rd.junit_xml)).errors >= 1
    assert ResultDir.open(rd.path).runs == rd.runs
    assert temp_files(rd.path) == []


@pytest.mark.parametrize("arch", ["../etc", "a/b", "", ".", ".hidden"])
def test_result_dir_rejects_bad_path_components(tmp_path: Path, arch: str) -> None:
    rd = ResultDir.create(tmp_path, run_id="x", now=NOW)
    with pytest.raises(ValueError):
        rd.arch_dir(arch)
    with pytest.raises(ValueError):
        rd.arch_path("x86_64", arch)
