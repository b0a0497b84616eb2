"""Compare two sets of runs (baseline and patched): statuses, crashes and metrics.

The comparison model only: the statistics are in :mod:`harness.report.stats`, what
each metric means (direction, kind, unit) in :mod:`harness.report.metrics`.

A side is one or more result directories (or the baseline/patched half of one
A/B directory); every run of a side is a repetition. Per architecture the
comparison reports:

* run and test status changes, new and vanished crashes;
* every ``# kbulk-metric`` value with mean, sample stddev, %change and a
  significance verdict in the LKP style (sample ranges must not overlap) backed
  by Welch's t-test when both sides have >= 3 samples; a 0..1 fraction whose
  boots land both near 0 and near 1 (bimodal) is judged by the Mann-Whitney
  rank test instead, and carries a bootstrap interval and its distribution;
* a significant change inside the metric's practical-significance threshold
  (:mod:`harness.report.metrics`) is "within threshold", never a regression;
  a worsening the series declared as an intended trade-off
  (:class:`harness.spec.Tradeoff`) is "intended", listed apart;
* whether the runs differ in more than the kernel (accelerator, config, run
  definition, guest memory/CPUs, kernel command line): :class:`Refused` unless
  forced, in which case the mismatch travels with the result as a warning.

Pure functions on loaded results; the report is :mod:`harness.report.document`.
"""

from __future__ import annotations

import enum
import functools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.analysis.ktap import TestNode, TestStatus
from harness.analysis.module_metrics import DeclaredMetric, declared_spec
from harness.record.meta import RunMeta
from harness.record.run import ArchRun, CrashReport
from harness.record.status import SEVERITY, RunStatus
from harness.record.store import ResultDir
from harness.report.metrics import (
    COUNTERS,
    METRICS,
    Direction,
    Kind,
    MetricSpec,
    beyond_threshold,
    derived,
    threshold_text,
)
from harness.report.stats import (
    ALPHA,
    Distribution,
    Interval,
    Stats,
    bimodal,
    bootstrap_diff,
    distribution,
    mann_whitney_p,
    stats,
    welch_p,
)
from harness.spec import Tradeoff

__all__ = [
    "ALPHA",
    "ArchComparison",
    "Comparison",
    "Direction",
    "Kind",
    "LoadedRun",
    "MetricDelta",
    "Refused",
    "Side",
    "Stats",
    "compare",
    "derived",
    "describe",
    "direction_of",
    "labels",
    "load_runs",
    "sides_from_dirs",
    "split_ab",
    "stats",
    "welch_p",
]


class Refused(Exception):
    """The runs differ in more than the kernel; ``mismatches`` says how."""

    def __init__(self, mismatches: Sequence[Difference]) -> None:
        self.mismatches = list(mismatches)
        super().__init__("; ".join(m.text() for m in self.mismatches))


def direction_of(key: str, case: str = "") -> tuple[Direction, Kind]:
    spec = METRICS.lookup(key, case)
    return spec.better, spec.kind


# ---------------------------------------------------------------------- metrics


@dataclass
class MetricDelta:
    arch: str
    group: str  # module / KUnit suite holding the line, e.g. "kbulk_stress"
    case: str  # the test= field
    key: str
    direction: Direction
    kind: Kind
    a: Stats | None
    b: Stats | None
    p_value: float | None = None
    overlap: bool | None = None  # sample ranges overlap (None: not decidable)
    rank_p: float | None = None  # Mann-Whitney U (fractions only)
    intended: Tradeoff | None = None  # the declared trade-off this change matches
    # the run definition's own row for a regex-read module's metric (None: METRICS)
    declared: MetricSpec | None = None

    @property
    def path(self) -> str:
        """``<module>.<case>.<key>``: what a trade-off's ``metric`` pattern matches."""
        return f"{self.name}.{self.key}"

    @property
    def bimodal(self) -> bool:
        """A 0..1 fraction with boots near 0 and near 1 on either side."""
        if self.spec.unit != "fraction" or self.a is None or self.b is None:
            return False
        return bimodal(self.a.values) or bimodal(self.b.values)

    def distributions(self) -> tuple[Distribution, Distribution] | None:
        """Per-boot distributions of a fraction (baseline, patched)."""
        if self.spec.unit != "fraction" or self.a is None or self.b is None:
            return None
        return distribution(self.a.values), distribution(self.b.values)

    @functools.cached_property
    def interval(self) -> Interval | None:
        """95 % bootstrap interval of patched mean - baseline mean."""
        if self.a is None or self.b is None:
            return None
        return bootstrap_diff(self.a.values, self.b.values)

    @property
    def beyond_threshold(self) -> bool:
        """The change of the means exceeds the metric's practical-significance threshold."""
        if self.a is None or self.b is None:
            return False
        return beyond_threshold(self.spec, self.a.mean, self.b.mean)

    @property
    def worse_direction(self) -> bool | None:
        """True if the mean moved the bad way, None for neutral or unchanged metrics."""
        if self.a is None or self.b is None or self.direction is Direction.NEUTRAL:
            return None
        if self.a.mean == self.b.mean:
            return None
        up = self.b.mean > self.a.mean
        return up != (self.direction is Direction.HIGHER)

    @property
    def name(self) -> str:
        return f"{self.group}.{self.case}" if self.group else self.case

    @property
    def spec(self) -> MetricSpec:
        """The vocabulary's row for this metric (unit, practical threshold, ...): the
        run definition's declaration for a module read with regex rules, if any."""
        return self.declared or METRICS.lookup(self.key, self.case)

    @property
    def pct_change(self) -> float | None:
        if self.a is None or self.b is None:
            return None
        if self.a.mean == 0:
            return 0.0 if self.b.mean == 0 else None
        return 100.0 * (self.b.mean - self.a.mean) / abs(self.a.mean)

    @property
    def ratio(self) -> float | None:
        """patched mean / baseline mean (how times are shown)."""
        if self.a is None or self.b is None or self.a.mean == 0:
            return None
        return self.b.mean / self.a.mean

    @property
    def single(self) -> bool:
        return self.a is None or self.b is None or min(self.a.n, self.b.n) < 2

    @property
    def significant(self) -> bool:
        """Ranges do not overlap (n >= 2) and, with n >= 3 a side, Welch p < ALPHA too;
        for a bimodal fraction: Mann-Whitney p < ALPHA (n >= 3 a side)."""
        if self.single:
            return False
        if self.bimodal:
            return self.rank_p is not None and self.rank_p < ALPHA
        if self.overlap is not False:
            return False
        return self.p_value is None or self.p_value < ALPHA

    @property
    def changed(self) -> bool:
        return self.a is not None and self.b is not None and self.a.mean != self.b.mean

    @property
    def verdict(self) -> str:
        """ "better", "worse", "intended" (worse, as a declared trade-off), "within
        threshold" (significant but too small to matter), "changed" (neutral metric),
        "~" (not significant), "n=1"."""
        if self.a is None or self.b is None:
            return "only in baseline" if self.b is None else "only in patched"
        if not self.changed:
            return "same"
        if self.single:
            return "n=1"
        if not self.significant:
            return "~"
        if self.direction is Direction.NEUTRAL:
            return "changed"
        if not self.beyond_threshold:
            return "within threshold"
        if self.worse_direction:
            return "intended" if self.intended is not None else "worse"
        return "better"

    @property
    def regression(self) -> bool:
        """Significantly worse beyond the threshold and not a declared trade-off."""
        return self.verdict == "worse"


def _metric_group(test_path: Sequence[str], test: str) -> str:
    # The module (top-level suite): a line sits in the diagnostics of whichever
    # case follows it (test=env lands in the first case), so deeper levels of the
    # path say nothing; test= names are unique within a module.
    return test_path[0] if test_path else ""


def samples(runs: Iterable[ArchRun]) -> dict[tuple[str, str, str], list[float]]:
    """(group, case, key) -> values over all runs and all lines (threads, reps)."""
    out: dict[tuple[str, str, str], list[float]] = {}
    for run in runs:
        for metric in run.metrics:
            group = _metric_group(metric.test_path, metric.test)
            numeric = {
                k: float(v)
                for k, v in metric.values.items()
                if isinstance(v, int | float) and not (k in COUNTERS and v == -1)
            }
            for key, value in {**numeric, **derived(numeric)}.items():
                out.setdefault((group, metric.test, key), []).append(value)
    return out


def labels(runs: Iterable[ArchRun]) -> dict[tuple[str, str], dict[str, list[str]]]:
    """(group, case) -> string-valued keys (api=...) and their distinct values."""
    out: dict[tuple[str, str], dict[str, list[str]]] = {}
    for run in runs:
        for metric in run.metrics:
            entry = out.setdefault((_metric_group(metric.test_path, metric.test), metric.test), {})
            for key, value in metric.values.items():
                if isinstance(value, str) and value not in entry.setdefault(key, []):
                    entry[key].append(value)
    return out


def compare_metrics(
    arch: str,
    runs_a: list[ArchRun],
    runs_b: list[ArchRun],
    declared: Sequence[DeclaredMetric] = (),
) -> list[MetricDelta]:
    """``declared``: how to judge the metrics of modules read with regex rules."""
    sa, sb = samples(runs_a), samples(runs_b)
    order = list(sa) + [k for k in sb if k not in sa]  # keep the modules' print order
    deltas = []
    for group, case, key in order:
        a = stats(sa[(group, case, key)]) if (group, case, key) in sa else None
        b = stats(sb[(group, case, key)]) if (group, case, key) in sb else None
        own = declared_spec(declared, group, key)
        direction, kind = (own.better, own.kind) if own else direction_of(key, case)
        delta = MetricDelta(arch, group, case, key, direction, kind, a, b, declared=own)
        if a is not None and b is not None and min(a.n, b.n) >= 2:
            delta.overlap = not (a.hi < b.lo or b.hi < a.lo)
            delta.p_value = welch_p(a, b)
            if delta.spec.unit == "fraction":
                delta.rank_p = mann_whitney_p(a, b)
        deltas.append(delta)
    return deltas


def apply_tradeoffs(
    arch: str, deltas: Sequence[MetricDelta], tradeoffs: Sequence[Tradeoff]
) -> None:
    """Mark the worsenings a declared trade-off covers (metric pattern, arch and the
    declared direction all match the observed change)."""
    for delta in deltas:
        if delta.a is None or delta.b is None or delta.a.mean == delta.b.mean:
            continue
        up = delta.b.mean > delta.a.mean
        for t in tradeoffs:
            if t.matches(arch, delta.path) and t.up == up:
                delta.intended = t
                break


# ----------------------------------------------------------- statuses, crashes


@dataclass
class StatusChange:
    test: str  # dotted KTAP path
    a: list[str]  # statuses over the baseline repetitions ("absent" if not run)
    b: list[str]

    @staticmethod
    def summary(statuses: Sequence[str]) -> str:
        counts = Counter(statuses)
        if len(counts) == 1:
            return statuses[0]
        return ", ".join(f"{s} {n}/{len(statuses)}" for s, n in sorted(counts.items()))

    @property
    def regression(self) -> bool:
        return _bad_fraction(self.b) > _bad_fraction(self.a)


_BAD = frozenset({str(TestStatus.FAIL), str(TestStatus.CRASH)})


def _bad_fraction(statuses: Sequence[str]) -> float:
    return sum(s in _BAD for s in statuses) / len(statuses) if statuses else 0.0


def _test_statuses(run: ArchRun) -> dict[str, TestNode]:
    if run.ktap is None:
        return {}
    return {".".join(path): node for path, node in run.ktap.walk()}


def compare_tests(runs_a: list[ArchRun], runs_b: list[ArchRun]) -> list[StatusChange]:
    """Tests whose status (over the repetitions) differs; leaves, then suites whose
    own status changed without any case below them changing."""
    trees_a = [_test_statuses(r) for r in runs_a]
    trees_b = [_test_statuses(r) for r in runs_b]
    names: dict[str, bool] = {}  # ordered set: name -> is_leaf
    for tree in [*trees_a, *trees_b]:
        for name, node in tree.items():
            names[name] = names.get(name, True) and node.is_leaf

    def column(trees: list[dict[str, TestNode]], name: str) -> list[str]:
        return [str(t[name].status) if name in t else "absent" for t in trees]

    changes: list[StatusChange] = []
    for leaves in (True, False):
        for name, is_leaf in names.items():
            if is_leaf != leaves:
                continue
            a, b = column(trees_a, name), column(trees_b, name)
            if StatusChange.summary(a) == StatusChange.summary(b):
                continue
            if not leaves and any(c.test.startswith(name + ".") for c in changes):
                continue
            changes.append(StatusChange(name, a, b))
    return changes


_NUMBERS_RE = re.compile(r"\b(?:0x)?[0-9a-f]{6,}\b|\b\d+\b", re.IGNORECASE)


def crash_key(crash: CrashReport) -> tuple[str, str, str]:
    """Identity of a crash across boots: addresses and numbers masked."""
    return crash.kind, _NUMBERS_RE.sub("?", crash.title), crash.test or ""


def crash_changes(
    runs_a: list[ArchRun], runs_b: list[ArchRun]
) -> tuple[list[CrashReport], list[CrashReport]]:
    """(crashes only the patched side has, crashes only the baseline has)."""

    def unique(runs: list[ArchRun]) -> dict[tuple[str, str, str], CrashReport]:
        found: dict[tuple[str, str, str], CrashReport] = {}
        for run in runs:
            for crash in run.crashes:
                found.setdefault(crash_key(crash), crash)
        return found

    a, b = unique(runs_a), unique(runs_b)
    return [c for k, c in b.items() if k not in a], [c for k, c in a.items() if k not in b]


# ---------------------------------------------------------------- comparability


@dataclass
class LoadedRun:
    run: ArchRun
    meta: RunMeta
    directory: Path

    @property
    def patched(self) -> bool:
        return self.run.patched


def facts(loaded: LoadedRun) -> dict[str, str | None]:
    """What must be equal between the sides (the kernel and its build aside)."""
    run, boot = loaded.run, loaded.run.boot
    host = loaded.meta.host
    return {
        "accelerator": run.accelerator,
        "config": run.build.config_digest if run.build is not None else None,
        "spec": loaded.meta.spec_name,
        "memory": boot.memory if boot is not None else None,
        "smp": str(boot.smp) if boot is not None and boot.smp is not None else None,
        "numa_nodes": (
            str(boot.numa_nodes) if boot is not None and boot.numa_nodes is not None else None
        ),
        "cmdline": boot.cmdline if boot is not None else None,
        "host": f"{host.hostname} ({host.cpus} cpus)" if host is not None else None,
    }


# host differs: timings are not comparable, counts are; a warning, not a refusal.
WARN_ONLY = frozenset({"host"})


class Severity(enum.StrEnum):
    """What a difference between the sides (other than the kernel) means for the comparison."""

    REFUSE = "refuse"  # not comparable unless --force
    WARN = "warn"  # comparable, with a warning (e.g. another host: counts hold, times do not)
    NOTE = "note"  # expected (e.g. series-only config fragments)


@dataclass
class Difference:
    arch: str
    field: str
    a: list[str]
    b: list[str]
    severity: Severity
    why: str = ""

    def text(self) -> str:
        why = f" ({self.why})" if self.why else ""
        return (
            f"{self.arch}: {self.field} differs: baseline {', '.join(self.a) or '?'}"
            f" vs patched {', '.join(self.b) or '?'}{why}"
        )


def _distinct(values: Iterable[str | None]) -> list[str]:
    return sorted({v for v in values if v is not None})


def check_comparable(arch: str, a: list[LoadedRun], b: list[LoadedRun]) -> list[Difference]:
    fa, fb = [facts(r) for r in a], [facts(r) for r in b]
    series_differs = {r.patched for r in a} != {r.patched for r in b}
    mismatches = []
    for name in fa[0] if fa else ():
        va, vb = _distinct(f[name] for f in fa), _distinct(f[name] for f in fb)
        if va == vb and len(va) <= 1:
            continue
        if not va or not vb:  # not recorded on one side (older results): cannot check
            continue
        severity, why = (Severity.WARN if name in WARN_ONLY else Severity.REFUSE), ""
        if len(va) > 1 or len(vb) > 1:
            why = "the repetitions of one side differ"
        elif (
            name == "config" and series_differs and len(_distinct(f["spec"] for f in fa + fb)) == 1
        ):
            # The same run definition adds series_fragments (the series' own KUnit
            # symbols) to patched builds only, so their config hash must differ.
            severity, why = Severity.NOTE, "expected: series_fragments apply to patched builds only"
        mismatches.append(Difference(arch, name, va, vb, severity, why))
    return mismatches


# ------------------------------------------------------------------- comparison


@dataclass
class Side:
    name: str  # "baseline" / "patched"
    runs: list[LoadedRun]
    directories: list[Path]

    @property
    def kernels(self) -> list[str]:
        return list(dict.fromkeys(r.run.kernel for r in self.runs))

    def for_arch(self, arch: str) -> list[LoadedRun]:
        return [r for r in self.runs if r.run.arch == arch]


@dataclass
class ArchComparison:
    arch: str
    a: list[LoadedRun]
    b: list[LoadedRun]
    metrics: list[MetricDelta]
    tests: list[StatusChange]
    new_crashes: list[CrashReport]
    gone_crashes: list[CrashReport]
    mismatches: list[Difference]

    @property
    def status_a(self) -> list[str]:
        return [str(r.run.status) for r in self.a]

    @property
    def status_b(self) -> list[str]:
        return [str(r.run.status) for r in self.b]

    @property
    def accelerators(self) -> list[str]:
        return _distinct(r.run.accelerator for r in self.a + self.b)

    @property
    def run_regression(self) -> bool:
        # An infrastructure error says nothing about the kernel: not a regression.
        rank = {str(s): i for i, s in enumerate(SEVERITY)}
        ignore = {str(RunStatus.INFRA_ERROR), str(RunStatus.NO_TESTS)}
        worst_a = max((rank[s] for s in self.status_a), default=0)
        worst_b = max((rank[s] for s in self.status_b if s not in ignore), default=0)
        return worst_b > worst_a

    def regressions(self) -> list[str]:
        out = []
        if self.run_regression:
            out.append(
                f"{self.arch}: run status {StatusChange.summary(self.status_a)}"
                f" -> {StatusChange.summary(self.status_b)}"
            )
        out += [
            f"{self.arch}: {c.test}: {StatusChange.summary(c.a)} -> {StatusChange.summary(c.b)}"
            for c in self.tests
            if c.regression
        ]
        out += [f"{self.arch}: new {c.kind}: {c.title}" for c in self.new_crashes]
        out += [
            f"{self.arch}: {m.name} {m.key} worse ({_change_text(m)}, "
            f"threshold {threshold_text(m.spec)})"
            for m in self.metrics
            if m.regression and not self.emulated_time(m)
        ]
        return out

    def intended(self) -> list[MetricDelta]:
        """Worsenings beyond threshold that a declared trade-off covers."""
        return [m for m in self.metrics if m.verdict == "intended" and not self.emulated_time(m)]

    def improvements(self) -> list[MetricDelta]:
        return [m for m in self.metrics if m.verdict == "better" and not self.emulated_time(m)]

    def within_threshold(self) -> list[MetricDelta]:
        return [m for m in self.metrics if m.verdict == "within threshold"]

    def emulated_time(self, m: MetricDelta) -> bool:
        """A host-speed-dependent metric measured under TCG: shown, never a regression."""
        return "tcg" in self.accelerators and m.kind in (Kind.TIME, Kind.THROUGHPUT)

    def uncounted(self) -> list[str]:
        """Significant worsenings left out of regressions() because TCG ran them."""
        return [
            f"{self.arch}: {m.name} {m.key} worse under TCG ({_pct(m.pct_change)}), not counted"
            for m in self.metrics
            if m.regression and self.emulated_time(m)
        ]


def points_change(m: MetricDelta) -> str | None:
    """A fraction's change in percentage points (its threshold is absolute); None
    for other units or a missing side."""
    if m.spec.unit == "fraction" and m.a is not None and m.b is not None:
        return f"{100 * (m.b.mean - m.a.mean):+.1f} pts"
    return None


def _change_text(m: MetricDelta) -> str:
    """The change as its threshold measures it: points for a fraction, else relative."""
    return points_change(m) or _pct(m.pct_change)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


@dataclass
class Comparison:
    baseline: Side
    patched: Side
    arches: list[ArchComparison]
    only_baseline: list[str] = field(default_factory=list)  # arches missing on one side
    only_patched: list[str] = field(default_factory=list)
    forced: bool = False
    command_line: list[str] = field(default_factory=list)
    tradeoffs: list[Tradeoff] = field(default_factory=list)  # declared by the series
    declared: list[DeclaredMetric] = field(default_factory=list)  # regex-read modules' metrics

    @property
    def mismatches(self) -> list[Difference]:
        return [m for a in self.arches for m in a.mismatches]

    @property
    def merge_warnings(self) -> list[str]:
        """What `kbulk merge --force` let through in the merged directories compared."""
        seen: list[str] = []
        for side in (self.baseline, self.patched):
            for loaded in side.runs:
                merged = loaded.meta.merged
                for warning in merged.warnings if merged is not None else []:
                    if warning not in seen:
                        seen.append(warning)
        return seen

    @property
    def refused(self) -> list[Difference]:
        return [m for m in self.mismatches if m.severity is Severity.REFUSE]

    def regressions(self) -> list[str]:
        return [r for a in self.arches for r in a.regressions()]

    def uncounted(self) -> list[str]:
        return [r for a in self.arches for r in a.uncounted()]

    def intended(self) -> list[MetricDelta]:
        return [m for a in self.arches for m in a.intended()]

    def improvements(self) -> list[MetricDelta]:
        return [m for a in self.arches for m in a.improvements()]

    def within_threshold(self) -> list[MetricDelta]:
        return [m for a in self.arches for m in a.within_threshold()]

    def verdict(self) -> str:
        """The one line: regressions beyond threshold, intended changes (declared
        trade-offs), improvements and changes within threshold, counted apart."""
        regressions = len(self.regressions())
        head = (
            f"REGRESSION: {regressions} regression(s) beyond threshold"
            if regressions
            else "no regression beyond threshold"
        )
        return (
            f"{head}; {len(self.intended())} intended change(s), as declared; "
            f"{len(self.improvements())} improvement(s); "
            f"{len(self.within_threshold())} significant change(s) within threshold"
        )

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions() else 0


def declared_tradeoffs(side: Side) -> list[Tradeoff]:
    """The trade-offs an A/B run recorded in its meta (from the run definition and the
    series' tradeoffs.yaml), each once."""
    found: dict[tuple[str, str, str | None], Tradeoff] = {}
    for loaded in side.runs:
        for t in loaded.meta.tradeoffs or []:
            found.setdefault((t.metric, t.direction, t.arch), t)
    return list(found.values())


def declared_metrics(*sides: Side) -> list[DeclaredMetric]:
    """How the run definitions said to judge their regex-read modules' metrics (the
    patched side's first), each (module, metric) once."""
    found: dict[tuple[str, str], DeclaredMetric] = {}
    for side in sides:
        for loaded in side.runs:
            for d in loaded.meta.module_metrics or []:
                found.setdefault((d.module, d.metric), d)
    return list(found.values())


def compare(
    baseline: Side,
    patched: Side,
    *,
    force: bool = False,
    command_line: Sequence[str] = (),
    tradeoffs: Sequence[Tradeoff] | None = None,
) -> Comparison:
    """Compare per architecture; raise :class:`Refused` on a mismatch unless ``force``.

    ``tradeoffs``: the series' intended trade-offs; None reads those the runs recorded.
    """
    arches_a = list(dict.fromkeys(r.run.arch for r in baseline.runs))
    arches_b = list(dict.fromkeys(r.run.arch for r in patched.runs))
    result = Comparison(
        baseline,
        patched,
        [],
        only_baseline=[a for a in arches_a if a not in arches_b],
        only_patched=[a for a in arches_b if a not in arches_a],
        forced=force,
        command_line=list(command_line),
        tradeoffs=list(declared_tradeoffs(patched) if tradeoffs is None else tradeoffs),
        declared=declared_metrics(patched, baseline),
    )
    for arch in [a for a in arches_a if a in arches_b]:
        a, b = baseline.for_arch(arch), patched.for_arch(arch)
        runs_a, runs_b = [r.run for r in a], [r.run for r in b]
        new, gone = crash_changes(runs_a, runs_b)
        result.arches.append(
            ArchComparison(
                arch,
                a,
                b,
                compare_metrics(arch, runs_a, runs_b, result.declared),
                compare_tests(runs_a, runs_b),
                new,
                gone,
                check_comparable(arch, a, b),
            )
        )
        apply_tradeoffs(arch, result.arches[-1].metrics, result.tradeoffs)
    if result.refused and not force:
        raise Refused(result.refused)
    if not result.arches and not force:  # nothing in common: not "no regression"
        disjoint = Difference("all", "architectures", arches_a, arches_b, Severity.REFUSE,
                              "no architecture in common, nothing to compare")  # fmt: skip
        raise Refused([disjoint])
    return result


# ----------------------------------------------------------------------- inputs


def load_runs(directory: str | Path) -> list[LoadedRun]:
    """All runs of a result directory (OSError/ValueError if it is not one)."""
    result_dir = ResultDir.open(directory)
    return [LoadedRun(run, result_dir.meta, result_dir.path) for run in result_dir.runs]


def split_ab(
    runs: list[LoadedRun], baseline_label: str | None = None, patched_label: str | None = None
) -> tuple[list[LoadedRun], list[LoadedRun]]:
    """Split one A/B directory: by the given kernel labels, else by the runs' A/B slot
    (or, outside A/B runs, by whether a series was applied)."""
    if baseline_label and patched_label:
        return (
            [r for r in runs if r.run.kernel == baseline_label],
            [r for r in runs if r.run.kernel == patched_label],
        )
    if baseline_label:
        return [r for r in runs if r.run.kernel == baseline_label], [
            r for r in runs if r.run.kernel != baseline_label
        ]
    if patched_label:
        return [r for r in runs if r.run.kernel != patched_label], [
            r for r in runs if r.run.kernel == patched_label
        ]
    return [r for r in runs if not r.patched], [r for r in runs if r.patched]


def _only(runs: list[LoadedRun], label: str | None) -> list[LoadedRun]:
    return [r for r in runs if r.run.kernel == label] if label else runs


def sides_from_dirs(
    baseline_dirs: Sequence[Path],
    patched_dirs: Sequence[Path],
    *,
    baseline_label: str | None = None,
    patched_label: str | None = None,
) -> tuple[Side, Side]:
    """Sides from directories; no patched directories means one A/B set to split.

    Raises ValueError when a side ends up empty (wrong labels, empty results).
    """
    runs_a = [r for d in baseline_dirs for r in load_runs(d)]
    if patched_dirs:
        runs_b = [r for d in patched_dirs for r in load_runs(d)]
        runs_a, runs_b = _only(runs_a, baseline_label), _only(runs_b, patched_label)
        dirs_b = list(patched_dirs)
    else:
        runs_a, runs_b = split_ab(runs_a, baseline_label, patched_label)
        dirs_b = list(baseline_dirs)
    for name, runs in (("baseline", runs_a), ("patched", runs_b)):
        if not runs:
            raise ValueError(
                f"no {name} runs found (kernels present: "
                f"{', '.join(sorted({r.run.kernel for r in runs_a + runs_b})) or 'none'})"
            )
    return Side("baseline", runs_a, list(baseline_dirs)), Side("patched", runs_b, dirs_b)


def describe(delta: MetricDelta) -> dict[str, Any]:
    """JSON form of one metric delta (compare.json)."""

    def side(s: Stats | None) -> dict[str, Any] | None:
        if s is None:
            return None
        return {
            "n": s.n,
            "mean": s.mean,
            "stddev": s.stddev,
            "pct_stddev": s.pct_stddev,
            "min": s.lo,
            "max": s.hi,
            "values": s.values,
        }

    return {
        "arch": delta.arch,
        "group": delta.group,
        "case": delta.case,
        "key": delta.key,
        "direction": str(delta.direction),
        "kind": str(delta.kind),
        "unit": delta.spec.unit,
        "threshold": delta.spec.threshold,
        "baseline": side(delta.a),
        "patched": side(delta.b),
        "pct_change": delta.pct_change,
        "ratio": delta.ratio,
        "ranges_overlap": delta.overlap,
        "welch_p": delta.p_value,
        "mann_whitney_p": delta.rank_p,
        "bimodal": delta.bimodal,
        "distribution": _distributions(delta),
        "interval_95": _interval(delta.interval),
        "significant": delta.significant,
        "beyond_threshold": delta.beyond_threshold,
        "intended": delta.intended.to_json() if delta.intended else None,
        "verdict": delta.verdict,
    }


def _interval(i: Interval | None) -> dict[str, float] | None:
    return None if i is None else {"estimate": i.estimate, "lo": i.lo, "hi": i.hi}


def _distributions(delta: MetricDelta) -> dict[str, dict[str, int]] | None:
    d = delta.distributions()
    if d is None:
        return None
    return {
        name: {"near_0": x.low, "between": x.middle, "near_1": x.high}
        for name, x in zip(("baseline", "patched"), d, strict=True)
    }
