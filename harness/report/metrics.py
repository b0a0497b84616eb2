"""The metric vocabulary: what the harness knows about its own modules' ``# kbulk-metric``
keys, as one table of data (name pattern, unit, better direction, kind, practical-
significance threshold), read by compare, the reports, the run summary and headlines.

A key takes the first row whose pattern matches (fnmatch). Thresholds are relative
changes (0.02 = 2 %) below which a statistically significant change is too small
to matter: about 1-2 % for instruction counts and times, more for counts taken under
memory pressure, which vary from boot to boot.
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
    "METRICS",
    "PER_KREQ",
    "RATE_KEYS",
    "STRESS_COLUMNS",
    "Direction",
    "Kind",
    "MetricSpec",
    "Vocabulary",
    "derived",
    "format_value",
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
    MetricSpec("requests", "requests", _H, Kind.THROUGHPUT, 0.02),
    MetricSpec("filled", "requests", _H, Kind.THROUGHPUT, 0.02),
    MetricSpec("pages", "pages", _H, Kind.THROUGHPUT, 0.02),
    MetricSpec("folios", "folios", _H, Kind.THROUGHPUT, 0.02),
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
HEADLINE_TIME_KEYS = frozenset({"ns_per_page", "ns_per_folio"})
# The run summary's fixed-width tables of the two test modules.
STRESS_COLUMNS = ("requests", "filled", "partial", "failed", "p50_ns", "p99_ns", "max_ns",
                  "compact_stall", "allocstall")  # fmt: skip
BENCH_COLUMNS = ("api", "ns_per_page", "ns_per_folio", "free_ns_per_page", "free_ns_per_folio")


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


def derived(values: Mapping[str, float]) -> dict[str, float]:
    """Per-request forms of one metric line's counts (host-speed independent)."""
    requests = values.get("requests")
    if not requests or requests <= 0:
        return {}
    out: dict[str, float] = {}
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
