"""kbulk bisect: the search over prefixes (skips, refusals, build counts), what each
condition calls bad, the work tree moving back and forth, the report and the CLI's
usage errors. The end-to-end bisect of a deliberately broken patch is in
tests/test_bisect_e2e.py."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_seriescheck import mini_series, mini_source, needs_patch

from harness.analysis.analyze import analyze
from harness.bisect import (
    EXIT_AMBIGUOUS,
    EXIT_FOUND,
    EXIT_REFUSED,
    BisectReport,
    BootsCondition,
    ConditionError,
    MetricCondition,
    ModuleCondition,
    Outcome,
    PrefixRecord,
    TestCondition,
    Untestable,
    Verdict,
    bisect,
    patch_subject,
)
from harness.boot.guest.markers import INIT_DONE, INIT_START
from harness.cli import main
from harness.kernel.patches import load_series
from harness.paths import REPO_ROOT
from harness.record.run import ArchRun
from harness.record.status import ExitReason, RunStatus
from harness.seriescheck.prefix import touches_kconfig
from harness.seriescheck.worktree import WorkTree

G, B, S = Verdict.GOOD, Verdict.BAD, Verdict.SKIP


def probe_of(verdicts: dict[int, Verdict], seen: list[int]) -> Callable[[int], Verdict]:
    def probe(k: int) -> Verdict:
        assert k not in seen, f"prefix {k} probed twice"
        seen.append(k)
        return verdicts[k]

    return probe


def first_bad_at(total: int, bad: int) -> dict[int, Verdict]:
    return {k: (B if k >= bad else G) for k in range(total + 1)}


# ----------------------------------------------------------------------- search


@pytest.mark.parametrize("total", range(1, 18))
def test_search_finds_every_position_in_log_builds(total: int) -> None:
    for bad in range(1, total + 1):
        seen: list[int] = []
        result = bisect(total, probe_of(first_bad_at(total, bad), seen))
        assert result.outcome is Outcome.FOUND
        assert (result.first_bad, result.last_good, result.candidates) == (bad, bad - 1, [bad])
        assert seen[:2] == [0, total]  # both ends verified first
        assert result.builds == len(seen) <= 2 + math.ceil(math.log2(total)) if total > 1 else 2
        assert result.linear_builds == bad + 1


def test_search_beats_a_linear_walk_in_the_e2e_shape() -> None:
    # 6 patches, the broken one 5th: 0 and 6, then 3, 4 (middle of 3..6, lower on a
    # tie), 5. A linear walk builds 0..5.
    seen: list[int] = []
    result = bisect(6, probe_of(first_bad_at(6, 5), seen))
    assert seen == [0, 6, 3, 4, 5]
    assert result.builds == 5 < result.linear_builds == 6


@pytest.mark.parametrize(
    ("end0", "end_n", "probed", "words"),
    [
        (B, B, [0], "prefix 0 (no patches) is bad: the problem is older than the series"),
        (S, B, [0], "prefix 0 (no patches) could not be tested"),
        (G, G, [0, 8], "prefix 8 (the whole series) is good: the problem does not show"),
        (G, S, [0, 8], "prefix 8 (the whole series) could not be tested"),
    ],
)
def test_search_refuses_unless_prefix_0_good_and_prefix_n_bad(
    end0: Verdict, end_n: Verdict, probed: list[int], words: str
) -> None:
    verdicts = {k: G for k in range(9)} | {0: end0, 8: end_n}
    seen: list[int] = []
    result = bisect(8, probe_of(verdicts, seen))
    assert result.outcome is Outcome.REFUSED and words in result.refusal
    assert seen == probed  # refused before any other build
    assert result.first_bad is None and result.linear_builds is None


def test_search_goes_around_skipped_prefixes() -> None:
    # first bad is 7 of 10; 5 (the first midpoint) does not build: its neighbour 4 is
    # tried instead, and 5 is never in the way again
    verdicts = first_bad_at(10, 7) | {5: S}
    seen: list[int] = []
    result = bisect(10, probe_of(verdicts, seen))
    assert result.outcome is Outcome.FOUND and result.first_bad == 7
    assert seen == [0, 10, 5, 4, 7, 6]
    assert result.verdict_of(5) is S and result.last_good == 6


def test_search_with_only_skipped_prefixes_between_is_ambiguous() -> None:
    # 3 and 4 do not build; 2 is good and 5 bad: the first bad is 3, 4 or 5
    verdicts = first_bad_at(8, 4) | {3: S, 4: S}
    seen: list[int] = []
    result = bisect(8, probe_of(verdicts, seen))
    assert result.outcome is Outcome.AMBIGUOUS
    assert result.candidates == [3, 4, 5] and result.last_good == 2
    assert result.linear_builds is None


def test_search_needs_a_patch() -> None:
    with pytest.raises(ValueError, match="at least one patch"):
        bisect(0, lambda k: G)


# ------------------------------------------------------------------- conditions

SUITE = "page_alloc_bulk_semantics"


def ktap(case_ok: bool, with_case: bool = True) -> list[str]:
    if not with_case:
        return ["KTAP version 1", "1..1", "    KTAP version 1", f"    # Subtest: {SUITE}",
                "    1..1", "    ok 1 other", f"ok 1 {SUITE}"]  # fmt: skip
    result = "ok" if case_ok else "not ok"
    return ["KTAP version 1", "1..1", "    KTAP version 1", f"    # Subtest: {SUITE}", "    1..2",
            "    ok 1 other",
            "    # bulk_one: EXPECTATION FAILED at mm/tests/x.c:450" if not case_ok else "    # -",
            f"    {result} 2 bulk_one", f"{result} 1 {SUITE}"]  # fmt: skip


def run_of(lines: list[str], reason: ExitReason = ExitReason.COMPLETED,
           modules: list[str] | None = None) -> ArchRun:  # fmt: skip
    found = analyze([INIT_START, *lines, *([INIT_DONE] if reason is ExitReason.COMPLETED else [])],
                    reason, modules or [])  # fmt: skip
    return ArchRun(
        "x86_64", "k", found.status, ktap=found.ktap, crashes=found.crashes,
        metrics=found.metrics, module_steps=found.module_steps, message=found.message,
    )  # fmt: skip


OOPS = ["BUG: kernel NULL pointer dereference, address: 0", "Oops: 0002 [#1] SMP"]


def test_test_condition_verdicts() -> None:
    cond = TestCondition(f"{SUITE}.bulk_one")
    bad = cond.judge(run_of(ktap(False)), None)
    assert bad.verdict is B and bad.evidence["status"] == "fail"
    assert any("EXPECTATION FAILED" in d for d in bad.evidence["diagnostics"])
    assert cond.judge(run_of(ktap(True)), None).verdict is G
    # not in this kernel yet (the series adds it later): it does not fail here
    absent = cond.judge(run_of(ktap(True, with_case=False)), None)
    assert absent.verdict is G and absent.evidence["status"] == "absent"
    # the kernel died before the suite: cannot tell
    died = run_of(["KTAP version 1", "1..1", *OOPS], ExitReason.GUEST_EXIT)
    assert died.status is RunStatus.CRASH
    assert cond.judge(died, None).verdict is S
    # a name prefix is not the test
    assert (
        TestCondition(f"{SUITE}.bulk_on")
        .judge(run_of(ktap(False)), None)
        .text.endswith("absent (not in this kernel)")
    )


@pytest.mark.parametrize("status", [RunStatus.BUILD_FAILURE, RunStatus.CONFIG_ERROR])
def test_not_built_is_a_skip_for_every_condition(status: RunStatus) -> None:
    run = ArchRun("x86_64", "k", status, message="mm/page_alloc.c:1:1: error: x")
    conditions = [TestCondition("a.b"), ModuleCondition("kbulk_stress"), BootsCondition(),
                  MetricCondition("kbulk_bench.order0_batch64.ns_per_page", limit=1.0)]  # fmt: skip
    for cond in conditions:
        judged = cond.judge(run, None)
        assert judged.verdict is S and "does not build" in judged.text


def test_infra_error_stops_instead_of_guessing() -> None:
    run = ArchRun("x86_64", "k", RunStatus.INFRA_ERROR, message="QEMU failed")
    with pytest.raises(Untestable, match="QEMU failed"):
        BootsCondition().judge(run, None)


def test_boots_condition() -> None:
    assert BootsCondition().judge(run_of(ktap(False)), None).verdict is G  # finished
    crashed = BootsCondition().judge(run_of([*ktap(True), *OOPS], ExitReason.GUEST_EXIT), None)
    assert crashed.verdict is B and crashed.evidence["crashes"]
    hung = BootsCondition().judge(run_of(ktap(True)[:5], ExitReason.INACTIVITY), None)
    assert hung.verdict is B and hung.evidence["run_status"] == "timeout"


def test_module_condition() -> None:
    step = ["kbulk-init: step begin insmod kbulk_stress"]
    ok = run_of([*step, "kbulk-init: step end insmod kbulk_stress rc=0"], modules=["kbulk_stress"])
    bad = run_of([*step, "kbulk-init: step end insmod kbulk_stress rc=-12"],
                 modules=["kbulk_stress"])  # fmt: skip
    cond = ModuleCondition("kbulk_stress")
    assert cond.judge(ok, None).verdict is G
    judged = cond.judge(bad, None)
    assert judged.verdict is B and judged.evidence["exit_status"] == -12
    with pytest.raises(ConditionError, match="no such step"):
        ModuleCondition("kbulk_bench").judge(ok, None)


def bench(ns: float) -> ArchRun:
    return run_of([
        "KTAP version 1", "1..1", "    KTAP version 1", "    # Subtest: kbulk_bench", "    1..1",
        f"    # kbulk-metric: test=order0_batch64 api=bulk ns_per_page={ns} pages_per_sec=9",
        "    ok 1 order0_batch64", "ok 1 kbulk_bench"])  # fmt: skip


def test_metric_condition_limit_and_change_in_the_vocabulary_direction() -> None:
    path = "kbulk_bench.order0_batch64.ns_per_page"  # lower is better
    limit = MetricCondition(path, limit=150.0)
    assert limit.judge(bench(149), None).verdict is G
    judged = limit.judge(bench(151), None)
    assert judged.verdict is B and judged.evidence["value"] == 151
    base = bench(100)
    change = MetricCondition(path, change=0.20)
    assert change.judge(base, base).verdict is G
    assert change.judge(bench(119), base).verdict is G
    worse = change.judge(bench(121), base)
    assert worse.verdict is B and worse.evidence["change"] == "+21.0%"
    assert change.judge(bench(50), base).verdict is G  # better is never bad
    # default: the vocabulary's threshold for ns_per_page (1 %)
    assert MetricCondition(path).judge(bench(101.5), base).verdict is B
    assert MetricCondition(path).judge(bench(100.5), base).verdict is G
    # not reported by this kernel: cannot tell
    assert change.judge(run_of(ktap(True)), base).verdict is S


def test_metric_condition_refuses_what_it_cannot_judge() -> None:
    with pytest.raises(ConditionError, match="neutral"):
        MetricCondition("kbulk_stress.gfp_kernel_order0.requests")
    with pytest.raises(ConditionError, match=r"<module>\.<case>\.<key>"):
        MetricCondition("ns_per_page")
    with pytest.raises(ConditionError, match="did not report it"):
        MetricCondition("kbulk_bench.order0_batch64.ns_per_page").judge(bench(1), None)


# -------------------------------------------------------------------- work tree


@needs_patch
def test_work_tree_goes_back_and_forth(tmp_path: Path) -> None:
    source = mini_source(tmp_path)
    series = load_series(mini_series(tmp_path))
    work = WorkTree(tmp_path / "work" / "seriescheck-x", source, series)
    work.reset(lambda _: None)
    a, b = work.path / "mm" / "a.c", work.path / "mm" / "b.h"
    work.goto(2)
    assert (a.read_text(), b.read_text(), work.applied) == ("one\nTWO\n", "new\n", 2)
    before = b.stat().st_mtime
    time.sleep(0.01)
    work.goto(1)  # reverse-applies patch 2 only
    assert (a.read_text(), b.read_text(), work.applied) == ("one\nTWO\n", "old\n", 1)
    assert b.stat().st_mtime > before  # make sees it changed
    work.goto(0)
    assert a.read_text() == "one\ntwo\n" and work.applied == 0
    assert (source.path / "mm" / "b.h").read_text() == "old\n"  # pristine tree untouched


def test_touches_kconfig_between_prefixes_either_way() -> None:
    series = load_series(REPO_ROOT / "patches" / "v7.2")  # patch 6 adds the KUnit symbol
    assert touches_kconfig(series, 5, 6) and touches_kconfig(series, 7, 0)
    assert not touches_kconfig(series, 6, 9) and not touches_kconfig(series, 8, 7)
    assert not touches_kconfig(series, 0, 4)  # the callers' opt-outs


# ------------------------------------------------------------------------ report


def test_patch_subject_joins_folded_lines_and_drops_the_tag() -> None:
    patch = next((REPO_ROOT / "patches" / "v7.2").glob("0006-*.patch"))
    assert patch_subject(patch) == "mm/tests: add KUnit tests for the bulk page allocator"
    broken = REPO_ROOT / "tests" / "data" / "bisect"
    assert patch_subject(next(broken.glob("0099-*.patch"))) == (
        "mm/page_alloc: try the batch first for a single empty slot too"
    )


def report_of(verdicts: dict[int, Verdict], total: int, tmp_path: Path) -> BisectReport:
    numbers = range(1, total + 1)
    report = BisectReport(
        str(tmp_path), "0" * 64, [f"{i:04d}-p.patch" for i in numbers],
        [f"subject {i}" for i in numbers], "x86_64", "KTAP test a.b fails", "configs/default.yaml",
    )  # fmt: skip

    def probe(k: int) -> Verdict:
        evidence = {"status": "fail" if verdicts[k] is B else "pass"}
        report.prefixes.append(
            PrefixRecord(k, None, verdicts[k], f"a.b: {verdicts[k]}", evidence, "pass", "k",
                         f"prefix-{k:02d}", "ok", 1.0, 2.0)
        )  # fmt: skip
        return verdicts[k]

    report.search = bisect(total, probe)
    return report


def test_report_found_names_the_patch_and_both_sides(tmp_path: Path) -> None:
    report = report_of(first_bad_at(6, 5), 6, tmp_path)
    report.write(tmp_path)
    data = json.loads((tmp_path / "bisect.json").read_text())
    assert data["outcome"] == "found" and data["exit_code"] == report.exit_code == EXIT_FOUND
    assert data["first_bad"] == {"prefix": 5, "patch": "0005-p.patch", "subject": "subject 5"}
    assert data["evidence"]["bad"]["evidence"] == {"status": "fail"}
    assert data["evidence"]["before"]["prefix"] == 4
    assert (data["builds"], data["linear_builds"], data["series_check_builds"]) == (5, 6, 7)
    assert data["search_order"] == [0, 6, 3, 4, 5]
    md = (tmp_path / "bisect.md").read_text()
    assert "# Bisect: first bad patch: 5/6 0005-p.patch" in md
    assert "### At prefix 5 (bad)" in md and "### At prefix 4 (good)" in md


def test_report_exit_codes_for_refused_ambiguous_and_aborted(tmp_path: Path) -> None:
    refused = report_of({k: B for k in range(5)}, 4, tmp_path)
    assert refused.exit_code == EXIT_REFUSED
    assert refused.headline() == (
        "refused: prefix 0 (no patches) is bad: the problem is older than the series (a.b: bad)"
    )
    ambiguous = report_of(first_bad_at(8, 4) | {3: S, 4: S}, 8, tmp_path)
    assert ambiguous.exit_code == EXIT_AMBIGUOUS
    assert "one of 3" in ambiguous.headline()
    ambiguous.abort(RunStatus.PATCH_FAILURE, "patch 0003-p.patch does not apply")
    assert ambiguous.exit_code == 7 and ambiguous.to_json()["outcome"] == "aborted"


# --------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--test", "a b"], "--test 'a b': a KTAP test path"),
        (["--metric", "kbulk_stress.x.requests"], "calls 'requests' neutral"),
        (["--boots", "--limit", "3"], "--limit and --change go with --metric"),
        (["--metric", "kbulk_bench.c.ns_per_page", "--change", "-3"], "a positive percentage"),
        (["--boots", "--spec", "configs/missing.yaml"], "missing.yaml"),
        (["--module", "kbulk_nope"], "module kbulk_nope is not loaded by"),
        (
            ["--metric", "kbulk_bench.order0_batch64.ns_per_page", "--no-modules"],
            "default.yaml (--no-modules)",
        ),
    ],
)
def test_cli_usage_errors_exit_2_naming_the_option(
    args: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) if "-3" in args else _nothing() as raised:
        code = main(["bisect", "--results", str(tmp_path), *args])
    if raised is not None and isinstance(raised, pytest.ExceptionInfo):
        code = raised.value.code  # argparse's own usage error
    assert code == 2
    assert words in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing built, no result directory


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_cli_series_that_does_not_load_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "series-dir"
    empty.mkdir()
    code = main(["bisect", "--boots", "--series", str(empty), "--results", str(tmp_path / "r")])
    assert code == 2 and "no series file" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before a result directory was made


def test_e2e_data_patches_apply_in_the_middle_of_the_series(tmp_path: Path) -> None:
    """The deliberately broken patches apply after patch 4 and patch 5 still applies
    after them (what the e2e test and the recorded metric bisect rely on)."""
    if shutil.which("patch") is None:
        pytest.skip("patch(1) not installed")
    src = os.environ.get("KBULK_LINUX_SRC")
    if not src:
        pytest.skip("KBULK_LINUX_SRC not set (the pinned source tree)")
    import subprocess

    series = REPO_ROOT / "patches" / "v7.2"
    for broken in sorted((REPO_ROOT / "tests" / "data" / "bisect").glob("*.patch")):
        tree = tmp_path / broken.name / "linux"
        (tree / "mm" / "tests").mkdir(parents=True)
        for name in ("mm/page_alloc.c", "mm/internal.h", "mm/Kconfig", "mm/Makefile",
                     "MAINTAINERS"):  # fmt: skip
            shutil.copy2(Path(src) / name, tree / name)
        order = [*sorted(series.glob("000[5-8]-*.patch")), broken,
                 *sorted(series.glob("0009-*.patch"))]  # fmt: skip
        for patch in order:
            proc = subprocess.run(["patch", "-p1", "-N", "-f", "-i", str(patch)], cwd=tree,
                                  capture_output=True, text=True, check=False)  # fmt: skip
            assert proc.returncode == 0, (patch.name, proc.stdout)
