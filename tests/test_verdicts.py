"""Verdicts that mean something (issue 12, section 1): practical-significance
thresholds, declared trade-offs, per-page forms, bimodal fractions, the verdict
line and the stopping rule of `kbulk ab --reps auto`.

Expectations come from the rules (thresholds of the vocabulary, hand-computed
rank statistics), not from running the code."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.analysis.ktap import Metric
from harness.record.meta import RunMeta
from harness.record.run import ArchRun
from harness.record.status import RunStatus
from harness.report.compare import LoadedRun, Side, compare, compare_metrics
from harness.report.document import build_document
from harness.report.headlines import HEADLINES, widths
from harness.report.markdown import render_markdown
from harness.report.metrics import METRICS, beyond_threshold, derived
from harness.report.stats import (
    bimodal,
    bootstrap_diff,
    bootstrap_mean,
    distribution,
    mann_whitney_p,
    stats,
)
from harness.report.stopping import FigureWidth, Stop, decide
from harness.spec import SpecError, Tradeoff, load_spec, load_tradeoffs, series_tradeoffs

STRESS, BENCH = "kbulk_stress", "kbulk_bench"


def boots(kernel: str, lines: list[tuple[str, str, dict[str, float]]]) -> ArchRun:
    """One boot; lines are (module, case, values)."""
    metrics = [Metric([module, case], case, dict(values)) for module, case, values in lines]
    return ArchRun("x86_64", kernel, RunStatus.PASS, metrics=metrics)


def side(name: str, runs: list[ArchRun], meta: dict[str, object] | None = None) -> Side:
    return Side(
        name, [LoadedRun(r, RunMeta.from_json(meta or {}), Path("/nowhere")) for r in runs], []
    )


def per_boot(module: str, case: str, key: str, values: list[float]) -> list[ArchRun]:
    return [boots("k", [(module, case, {key: v})]) for v in values]


def merge(*columns: list[ArchRun]) -> list[ArchRun]:
    """Boot i of every column as one boot (several metric lines per boot)."""
    out = []
    for parts in zip(*columns, strict=True):
        out.append(ArchRun("x86_64", "k", RunStatus.PASS,
                           metrics=[m for p in parts for m in p.metrics]))  # fmt: skip
    return out


# ------------------------------------------------------------------ thresholds


def test_deterministic_point_three_percent_is_within_threshold_not_a_regression() -> None:
    # -icount: identical instruction counts every boot, +0.3 % on the patched side.
    # Statistically certain (no overlap, Welch p = 0), but inside the 1 % threshold
    # of *ns_per_* times: never a regression.
    a = per_boot(BENCH, "order0_batch8", "free_ns_per_page", [1000.0] * 3)
    b = per_boot(BENCH, "order0_batch8", "free_ns_per_page", [1003.0] * 3)
    cmp = compare(side("baseline", a), side("patched", b))
    (m,) = cmp.arches[0].metrics
    assert m.significant and not m.beyond_threshold
    assert m.verdict == "within threshold" and not m.regression
    assert cmp.regressions() == [] and cmp.exit_code == 0
    assert cmp.verdict().startswith("no regression beyond threshold;")
    assert "1 significant change(s) within threshold" in cmp.verdict()


def test_beyond_threshold_is_a_regression_listed_first() -> None:
    # +5 % (threshold 1 %) is a regression; an improvement and a within-threshold
    # change in the same report come after it.
    a = merge(
        per_boot(BENCH, "order0_batch1", "ns_per_page", [100.0] * 3),
        per_boot(BENCH, "order0_batch64", "ns_per_page", [100.0] * 3),
        per_boot(BENCH, "order0_batch8", "free_ns_per_page", [1000.0] * 3),
    )
    b = merge(
        per_boot(BENCH, "order0_batch1", "ns_per_page", [105.0] * 3),
        per_boot(BENCH, "order0_batch64", "ns_per_page", [50.0] * 3),
        per_boot(BENCH, "order0_batch8", "free_ns_per_page", [1003.0] * 3),
    )
    cmp = compare(side("baseline", a), side("patched", b))
    assert cmp.regressions() == [
        "x86_64: kbulk_bench.order0_batch1 ns_per_page worse (+5.0%, threshold 1%)"
    ]
    assert cmp.verdict() == (
        "REGRESSION: 1 regression(s) beyond threshold; 0 intended change(s), as declared; "
        "1 improvement(s); 1 significant change(s) within threshold"
    )
    doc = build_document(cmp)
    assert doc.sections[0].title == "Regressions beyond threshold"
    text = render_markdown(cmp)
    assert text.index("## Regressions beyond threshold") < text.index("## Improvements")
    assert text.index("## Improvements") < text.index("## Significant but within threshold")
    assert "## Practical-significance thresholds" in text


def test_fraction_thresholds_are_percentage_points() -> None:
    fill = METRICS.lookup("fill_rate")  # 0.01: one point
    partial = METRICS.lookup("partial_rate")  # 0.05: five points
    assert not beyond_threshold(fill, 0.500, 0.504)
    assert beyond_threshold(fill, 0.50, 0.52)
    assert not beyond_threshold(partial, 0.001, 0.002)  # +100 %, 0.1 points
    assert beyond_threshold(METRICS.lookup("ns_per_page"), 100.0, 101.5)  # 1 % relative
    assert not beyond_threshold(METRICS.lookup("ns_per_page"), 100.0, 100.9)


def test_a_fraction_regression_line_gives_its_change_in_points() -> None:
    # The threshold of a rate is in percentage points, so the regression line must
    # give the change in points too: 0.50 -> 0.02 is -48.0 points, not -96 %.
    a = per_boot(STRESS, "gfp_nowait_folio_mixed", "fill_rate", [0.50] * 3)
    b = per_boot(STRESS, "gfp_nowait_folio_mixed", "fill_rate", [0.02] * 3)
    cmp = compare(side("baseline", a), side("patched", b))
    assert cmp.regressions() == [
        "x86_64: kbulk_stress.gfp_nowait_folio_mixed fill_rate worse (-48.0 pts, threshold 1 pts)"
    ]


def test_every_row_is_kept() -> None:
    a = merge(*(per_boot(BENCH, f"c{i}", "ns_per_page", [100.0] * 3) for i in range(4)))
    b = merge(*(per_boot(BENCH, f"c{i}", "ns_per_page", [100.0 + i] * 3) for i in range(4)))
    cmp = compare(side("baseline", a), side("patched", b))
    assert len(cmp.arches[0].metrics) == 4
    html_rows = [
        block
        for s in build_document(cmp).sections
        if s.title.startswith("All metrics")
        for block in s.blocks
    ]
    assert sum(len(t.rows) for t in html_rows if hasattr(t, "rows")) == 4


# ------------------------------------------------------------------- trade-offs


def _latency(p50_a: float, p50_b: float) -> tuple[list[ArchRun], list[ArchRun]]:
    case = "gfp_kernel_order0"
    return (
        per_boot(STRESS, case, "p50_ns", [p50_a, p50_a + 10, p50_a + 20]),
        per_boot(STRESS, case, "p50_ns", [p50_b, p50_b + 10, p50_b + 20]),
    )


def test_declared_tradeoff_is_intended_with_its_figure() -> None:
    a, b = _latency(1000.0, 4000.0)
    declared = Tradeoff(
        "kbulk_stress.gfp_kernel_order0.p50_ns", "higher",
        "GFP_KERNEL requests wait for reclaim and fill all pages", source="ab.yaml:40",
    )  # fmt: skip
    cmp = compare(side("baseline", a), side("patched", b), tradeoffs=[declared])
    (m,) = cmp.arches[0].metrics
    assert m.verdict == "intended" and m.intended is declared and not m.regression
    assert cmp.regressions() == [] and cmp.intended() == [m]
    assert "1 intended change(s), as declared" in cmp.verdict()
    text = render_markdown(cmp)
    section = text.split("## Intended, as declared")[1].split("\n## ")[0]
    assert "GFP_KERNEL requests wait for reclaim and fill all pages" in section
    assert "[declared at ab.yaml:40]" in section
    # the figure: means 1010 -> 4010, a time, so as a ratio
    assert "kbulk_stress.gfp_kernel_order0 p50_ns 1010 -> 4010 (3.97x" in section


def test_tradeoff_in_the_other_direction_does_not_excuse() -> None:
    a, b = _latency(1000.0, 4000.0)
    lower = Tradeoff("kbulk_stress.*.p50_ns", "lower", "faster")
    cmp = compare(side("baseline", a), side("patched", b), tradeoffs=[lower])
    assert cmp.arches[0].metrics[0].verdict == "worse" and len(cmp.regressions()) == 1
    text = render_markdown(cmp)
    assert "kbulk_stress.*.p50_ns lower: faster [declared at ?] - no row moved that way" in text


def test_tradeoff_for_another_arch_does_not_excuse() -> None:
    a, b = _latency(1000.0, 4000.0)
    arm = Tradeoff("kbulk_stress.*.p50_ns", "higher", "r", arch="arm64")
    cmp = compare(side("baseline", a), side("patched", b), tradeoffs=[arm])
    assert len(cmp.regressions()) == 1


def test_tradeoffs_recorded_in_the_runs_meta_are_used() -> None:
    a, b = _latency(1000.0, 4000.0)
    meta = {"tradeoffs": [{"metric": "kbulk_stress.*.p50_ns", "direction": "higher",
                           "reason": "r", "arch": None, "source": "f:1"}]}  # fmt: skip
    cmp = compare(side("baseline", a, meta), side("patched", b, meta))
    assert [t.metric for t in cmp.tradeoffs] == ["kbulk_stress.*.p50_ns"]
    assert cmp.regressions() == [] and len(cmp.intended()) == 1


# ------------------------------------------------------------- like with like


def test_per_page_forms_of_a_stress_line() -> None:
    out = derived({"requests": 100, "pages": 6400, "mean_ns": 2000})
    assert out["pages_per_req"] == 64
    assert out["req_ns_per_page"] == pytest.approx(2000 * 100 / 6400)  # 31.25 ns per page
    assert out["pages_per_ms"] == pytest.approx(6400 / (2000 * 100 / 1e6))  # 32000 per ms


def test_fewer_requests_delivering_more_pages_is_not_a_regression() -> None:
    # baseline: 1000 requests of ~6.4 pages; patched: 150 requests of 64 pages.
    line_a = {"requests": 1000.0, "pages": 6400.0, "mean_ns": 200.0}
    line_b = {"requests": 150.0, "pages": 9600.0, "mean_ns": 1000.0}
    a = [boots("k", [(STRESS, "gfp_kernel_order0", {**line_a, "pages": 6400.0 + i})])
         for i in range(3)]  # fmt: skip
    b = [boots("k", [(STRESS, "gfp_kernel_order0", {**line_b, "pages": 9600.0 + i})])
         for i in range(3)]  # fmt: skip
    cmp = compare(side("baseline", a), side("patched", b))
    found = {m.key: m for m in cmp.arches[0].metrics}
    assert found["requests"].verdict == "changed"  # neutral: not a regression
    assert found["pages"].verdict == "better"
    assert found["req_ns_per_page"].verdict == "better"  # 31.25 -> 15.6 ns per page
    # the latency of one request (5x the pages) is still longer: a regression
    # unless the series declares it
    assert cmp.regressions() == [
        "x86_64: kbulk_stress.gfp_kernel_order0 mean_ns worse (+400.0%, threshold 2%)"
    ]
    declared = Tradeoff("kbulk_stress.*.mean_ns", "higher", "a request delivers 10x the pages")
    assert (
        compare(side("baseline", a), side("patched", b), tradeoffs=[declared]).regressions() == []
    )


# ------------------------------------------------------------------- bimodal


BASE_BOOTS = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.02, 0.97]
PATCHED_BOOTS = [1.0, 1.0, 1.0, 1.0, 0.98, 1.0, 0.0, 1.0]


def test_distribution_counts_boots_near_0_and_near_1() -> None:
    d = distribution(BASE_BOOTS)
    assert (d.low, d.middle, d.high) == (4, 0, 4)
    assert d.text() == "4 < 10%, 0 between, 4 > 90% (of 8)"
    assert bimodal(BASE_BOOTS) and not bimodal([0.5, 0.6, 0.95])


def test_mann_whitney_by_hand() -> None:
    # a: five 0s and one 1; b: one 0 and five 1s. Ranks: 0s 3.5, 1s 9.5; R1 = 27,
    # U1 = 6, mu = 18, tie term 2 * (6^3 - 6) = 420,
    # var = 36 / 12 * (13 - 420 / 132) = 29.4545, z = (12 - 0.5) / 5.4272 = 2.119
    p = mann_whitney_p(stats([0, 0, 0, 0, 0, 1]), stats([1, 1, 1, 1, 1, 0]))
    expected = math.erfc((11.5 / math.sqrt(3 * (13 - 420 / 132))) / math.sqrt(2))
    assert p == pytest.approx(expected) and p == pytest.approx(0.0341, abs=1e-3)
    # 1..5 against 6..10: U = 0, var = 25 * 11 / 12, z = (12.5 - 0.5) / 4.787
    p2 = mann_whitney_p(stats([1, 2, 3, 4, 5]), stats([6, 7, 8, 9, 10]))
    assert p2 == pytest.approx(math.erfc(12 / math.sqrt(25 * 11 / 12) / math.sqrt(2)))
    assert mann_whitney_p(stats([1, 2]), stats([3, 4, 5])) is None


def test_bimodal_fraction_is_judged_by_rank_test_and_shows_its_distribution() -> None:
    a = per_boot(STRESS, "gfp_kernel_order0", "fill_rate", [0, 0, 0, 0, 0, 1.0])
    b = per_boot(STRESS, "gfp_kernel_order0", "fill_rate", [1.0, 1, 1, 1, 1, 0])
    cmp = compare(side("baseline", a), side("patched", b))
    (m,) = cmp.arches[0].metrics
    assert m.bimodal and m.overlap is True  # the range rule alone would say "~"
    assert m.rank_p == pytest.approx(0.0341, abs=1e-3)
    assert m.significant and m.verdict == "better"
    interval = m.interval
    assert interval is not None and interval.lo < interval.estimate < interval.hi
    assert interval.estimate == pytest.approx(4 / 6 - 0)
    text = render_markdown(cmp)
    section = text.split("### Bimodal fractions: per-boot distribution")[1].split("\n## ")[0]
    assert "5 < 10%, 0 between, 1 > 90% (of 6)" in section
    assert "1 < 10%, 0 between, 5 > 90% (of 6)" in section
    assert "0.034" in section  # the rank test's p


def test_bootstrap_intervals_cover_the_estimate_and_are_reproducible() -> None:
    i = bootstrap_mean(BASE_BOOTS)
    assert i is not None and i.lo <= i.estimate <= i.hi and i.lo >= 0.0 and i.hi <= 1.0
    assert i.width > 0.3  # 8 boots at 0 or 1: wider than 30 points
    assert bootstrap_mean(BASE_BOOTS) == i  # fixed seed
    constant = bootstrap_mean([0.5, 0.5, 0.5])
    assert constant is not None and constant.width == 0
    d = bootstrap_diff([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    assert d is not None and (d.lo, d.estimate, d.hi) == (1.0, 1.0, 1.0)


def test_headline_of_a_bimodal_fraction_is_too_wide_for_the_target() -> None:
    headline = next(h for h in HEADLINES if h.key == "fill_rate")
    module, _, case = headline.case.partition(".")
    cmp = compare(
        side("baseline", per_boot(module, case, "fill_rate", BASE_BOOTS)),
        side("patched", per_boot(module, case, "fill_rate", PATCHED_BOOTS)),
    )
    (figure,) = widths(cmp.arches[0].metrics)
    assert figure.label == headline.label and figure.target == 0.30
    assert not figure.narrow
    rows = render_markdown(cmp).split("## Headline figures")[1]
    assert "(95% CI " in rows


# -------------------------------------------------------------- stopping rule


def fig(width: float, target: float = 0.30, label: str = "f") -> FigureWidth:
    return FigureWidth(label, width, target)


def test_stopping_rule() -> None:
    narrow, wide = fig(0.10), fig(0.45, label="fill")
    # not before the minimum of 3 pairs, even if narrow
    assert decide([narrow], 2, max_reps=20).stop is Stop.CONTINUE
    assert decide([narrow], 3, max_reps=20).stop is Stop.NARROW
    # one wide figure keeps it going until the budget
    assert decide([narrow, wide], 3, max_reps=20).stop is Stop.CONTINUE
    budget = decide([narrow, wide], 20, max_reps=20)
    assert budget.stop is Stop.BUDGET and budget.wide == [wide]
    assert budget.text() == "budget of 20 repetition(s) reached; still too wide: fill: 0.45 > 0.3"
    # a budget below the minimum is still a budget
    assert decide([wide], 1, max_reps=1).stop is Stop.BUDGET
    # exactly at the target is narrow enough
    assert decide([fig(0.30)], 5, max_reps=20).stop is Stop.NARROW
    # no headline figure in the runs: nothing to wait for
    none = decide([], 3, max_reps=20)
    assert none.stop is Stop.NARROW and "no headline figure" in none.text()


# ------------------------------------------------------------ run definitions


def write(tmp_path: Path, text: str, name: str = "ab.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = """\
name: x
tradeoffs:
  - metric: kbulk_stress.gfp_kernel_order0.p50_ns
    direction: higher
    reason: requests wait for reclaim
  - metric: kbulk_bench.order0_batch1.*ns_per_page*
    direction: higher
    reason: one more branch
    arch: arm64
"""


def test_tradeoffs_load_with_their_source_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    spec = load_spec(path, tmp_path)
    first, second = spec.tradeoffs
    assert (first.metric, first.direction, first.arch) == (
        "kbulk_stress.gfp_kernel_order0.p50_ns", "higher", None,
    )  # fmt: skip
    assert first.source == f"{path}:3" and second.source == f"{path}:6"
    assert second.arch == "arm64" and second.matches(
        "arm64", "kbulk_bench.order0_batch1.ns_per_page"
    )
    assert not second.matches("x86_64", "kbulk_bench.order0_batch1.ns_per_page")


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("tradeoffs: yes\n", 1, "tradeoffs: expected a list of trade-offs"),
        ("tradeoffs:\n  - p50_ns\n", 2, "each trade-off is a mapping"),
        ("tradeoffs:\n  - metric: a.b.c\n    direction: higher\n", 2, "needs 'reason'"),
        ("tradeoffs:\n  - metric: a.b.c\n    direction: worse\n    reason: r\n", 3,
         "direction: 'worse'; allowed: higher, lower"),
        ("tradeoffs:\n  - metric: p50_ns\n    direction: higher\n    reason: r\n", 2,
         "metric: 'p50_ns': expected <module>.<case>.<key>"),
        ("name: x\ntradeoffs:\n  - metric: a.b.c\n    direction: lower\n    reason: r\n"
         "    why: because\n", 6, "why: unknown key; allowed here: arch, direction, metric"),
        ("tradeoffs:\n  - metric: a.b.c\n    direction: lower\n    reason: '  '\n", 4,
         "reason: a trade-off needs a reason"),
        ("tradeoffs:\n  - metric: a.b.c\n    direction: lower\n    reason: r\n    arch: mips\n",
         5, "arch: unknown architecture 'mips'"),
    ],
)  # fmt: skip
def test_bad_tradeoffs_name_file_and_line(
    tmp_path: Path, text: str, where: int, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as e:
        load_spec(path, tmp_path)
    assert str(e.value).startswith(f"{path}:{where}: ")
    assert message in str(e.value)


def test_series_tradeoffs_file(tmp_path: Path) -> None:
    assert series_tradeoffs(tmp_path) == [] and series_tradeoffs(None) == []
    path = write(tmp_path, GOOD.replace("name: x\n", ""), "tradeoffs.yaml")
    assert [t.source for t in series_tradeoffs(tmp_path)] == [f"{path}:2", f"{path}:5"]
    bad = write(tmp_path, "trade_offs: []\n", "tradeoffs.yaml")
    with pytest.raises(SpecError, match=rf"^{bad}:1: trade_offs: unknown key"):
        load_tradeoffs(bad)


def test_committed_run_definitions_still_load() -> None:
    root = Path(__file__).resolve().parent.parent
    for path in sorted((root / "configs").glob("*.yaml")):
        load_spec(path, root)


def test_compare_metrics_keeps_rank_p_only_for_fractions() -> None:
    runs_a = per_boot(STRESS, "c", "p50_ns", [1.0, 2.0, 3.0])
    runs_b = per_boot(STRESS, "c", "p50_ns", [4.0, 5.0, 6.0])
    (m,) = compare_metrics("x86_64", runs_a, runs_b)
    assert m.rank_p is None and not m.bimodal


def test_compare_reads_tradeoff_files(tmp_path: Path) -> None:
    import json
    import shutil

    from harness.compare_cmd import run_compare
    from harness.record.status import EXIT_USAGE

    src = Path(__file__).parent / "data" / "results-v1" / "ab"
    ab = tmp_path / "ab"
    shutil.copytree(src, ab)
    bad = write(tmp_path, "tradeoffs:\n  - metric: a.b.c\n    direction: up\n    reason: r\n")
    errors: list[str] = []
    code = run_compare([ab], tradeoff_files=[bad], info=lambda _: None, error=errors.append)
    assert code == EXIT_USAGE and errors == [
        f"{bad}:3: direction: 'up'; allowed: higher, lower (the way the figure is meant to move)"
    ]
    good = write(tmp_path, GOOD, "run.yaml")
    assert run_compare([ab], tradeoff_files=[good], info=lambda _: None) == 0
    data = json.loads((ab / "compare.json").read_text())
    assert [t["metric"] for t in data["tradeoffs"]] == [
        "kbulk_stress.gfp_kernel_order0.p50_ns",
        "kbulk_bench.order0_batch1.*ns_per_page*",
    ]
    assert data["verdict"].startswith("no regression beyond threshold;")
    assert "## Intended, as declared" in (ab / "report.md").read_text()


@pytest.mark.usefixtures("no_fsync")
@pytest.mark.parametrize(("width", "max_reps", "pairs", "stop"), [
    (0.10, 20, 3, "narrow"),  # narrow from the start: the minimum of 3 pairs
    (0.45, 4, 4, "budget"),  # never narrow: the budget
])  # fmt: skip
def test_ab_reps_auto_is_wired_to_the_stopping_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: float, max_reps: int, pairs: int,
    stop: str,
) -> None:  # fmt: skip
    from test_errors import Raising, options, prepared, stub_source

    import harness.ab
    from harness.ab import run_ab
    from harness.pipeline import Pipeline
    from harness.progress import Reporter
    from harness.record.store import load_json

    stub_source(monkeypatch, tmp_path)
    monkeypatch.setattr(Pipeline, "prepare", lambda self, *a: prepared(tmp_path))
    seen: list[int] = []

    def fake_widths(metrics: object) -> list[FigureWidth]:
        seen.append(1)
        return [FigureWidth("fill", width, 0.30)]

    monkeypatch.setattr(harness.ab, "widths", fake_widths)
    pipeline = Pipeline(options(tmp_path), Reporter(quiet=True), booter=Raising(RuntimeError("x")))
    results, _ = run_ab(pipeline, None, max_reps)
    assert len(results.runs) == 2 * pairs and len(seen) == pairs  # asked after every pair
    meta = load_json(results.path / "results.json")[0]
    assert meta.repetitions == "auto" and meta.max_reps == max_reps
    assert meta.reps_auto is not None
    assert meta.reps_auto["x86_64"].stop == stop
    assert meta.reps_auto["x86_64"].reps == pairs


def test_reps_auto_on_the_command_line() -> None:
    from harness.cli import build_parser

    args = build_parser().parse_args(["ab", "--reps", "auto", "--max-reps", "12"])
    assert args.reps is None and args.max_reps == 12
    assert build_parser().parse_args(["ab", "--reps", "4"]).reps == 4
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ab", "--reps", "many"])


def test_bimodal_cells_show_boots_not_a_stddev() -> None:
    a = per_boot(STRESS, "gfp_kernel_order0", "fill_rate", [0, 0, 0, 0, 0, 1.0])
    b = per_boot(STRESS, "gfp_kernel_order0", "fill_rate", [1.0, 1, 1, 1, 1, 0])
    text = render_markdown(compare(side("baseline", a), side("patched", b)))
    counts = text.split("### Host-independent counts")[1]
    row = next(line for line in counts.splitlines() if "| fill_rate" in line)
    assert "0.167 (5 near 0%, 1 near 100%, 0 between)" in row and "±" not in row
