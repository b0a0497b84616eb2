"""Headline figures are read from the comparison, never invented."""

from harness.report.compare import Direction, Kind, MetricDelta, stats
from harness.report.headlines import HEADLINES, Show, rows, value


def delta(case: str, key: str, a: list[float] | None, b: list[float] | None) -> MetricDelta:
    group, _, name = case.partition(".")
    return MetricDelta(
        "x86_64", group, name, key, Direction.HIGHER, Kind.COUNT,
        stats(a) if a is not None else None, stats(b) if b is not None else None,
    )  # fmt: skip


def by_show(show: Show):
    return next(h for h in HEADLINES if h.show is show)


def test_each_kind_of_cell() -> None:
    patched = by_show(Show.PATCHED)
    both = by_show(Show.BOTH)
    ratio = by_show(Show.RATIO)
    versus = by_show(Show.VERSUS)
    metrics = [
        delta(patched.case, patched.key, [0.5, 0.5, 0.5], [1.0, 1.0, 1.0]),
        delta(both.case, both.key, [0.25, 0.75], [1.0, 1.0]),
        delta(ratio.case, ratio.key, [100.0], [102.0]),
        delta(versus.case, versus.key, None, [3.0, 5.0]),
        delta(versus.other_case, versus.key, None, [40.0]),
    ]
    if patched.fmt == "pct":
        assert value(patched, metrics) == "100.0%"
    assert value(both, metrics) == "50.0% (25.0%-75.0%) -> 100.0%"
    assert value(ratio, metrics) == "1.02x"
    assert value(versus, metrics) == "4 (3-5) vs 40"


def test_missing_cases_are_na_in_every_column() -> None:
    table = rows([("x86_64", []), ("arm64", [])])
    assert len(table) == len(HEADLINES)
    assert all(row[1:] == ["n/a", "n/a"] for row in table)
