"""The metric vocabulary: what the harness knows about its own modules' ``# kbulk-metric``
keys, as one table of data (name pattern, unit, better direction, kind, practical-
significance threshold), read by compare, the reports, the run summary and headlines.

A key takes the first row whose pattern matches (fnmatch). Thresholds are relative
changes (0.02 = 2 %) below which a statistically significant change is too small
to matter: about 1-2 % for instruction counts and times, more for counts taken under
memory pressure, which vary from boot to boot. For 0..1 fractions (unit "fraction":
fill, partial and failed rates) the threshold is absolute, in fractions (0.05 = 5
percentage points): a relative change of a rate near 0 (0.001 -> 0.002 = +100 %)
means nothing. A change inside its threshold is "within threshold", never a
regression, however small its p-value (see :func:`beyond_threshold`).

Like with like: one patched bulk request may deliver many more pages than a
baseline one, so requests completed and request latency do not compare the two
kernels' work. :func:`derived` adds per-page forms from the stress lines:
``pages_per_req`` (pages per request), ``req_ns_per_page`` (time spent in
requests per page delivered: mean_ns x requests / pages) and ``pages_per_ms``
(pages per millisecond of guest time spent in requests, over all threads). The
raw ``pages`` of a stress case is itself pages per unit of guest time, since every
case runs for the same duration_ms.
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "BENCH_COLUMNS",
    "COUNTERS",
    "HEADLINE_TIME_KEYS",
    "INFO_CASES",
    "LOCKHOLD_COLUMNS",
    "METRICS",
    "PER_KREQ",
    "RATE_KEYS",
    "STRESS_COLUMNS",
    "Direction",
    "Kind",
    "MetricSpec",
    "Vocabulary",
    "beyond_threshold",
    "derived",
    "format_value",
    "threshold_text",
]


class Direction(enum.StrEnum):
    HIGHER = "higher is better"
    LOWER = "lower is better"
    NEUTRAL = "neutral"


class Kind(enum.StrEnum):
    """How a metric may be read; decides where (and whether) reports show it."""

    COUNT = "count"  # does not depend on host speed: lead with these
    TIME = "time"  # wall-clock derived; under TCG only ratios mean anything
    THROUGHPUT = "throughput"  # work done in a fixed duration: scales with host speed
    RAW = "raw"  # event count that scales with the requests done; see its per-request rate
    INFO = "info"  # parameters and environment (order, batch, setup sizes, ...)


@dataclass(frozen=True)
class MetricSpec:
    name: str  # fnmatch pattern on the metric key
    unit: str
    better: Direction
    kind: Kind
    threshold: float  # practical significance: smallest relative change worth a verdict
    note: str = ""


# Raw event counters are NEUTRAL because a faster host completes more requests
# in the same duration_ms and so sees more partials/stalls; their per-request
# forms (see derived()) carry the direction.
_H, _L, _N = Direction.HIGHER, Direction.LOWER, Direction.NEUTRAL
_TABLE: tuple[MetricSpec, ...] = (
    # Per-page forms of the stress cases (derived): the work each kernel did.
    MetricSpec("pages_per_req", "pages", _N, Kind.COUNT, 0.05,
               "pages per request (the request size the kernel delivered)"),
    MetricSpec("req_ns_per_page", "ns", _L, Kind.TIME, 0.05,
               "time in requests per page delivered: mean_ns x requests / pages"),
    MetricSpec("pages_per_ms", "pages/ms", _H, Kind.TIME, 0.05,
               "pages per ms of guest time spent in requests (all threads)"),
    MetricSpec("fill_rate", "fraction", _H, Kind.COUNT, 0.01, "filled / requests"),
    MetricSpec("partial_rate", "fraction", _L, Kind.COUNT, 0.05, "partial / requests"),
    MetricSpec("failed_rate", "fraction", _L, Kind.COUNT, 0.05, "failed / requests"),
    MetricSpec("short_alloc_ok_rate", "fraction", _L, Kind.COUNT, 0.05,
               "short requests after which one alloc_pages() succeeded at once, per request"),
    MetricSpec("short_alloc_ok", "requests", _N, Kind.RAW, 0.10),
    MetricSpec("*_per_kreq", "per 1000 requests", _L, Kind.COUNT, 0.10, "stalls per request"),
    MetricSpec("oom_kill", "events", _L, Kind.COUNT, 0.10),
    MetricSpec("short", "calls", _L, Kind.COUNT, 0.02, "bench: bulk calls that returned short"),
    MetricSpec("delta", "pages", _L, Kind.COUNT, 0.0, "leak_check: pages not given back"),
    MetricSpec("clock_res_ns", "ns", _N, Kind.INFO, 0.0),
    MetricSpec("*speedup_vs_loop", "x", _H, Kind.TIME, 0.02),
    MetricSpec("*_ns", "ns", _L, Kind.TIME, 0.02, "p50_ns p99_ns max_ns mean_ns"),
    MetricSpec("*ns_per_*", "ns", _L, Kind.TIME, 0.01, "ns_per_page, free_ns_per_folio_min"),
    # Requests completed depend on how many pages each request asks for and gets:
    # neutral; pages delivered in the case's fixed duration carry the direction.
    MetricSpec("requests", "requests", _N, Kind.THROUGHPUT, 0.05,
               "requests completed in duration_ms; compare pages"),
    MetricSpec("filled", "requests", _N, Kind.THROUGHPUT, 0.05, "see fill_rate"),
    MetricSpec("pages", "pages", _H, Kind.THROUGHPUT, 0.05,
               "pages delivered in duration_ms (per unit of guest time)"),
    MetricSpec("folios", "folios", _H, Kind.THROUGHPUT, 0.05),
    MetricSpec("partial", "requests", _N, Kind.RAW, 0.10),
    MetricSpec("failed", "requests", _N, Kind.RAW, 0.10),
    MetricSpec("compact_*", "events", _N, Kind.RAW, 0.10),
    MetricSpec("req_compact_*", "events", _L, Kind.RAW, 0.10,
               "folio cases: most stalls in one request"),
    MetricSpec("allocstall", "events", _N, Kind.RAW, 0.10),
    MetricSpec("pgalloc", "pages", _N, Kind.RAW, 0.10),
    MetricSpec("calls", "calls", _N, Kind.RAW, 0.10),
    MetricSpec("oom_deflate*", "events", _N, Kind.RAW, 0.10),
    MetricSpec("ord[0-9]", "folios", _N, Kind.RAW, 0.10, "folio_mixed: folios per order"),
    MetricSpec("*", "", _N, Kind.INFO, 0.0),
)  # fmt: skip

INFO_CASES = frozenset({"env", "setup"})  # metric lines that are not test cases
# vm event counters print -1 when the kernel lacks them: a missing sample, not a value.
COUNTERS = frozenset(
    {"compact_stall", "compact_fail", "compact_success", "allocstall", "pgalloc", "oom_kill"}
)
PER_KREQ = ("compact_stall", "compact_fail", "allocstall")  # derived as <key>_per_kreq
RATE_KEYS = frozenset({"fill_rate", "partial_rate", "failed_rate"})  # shown as percentages
# Time rows the comparison report always shows (the benchmark's headline); other
# time and throughput rows only when significant.
# kbulk_lockhold's max_stretch_ns is its headline: shown even from one boot a side
# (under -icount it is an instruction count, the same on every boot).
HEADLINE_TIME_KEYS = frozenset({"ns_per_page", "ns_per_folio", "max_stretch_ns"})
# The run summary's fixed-width tables of the two test modules.
STRESS_COLUMNS = ("requests", "filled", "partial", "failed", "p50_ns", "p99_ns", "max_ns",
                  "compact_stall", "allocstall")  # fmt: skip
BENCH_COLUMNS = ("api", "ns_per_page", "ns_per_folio", "free_ns_per_page", "free_ns_per_folio")
# kbulk_lockhold: the longest preempt/irqs-off stretch of one call (tracer, us -> ns).
LOCKHOLD_COLUMNS = ("api", "order", "blocks", "zero", "short", "max_stretch_ns", "min_stretch_ns")


@dataclass(frozen=True)
class Vocabulary:
    specs: tuple[MetricSpec, ...]

    def lookup(self, key: str, case: str = "") -> MetricSpec:
        """The row for ``key`` (first match); lines of INFO_CASES are information only."""
        if case in INFO_CASES:
            return self.specs[-1]
        for spec in self.specs:
            if fnmatch.fnmatchcase(key, spec.name):
                return spec
        return self.specs[-1]

    def named(self, direction: Direction) -> list[str]:
        """The patterns with this direction (the reports' legend)."""
        return [s.name for s in self.specs if s.better is direction and s.name != "*"]


METRICS = Vocabulary(_TABLE)


def beyond_threshold(spec: MetricSpec, a: float, b: float) -> bool:
    """Whether a change of the mean from ``a`` to ``b`` exceeds the metric's practical-
    significance threshold (absolute for fractions, relative otherwise)."""
    if a == b:
        return False
    if spec.unit == "fraction":
        return abs(b - a) > spec.threshold
    if a == 0:
        return True
    return abs(b - a) / abs(a) > spec.threshold


def threshold_text(spec: MetricSpec) -> str:
    """The threshold as the reports write it: "5 pts" for fractions, "2%" otherwise."""
    if spec.unit == "fraction":
        return f"{100 * spec.threshold:g} pts"
    return f"{100 * spec.threshold:g}%" if spec.threshold else "any change"


def derived(values: Mapping[str, float]) -> dict[str, float]:
    """Per-request and per-page forms of one metric line's counts (host-speed
    independent). Per page needs ``pages``, and the time forms ``mean_ns``: the
    stress cases print both; nothing here needs the case's elapsed guest time,
    which the modules do not print."""
    requests = values.get("requests")
    if not requests or requests <= 0:
        return {}
    out: dict[str, float] = {}
    pages = values.get("pages")
    if pages is not None and pages >= 0:
        out["pages_per_req"] = pages / requests
        mean_ns = values.get("mean_ns")
        if mean_ns is not None and mean_ns > 0:
            busy_ns = mean_ns * requests
            if pages > 0:
                out["req_ns_per_page"] = busy_ns / pages
            out["pages_per_ms"] = pages * 1e6 / busy_ns
    for key in ("filled", "partial", "failed", "short_alloc_ok"):
        if key in values:
            name = "fill_rate" if key == "filled" else f"{key}_rate"
            out[name] = values[key] / requests
    for key in PER_KREQ:
        if key in values:
            out[f"{key}_per_kreq"] = values[key] * 1000.0 / requests
    return out


def format_value(value: float | None, key: str = "") -> str:
    """A metric value as the reports write it (rates to 3 decimals)."""
    if value is None:
        return "-"
    if key in RATE_KEYS:
        return f"{value:.3f}"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
