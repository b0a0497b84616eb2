"""Tests for harness.report.compare: statistics, significance, directions, statuses, refusals."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from runs import BASE, PATCHED, make_run, two_dirs, write_dir

from harness.analysis.ktap import Metric
from harness.record.run import ArchRun, CrashReport
from harness.record.status import RunStatus
from harness.report.compare import (
    Direction,
    Kind,
    MetricDelta,
    Refused,
    check_comparable,
    compare,
    compare_metrics,
    crash_key,
    derived,
    direction_of,
    load_runs,
    sides_from_dirs,
)
from harness.report.metrics import METRICS
from harness.report.stats import ALPHA, stats, t_two_sided_p, welch_p


def delta(a: list[float], b: list[float], key: str = "fill_rate") -> MetricDelta:
    """One metric through the real code path: compare_metrics on runs whose only
    metric line is ``key``, one run per sample (a change to the significance rule
    in compare_metrics or MetricDelta shows up here)."""

    def runs(values: list[float]) -> list[ArchRun]:
        return [
            ArchRun("x86_64", BASE, RunStatus.PASS, metrics=[Metric(["g", "c"], "c", {key: v})])
            for v in values
        ]

    (m,) = compare_metrics("x86_64", runs(a), runs(b))
    assert (m.group, m.case, m.key) == ("g", "c", key)
    return m


# ------------------------------------------------------------------------ stats


def test_stats_known_values():
    s = stats([2, 4, 4, 4, 5, 5, 7, 9])
    assert s.n == 8
    assert s.mean == 5.0
    assert s.stddev == pytest.approx(2.138089935)  # sample stddev, n - 1
    assert s.pct_stddev == pytest.approx(42.76179871)
    assert (s.lo, s.hi) == (2.0, 9.0)
    assert stats([3.0]).stddev == 0.0


def test_student_t_p_values_match_tables():
    # Two-sided p from standard t tables / scipy.stats.t.sf(t, df) * 2.
    assert t_two_sided_p(2.0, 10) == pytest.approx(0.0733880, abs=1e-6)
    assert t_two_sided_p(2.228138852, 10) == pytest.approx(0.05, abs=1e-6)
    assert t_two_sided_p(12.7062047, 1) == pytest.approx(0.05, abs=1e-6)
    assert t_two_sided_p(0.0, 5) == pytest.approx(1.0)
    assert t_two_sided_p(1.959963985, 1e7) == pytest.approx(0.05, abs=1e-5)  # -> normal
    assert t_two_sided_p(math.inf, 3) == 0.0


def test_welch_known_value():
    # scipy.stats.ttest_ind([1,2,3,4,5], [3,4,5,6,7], equal_var=False): t=-2.0, df=8
    p = welch_p(stats([1, 2, 3, 4, 5]), stats([3, 4, 5, 6, 7]))
    assert p == pytest.approx(0.0805162, abs=1e-6)
    assert welch_p(stats([1, 2]), stats([3, 4])) is None  # needs n >= 3 a side
    assert welch_p(stats([5, 5, 5]), stats([5, 5, 5])) == 1.0
    assert welch_p(stats([5, 5, 5]), stats([6, 6, 6])) == 0.0


# ----------------------------------------------------------------- significance


def test_non_overlapping_ranges_n2_are_significant():
    m = delta([0.90, 0.91], [0.99, 1.00])
    assert m.overlap is False and m.p_value is None
    assert m.significant and m.verdict == "better"
    assert m.pct_change == pytest.approx(100 * (0.995 - 0.905) / 0.905)


def test_overlapping_ranges_are_not_significant():
    m = delta([0.90, 0.99, 0.95], [0.93, 1.00, 0.97])
    assert m.overlap is True and not m.significant and m.verdict == "~"


def test_no_overlap_but_welch_disagrees_is_not_significant():
    # Ranges just miss each other, but with this spread Welch's p is > ALPHA.
    m = delta([1.0, 5.0, 9.0], [9.5, 13.0, 17.0], key="p50_ns")
    assert m.overlap is False
    assert m.p_value is not None and m.p_value > ALPHA
    assert not m.significant


def test_single_sample_is_never_significant():
    m = delta([0.5], [1.0])
    assert m.single and not m.significant and m.verdict == "n=1"


def test_worse_direction_for_lower_is_better():
    m = delta([1000, 1010, 990], [2000, 2010, 1990], key="p99_ns")
    assert m.direction is Direction.LOWER and m.kind is Kind.TIME
    assert m.verdict == "worse" and m.regression
    assert m.ratio == pytest.approx(2.0)


def test_direction_table():
    assert direction_of("fill_rate") == (Direction.HIGHER, Kind.COUNT)
    assert direction_of("partial_rate") == (Direction.LOWER, Kind.COUNT)
    assert direction_of("compact_stall_per_kreq") == (Direction.LOWER, Kind.COUNT)
    assert direction_of("ns_per_page") == (Direction.LOWER, Kind.TIME)
    assert direction_of("free_ns_per_folio_min") == (Direction.LOWER, Kind.TIME)
    assert direction_of("max_ns") == (Direction.LOWER, Kind.TIME)
    assert direction_of("speedup_vs_loop") == (Direction.HIGHER, Kind.TIME)
    assert direction_of("clock_res_ns") == (Direction.NEUTRAL, Kind.INFO)
    # raw counts scale with the requests a host manages: neutral, see the rates
    assert direction_of("partial") == (Direction.NEUTRAL, Kind.RAW)
    assert direction_of("short_alloc_ok") == (Direction.NEUTRAL, Kind.RAW)
    assert direction_of("short_alloc_ok_rate") == (Direction.LOWER, Kind.COUNT)
    assert direction_of("short") == (Direction.LOWER, Kind.COUNT)  # the bench's, unchanged
    assert direction_of("compact_stall") == (Direction.NEUTRAL, Kind.RAW)
    # like with like: a patched request may deliver many more pages; pages carry it
    assert direction_of("requests") == (Direction.NEUTRAL, Kind.THROUGHPUT)
    assert direction_of("pages") == (Direction.HIGHER, Kind.THROUGHPUT)
    assert direction_of("req_ns_per_page") == (Direction.LOWER, Kind.TIME)
    assert direction_of("pages_per_ms") == (Direction.HIGHER, Kind.TIME)
    assert direction_of("delta") == (Direction.LOWER, Kind.COUNT)
    assert direction_of("batch") == (Direction.NEUTRAL, Kind.INFO)
    assert direction_of("nr_cpus", "env") == (Direction.NEUTRAL, Kind.INFO)
    assert direction_of("requests", "setup") == (Direction.NEUTRAL, Kind.INFO)


def test_short_alloc_ok_becomes_a_rate_per_request():
    assert derived({"requests": 200, "partial": 30, "failed": 10, "short_alloc_ok": 8}) == {
        "partial_rate": 0.15,
        "failed_rate": 0.05,
        "short_alloc_ok_rate": 0.04,
    }
    # cases without the check (opportunistic gfp, folios) print no such key
    assert "short_alloc_ok_rate" not in derived({"requests": 200, "partial": 30})


def test_metrics_are_collected_and_derived_per_line():
    runs_a = [make_run(BASE, filled=f) for f in (900, 910, 905)]
    runs_b = [make_run(PATCHED, filled=f) for f in (1000, 1000, 998)]
    found = {(m.group, m.case, m.key): m for m in compare_metrics("x86_64", runs_a, runs_b)}
    fill = found[("kbulk_stress", "gfp_kernel_order0", "fill_rate")]
    assert fill.a is not None and fill.b is not None
    assert fill.a.values == [0.9, 0.91, 0.905]
    assert fill.b.mean == pytest.approx(0.99933333)
    assert fill.verdict == "better"
    partial = found[("kbulk_stress", "gfp_kernel_order0", "partial_rate")]
    assert partial.a.mean == pytest.approx(0.095) and partial.verdict == "better"
    # -1 means "counter unavailable": no sample at all
    assert ("kbulk_stress", "gfp_kernel_order0", "compact_stall") not in found
    assert found[("kbulk_stress", "gfp_kernel_order0", "allocstall_per_kreq")].a.mean == 10.0
    # same case name in two modules stays apart; strings (api=bulk) are not metrics
    assert found[("kbulk_bench", "order0_batch8", "ns_per_page")].a.mean == 60.0
    assert ("kbulk_stress", "gfp_kernel_order0", "api") not in found
    assert found[("kbulk_stress", "env", "nr_cpus")].kind is Kind.INFO


# ------------------------------------------------------- statuses and crashes


def test_status_changes_and_new_crashes(tmp_path: Path):
    oops = CrashReport(
        "oops", "BUG: unable to handle page fault for address: ffff888012345678",
        "kbulk_stress.gfp_nowait_order0", 812, [],
    )  # fmt: skip
    a = write_dir(tmp_path / "a", [make_run(BASE, filled=900, rep=i) for i in range(2)])
    b = write_dir(
        tmp_path / "b",
        [
            make_run(PATCHED, filled=1000, rep=0, nowait_ok=False),
            make_run(PATCHED, filled=1000, rep=1, crashes=[oops]),
        ],
    )
    cmp = compare(*sides_from_dirs([a], [b]))
    arch = cmp.arches[0]
    changes = {c.test: c for c in arch.tests}
    assert list(changes) == ["kbulk_stress.gfp_nowait_order0"]  # suite not repeated
    change = changes["kbulk_stress.gfp_nowait_order0"]
    assert (change.a, change.b) == (["pass", "pass"], ["fail", "pass"])
    assert change.regression
    assert [c.title for c in arch.new_crashes] == [oops.title]
    assert arch.status_b == ["fail", "crash"] and arch.run_regression
    regressions = cmp.regressions()
    assert "x86_64: run status pass -> crash 1/2, fail 1/2" in regressions
    assert "x86_64: kbulk_stress.gfp_nowait_order0: pass -> fail 1/2, pass 1/2" in regressions
    assert any(r.startswith("x86_64: new oops: BUG: unable") for r in regressions)
    assert cmp.exit_code == 1


def test_crash_identity_masks_addresses():
    one = CrashReport("oops", "BUG: at ffff888012345678 cpu 1", "t", 1, [])
    two = CrashReport("oops", "BUG: at ffff888087654321 cpu 0", "t", 99, [])
    assert crash_key(one) == crash_key(two)


def test_improvement_only_exits_zero(tmp_path: Path):
    cmp = compare(*sides_from_dirs(*map(lambda d: [d], two_dirs(tmp_path))))
    assert cmp.regressions() == []
    assert cmp.exit_code == 0


# ---------------------------------------------------------------- comparability


def test_refuses_accelerator_mismatch(tmp_path: Path):
    a, b = two_dirs(tmp_path, accel="kvm")
    with pytest.raises(Refused) as info:
        compare(*sides_from_dirs([a], [b]))
    (m,) = info.value.mismatches
    assert (m.field, m.a, m.b, m.severity) == ("accelerator", ["tcg"], ["kvm"], "refuse")
    assert "x86_64: accelerator differs: baseline tcg vs patched kvm" in str(info.value)


def test_force_keeps_the_mismatch(tmp_path: Path):
    a, b = two_dirs(tmp_path, accel="kvm")
    cmp = compare(*sides_from_dirs([a], [b]), force=True)
    assert cmp.forced and [m.field for m in cmp.refused] == ["accelerator"]


def test_config_mismatch_refused_between_same_kernels(tmp_path: Path):
    a = write_dir(tmp_path / "a", [make_run(BASE, filled=900)])
    b = write_dir(tmp_path / "b", [make_run(BASE, filled=900, config="deadbeef0000")])
    with pytest.raises(Refused, match="config differs: baseline 151d77eb2003 vs patched dead"):
        compare(*sides_from_dirs([a], [b]))


def test_config_digest_detail_wins_and_series_fragment_difference_is_a_note(tmp_path: Path):
    # Same run definition, baseline vs patched: series_fragments make configs differ.
    a, b = two_dirs(tmp_path, config="deadbeef0000")
    cmp = compare(*sides_from_dirs([a], [b]))
    (m,) = cmp.mismatches
    assert (m.field, m.severity) == ("config", "note")
    assert "series_fragments" in m.why
    # ...but not when the run definitions differ too
    runs = [make_run(PATCHED, filled=1000, config="deadbeef0000")]
    write_dir(tmp_path / "b", runs, spec_name="other")
    with pytest.raises(Refused) as info:
        compare(*sides_from_dirs([a], [b]))
    assert {m.field for m in info.value.mismatches} == {"config", "spec"}
    # the recorded config digest is what counts, not the build directory name
    run = make_run(BASE, filled=900)
    assert run.build is not None
    run.build.config_digest = "f" * 64
    la = load_runs(write_dir(tmp_path / "c", [run]))
    lb = load_runs(a)
    assert [m.a for m in check_comparable("x86_64", la, lb)] == [["f" * 64]]


def test_mixed_repetitions_are_refused(tmp_path: Path):
    a = write_dir(
        tmp_path / "a", [make_run(BASE, filled=900), make_run(BASE, filled=900, accel="kvm")]
    )
    b = write_dir(tmp_path / "b", [make_run(PATCHED, filled=1000)])
    with pytest.raises(Refused, match="the repetitions of one side differ"):
        compare(*sides_from_dirs([a], [b]))


# ------------------------------------------------------------------ A/B split


def test_single_ab_directory_is_split_by_series_label(tmp_path: Path):
    runs = []
    for i in range(3):  # interleaved, as the A/B mode writes them
        runs += [make_run(BASE, filled=900 + i, rep=i), make_run(PATCHED, filled=1000, rep=i)]
    d = write_dir(tmp_path / "ab", runs)
    a, b = sides_from_dirs([d], [])
    assert [r.run.kernel for r in a.runs] == [BASE] * 3
    assert [r.run.kernel for r in b.runs] == [PATCHED] * 3
    assert [r.run.repetition for r in b.runs] == [0, 1, 2]
    a2, b2 = sides_from_dirs([d], [], baseline_label=PATCHED, patched_label=BASE)
    assert {r.run.kernel for r in a2.runs} == {PATCHED}
    assert {r.run.kernel for r in b2.runs} == {BASE}
    with pytest.raises(ValueError, match="no patched runs found"):
        sides_from_dirs([d], [], patched_label="v9")


def test_arch_only_on_one_side_is_listed(tmp_path: Path):
    a = write_dir(
        tmp_path / "a", [make_run(BASE, filled=900), make_run(BASE, filled=9, arch="arm64")]
    )
    b = write_dir(tmp_path / "b", [make_run(PATCHED, filled=1000)])
    cmp = compare(*sides_from_dirs([a], [b]))
    assert [x.arch for x in cmp.arches] == ["x86_64"]
    assert cmp.only_baseline == ["arm64"] and cmp.only_patched == []


def test_vocabulary_rows_carry_unit_and_practical_threshold() -> None:
    for key in ("ns_per_page", "p99_ns", "speedup_vs_loop"):  # times / instruction counts
        assert 0.01 <= METRICS.lookup(key).threshold <= 0.02, key
    for key in ("compact_stall_per_kreq", "req_compact_fail_max", "partial"):  # pressure
        assert METRICS.lookup(key).threshold >= 0.05, key
    assert METRICS.lookup("fill_rate").unit == "fraction"
    assert METRICS.lookup("fill_rate", case="env").kind is Kind.INFO  # env lines: info only
    m = delta([0.90, 0.91], [0.99, 1.00])
    assert m.spec is METRICS.lookup("fill_rate")
