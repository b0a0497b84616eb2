"""Headline figures are read from the comparison, never invented."""

from harness.report.compare import MetricDelta
from harness.report.headlines import HEADLINES, Fmt, Headline, Show, rows, value
from harness.report.metrics import METRICS, Direction, Kind
from harness.report.stats import stats


def delta(case: str, key: str, a: list[float] | None, b: list[float] | None) -> MetricDelta:
    group, _, name = case.partition(".")
    return MetricDelta(
        "x86_64", group, name, key, Direction.HIGHER, Kind.COUNT,
        stats(a) if a is not None else None, stats(b) if b is not None else None,
    )  # fmt: skip


def test_each_kind_of_cell() -> None:
    # Headlines made here, not picked from HEADLINES: the assertions cannot be
    # switched off by someone changing a real headline's format.
    patched = Headline("p", "s.c1", "fill_rate", Show.PATCHED, Fmt.PCT)
    baseline = Headline("b", "s.c1", "fill_rate", Show.BASELINE, Fmt.PCT)
    both = Headline("b", "s.c2", "fill_rate", Show.BOTH, Fmt.PCT)
    ratio = Headline("r", "s.c3", "ns_per_page_min", Show.RATIO, Fmt.RATIO)
    versus = Headline("v", "s.c4", "n", Show.VERSUS, Fmt.NUM, other_case="s.c5")
    metrics = [
        delta("s.c1", "fill_rate", [0.5, 0.5, 0.5], [1.0, 1.0, 1.0]),
        delta("s.c2", "fill_rate", [0.25, 0.75], [1.0, 1.0]),
        delta("s.c3", "ns_per_page_min", [100.0], [102.0]),
        delta("s.c4", "n", None, [3.0, 5.0]),
        delta("s.c5", "n", None, [40.0]),
    ]
    assert value(patched, metrics) == "100.0%"
    assert value(baseline, metrics) == "50.0%"
    # two boots 25% and 75%: the bootstrap means are 25, 50 or 75%
    assert value(both, metrics) == "50.0% (95% CI 25.0%-75.0%) -> 100.0%"
    assert value(ratio, metrics) == "1.02x"
    assert value(versus, metrics) == "4 (95% CI 3-5) vs 40"


def test_every_headline_is_a_known_metric() -> None:
    # Each headline's key must be a metric the vocabulary knows (a typo would
    # otherwise show as "n/a" forever).
    for h in HEADLINES:
        assert METRICS.lookup(h.key).name != "*", h.key


def test_missing_cases_are_na_in_every_column() -> None:
    table = rows([("x86_64", []), ("arm64", [])])
    assert len(table) == len(HEADLINES)
    assert all(row[1:] == ["n/a", "n/a"] for row in table)


def test_cell_format_comes_from_the_vocabulary() -> None:
    def h(key: str, show: Show) -> Headline:
        return Headline("x", "s.c", key, show)

    assert h("fill_rate", Show.BOTH).format is Fmt.PCT  # unit: fraction
    assert h("speedup_vs_loop", Show.PATCHED).format is Fmt.RATIO  # unit: x
    assert h("p99_ns", Show.RATIO).format is Fmt.RATIO  # a ratio whatever the unit
    assert h("req_compact_fail_max", Show.VERSUS).format is Fmt.NUM
    assert Headline("x", "s.c", "fill_rate", Show.BOTH, Fmt.NUM).format is Fmt.NUM  # explicit
