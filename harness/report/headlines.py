"""The figures reviewers ask for first, picked out of an A/B comparison.

An A/B report has hundreds of metric rows; the series makes five promises
(GFP_KERNEL requests filled under pressure, short only where alloc_pages()
itself fails, an order-0 fast path as cheap as 7.2's, order-4 bulk faster
than a loop without a worse tail, compaction stalls per order-9 request
bounded by the sticky downgrade). Each headline
names the module case and metric that answers one of them, as data; a case
the run did not have shows as "n/a", never as a made-up value.

Every cell carries its 95 % percentile-bootstrap interval over the boots
("mean (95% CI lo-hi)"; a ratio's interval resamples both sides), and
:func:`widths` says how wide each headline's widest interval is against its
target (30 percentage points for fractions), for `kbulk ab --reps auto`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from harness.report.compare import MetricDelta
from harness.report.metrics import METRICS
from harness.report.stats import Interval, Stats, bootstrap_mean, bootstrap_ratio
from harness.report.stopping import FigureWidth

# How narrow a headline's interval must be (`kbulk ab --reps auto`): fractions in
# absolute terms (0.30 = 30 percentage points), ratios in absolute ratio units,
# other numbers relative to the estimate.
TARGET_PCT_POINTS = 0.30
TARGET_RATIO = 0.10
TARGET_RELATIVE = 0.50


class Show(enum.StrEnum):
    PATCHED = "patched"  # the patched side's value
    BASELINE = "baseline"  # the baseline side's value
    BOTH = "both"  # baseline -> patched
    RATIO = "ratio"  # patched mean / baseline mean
    VERSUS = "versus"  # patched: this case against other_case


class Fmt(enum.StrEnum):
    PCT = "pct"  # a 0..1 rate as a percentage
    RATIO = "ratio"  # "1.02x"
    NUM = "num"


@dataclass(frozen=True)
class Headline:
    label: str
    case: str  # "<module>.<case>", as in the report's tables
    key: str
    show: Show
    fmt: Fmt | None = None  # None: from the metric vocabulary (see .format)
    other_case: str | None = None  # Show.VERSUS

    @property
    def format(self) -> Fmt:
        """How the cells are written: a ratio for Show.RATIO, else by the metric's unit."""
        if self.fmt is not None:
            return self.fmt
        unit = METRICS.lookup(self.key).unit
        if self.show is Show.RATIO or unit == "x":
            return Fmt.RATIO
        return Fmt.PCT if unit == "fraction" else Fmt.NUM


STRESS = "kbulk_stress"
BENCH = "kbulk_bench"

HEADLINES: tuple[Headline, ...] = (
    Headline(
        "GFP_KERNEL order-0 under pressure: requests filled (patched)",
        f"{STRESS}.gfp_kernel_order0", "fill_rate", Show.PATCHED,
    ),
    Headline(
        "same load: partial returns (baseline)",
        f"{STRESS}.gfp_kernel_order0", "partial_rate", Show.BASELINE,
    ),
    Headline(
        "__GFP_RETRY_MAYFAIL order-0 requests filled",
        f"{STRESS}.gfp_kernel_retry_mayfail_order0", "fill_rate", Show.BOTH,
    ),
    Headline(
        "__GFP_RETRY_MAYFAIL order-0: requests short although one alloc_pages() "
        "succeeds right after",
        f"{STRESS}.gfp_kernel_retry_mayfail_order0", "short_alloc_ok_rate", Show.BOTH,
    ),
    Headline(
        "__GFP_RETRY_MAYFAIL, 16 order-2 blocks (7.2: a loop of alloc_pages()): requests filled",
        f"{STRESS}.gfp_kernel_retry_mayfail_order2", "fill_rate", Show.BOTH,
    ),
    Headline(
        "same: requests short although one alloc_pages() succeeds right after",
        f"{STRESS}.gfp_kernel_retry_mayfail_order2", "short_alloc_ok_rate", Show.BOTH,
    ),
    Headline(
        "__GFP_NORETRY order-0 requests filled (opportunistic in both)",
        f"{STRESS}.gfp_kernel_noretry_order0", "fill_rate", Show.BOTH,
    ),
    Headline(
        "GFP_NOWAIT order-0 requests filled (opportunistic in both)",
        f"{STRESS}.gfp_nowait_order0", "fill_rate", Show.BOTH,
    ),
    Headline(
        "control: alloc_page() loop (no bulk call), ns/page patched/baseline",
        f"{BENCH}.order0_single_loop", "ns_per_page_min", Show.RATIO,
    ),
    Headline(
        "order-0 bulk, batch 64: ns/page patched/baseline (best repetition)",
        f"{BENCH}.order0_batch64", "ns_per_page_min", Show.RATIO,
    ),
    Headline(
        "order-0 bulk, batch 1: ns/page patched/baseline (best repetition)",
        f"{BENCH}.order0_batch1", "ns_per_page_min", Show.RATIO,
    ),
    Headline(
        "order-0 bulk, batch 512: ns/page patched/baseline (best repetition)",
        f"{BENCH}.order0_batch512", "ns_per_page_min", Show.RATIO,
    ),
    Headline(
        "order-4 alloc_pages_bulk_order() vs loop of alloc_pages(4): speed-up per folio",
        f"{BENCH}.order4_bulk", "speedup_vs_loop", Show.PATCHED,
    ),
    Headline(
        "same: p99 latency per 16 blocks, loop p99 / bulk p99 (>= 1: tail no worse)",
        f"{BENCH}.order4_bulk", "p99_speedup_vs_loop", Show.PATCHED,
    ),
    Headline(
        "order-4 GFP_KERNEL under pressure: request p99, patched bulk / baseline loop",
        f"{STRESS}.gfp_kernel_order4", "p99_ns", Show.RATIO,
    ),
    Headline(
        "folios up to order 9, GFP_KERNEL: compaction failures per 1000 requests, "
        "folio_alloc_bulk() vs per-folio loop (patched)",
        f"{STRESS}.gfp_kernel_folio_mixed", "compact_fail_per_kreq", Show.VERSUS,
        other_case=f"{STRESS}.gfp_kernel_folio_loop",
    ),
    Headline(
        "same: most compaction failures in one request, folio_alloc_bulk() vs loop (patched)",
        f"{STRESS}.gfp_kernel_folio_mixed", "req_compact_fail_max", Show.VERSUS,
        other_case=f"{STRESS}.gfp_kernel_folio_loop",
    ),
    Headline(
        "folios up to order 9, __GFP_NORETRY: most compaction stalls in one request, "
        "folio_alloc_bulk() vs loop (patched)",
        f"{STRESS}.gfp_kernel_noretry_folio_mixed", "req_compact_stall_max", Show.VERSUS,
        other_case=f"{STRESS}.gfp_kernel_noretry_folio_loop",
    ),
    Headline(
        "folios up to order 9, __GFP_NORETRY: most compaction failures in one request, "
        "folio_alloc_bulk() vs loop (patched)",
        f"{STRESS}.gfp_kernel_noretry_folio_mixed", "req_compact_fail_max", Show.VERSUS,
        other_case=f"{STRESS}.gfp_kernel_noretry_folio_loop",
    ),
)  # fmt: skip


def _find(metrics: Sequence[MetricDelta], case: str, key: str) -> MetricDelta | None:
    return next((m for m in metrics if m.name == case and m.key == key), None)


def _fmt(value: float, fmt: Fmt) -> str:
    match fmt:
        case Fmt.PCT:
            return f"{100 * value:.1f}%"
        case Fmt.RATIO:
            return f"{value:.2f}x"
        case _:
            return f"{value:.3g}"


def _ci(i: Interval | None, fmt: Fmt, n: int) -> str:
    if i is None or n < 2 or i.width == 0:
        return _fmt(i.estimate, fmt) if i is not None else "n/a"
    return f"{_fmt(i.estimate, fmt)} (95% CI {_fmt(i.lo, fmt)}-{_fmt(i.hi, fmt)})"


def _stats(s: Stats | None, fmt: Fmt) -> str:
    if s is None or s.n == 0:
        return "n/a"
    return _ci(bootstrap_mean(s.values), fmt, s.n)


def _ratio_interval(m: MetricDelta | None) -> Interval | None:
    if m is None or m.a is None or m.b is None:
        return None
    return bootstrap_ratio(m.a.values, m.b.values)


def value(headline: Headline, metrics: Sequence[MetricDelta]) -> str:
    """The headline's cell for one architecture: mean (range over repetitions)."""
    m = _find(metrics, headline.case, headline.key)
    match headline.show:
        case Show.PATCHED:
            return _stats(m.b if m else None, headline.format)
        case Show.BASELINE:
            return _stats(m.a if m else None, headline.format)
        case Show.BOTH:
            if m is None:
                return "n/a"
            return f"{_stats(m.a, headline.format)} -> {_stats(m.b, headline.format)}"
        case Show.RATIO:
            ratio = m.ratio if m else None
            if ratio is None or m is None or m.a is None or m.b is None:
                return "n/a"
            interval = _ratio_interval(m)
            if interval is None:
                return _fmt(ratio, Fmt.RATIO)
            return _ci(interval, Fmt.RATIO, min(m.a.n, m.b.n))
        case Show.VERSUS:
            other = _find(metrics, headline.other_case or "", headline.key)
            if m is None and other is None:
                return "n/a"
            mine = _stats(m.b if m else None, headline.format)
            theirs = _stats(other.b if other else None, headline.format)
            return f"{mine} vs {theirs}"


def rows(arches: Sequence[tuple[str, Sequence[MetricDelta]]]) -> list[list[str]]:
    """One row per headline, one column per architecture."""
    return [[h.label, *(value(h, metrics) for _, metrics in arches)] for h in HEADLINES]


def intervals(headline: Headline, metrics: Sequence[MetricDelta]) -> list[Interval]:
    """The intervals a headline's cell shows (none for a case the run did not have)."""
    m = _find(metrics, headline.case, headline.key)
    sides: list[Stats | None]
    match headline.show:
        case Show.PATCHED:
            sides = [m.b if m else None]
        case Show.BASELINE:
            sides = [m.a if m else None]
        case Show.BOTH:
            sides = [m.a, m.b] if m else []
        case Show.RATIO:
            ratio = _ratio_interval(m)
            return [ratio] if ratio is not None else []
        case Show.VERSUS:
            other = _find(metrics, headline.other_case or "", headline.key)
            sides = [m.b if m else None, other.b if other else None]
    out = []
    for s in sides:
        if s is not None and s.n > 0:
            i = bootstrap_mean(s.values)
            if i is not None:
                out.append(i)
    return out


def target(headline: Headline, estimate: float) -> float:
    """The widest acceptable interval for this headline (see TARGET_*)."""
    match headline.format:
        case Fmt.PCT:
            return TARGET_PCT_POINTS
        case Fmt.RATIO:
            return TARGET_RATIO
        case _:
            return TARGET_RELATIVE * abs(estimate)


def widths(metrics: Sequence[MetricDelta]) -> list[FigureWidth]:
    """Each headline's widest interval against its target; a headline whose cases the
    run did not have is left out (nothing to narrow)."""
    out = []
    for h in HEADLINES:
        found = intervals(h, metrics)
        if not found:
            continue
        worst = max(found, key=lambda i: i.width - target(h, i.estimate))
        out.append(FigureWidth(h.label, worst.width, target(h, worst.estimate)))
    return out
