"""The comparison report as one ordered model (sections of paragraphs, lists, tables,
figures, code), built once from a Comparison and rendered twice: report.md by
:mod:`harness.report.markdown`, report.html by :mod:`harness.report.html`.

Both renderers show every section in this order. Two kinds of block are for
the HTML page only and are left out of the Markdown, which is meant to be
pasted into a mail: figures (inline SVG) and the full metric tables (every row;
the Markdown keeps the rows that changed, and compare.json has all of them).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.report.compare import (
    ArchComparison,
    Comparison,
    LoadedRun,
    MetricDelta,
    StatusChange,
    points_change,
)
from harness.report.headlines import rows as headline_rows
from harness.report.metrics import (
    HEADLINE_TIME_KEYS,
    METRICS,
    Direction,
    Kind,
    format_value,
    threshold_text,
)
from harness.report.stats import ALPHA, Stats, bimodal, distribution
from harness.report.svg import svg_batch, svg_fill, svg_latency

__all__ = [
    "Block",
    "Bullets",
    "Code",
    "Document",
    "Figure",
    "FullTable",
    "Para",
    "Section",
    "Table",
    "Warning",
    "build_document",
]

TCG_NOTE = (
    "TCG (emulation): times are not real-hardware figures; read them only as "
    "patched/baseline ratios and trust the counts."
)
ICOUNT_NOTE = (
    "TCG with -icount: guest time advances per executed instruction, so times are "
    "instruction counts (shift 0: 1 ns per instruction), deterministic and independent "
    "of the host, but instructions are not cycles (no cache misses, no branch mispredictions)."
)
SIGNIFICANCE_NOTE = (
    "A change is significant when the sample ranges do not overlap (n >= 2 a side) and, "
    f"with n >= 3 a side, Welch's t-test also gives p < {ALPHA}; a bimodal fraction "
    f"(boots near 0 and near 100%) is significant when the Mann-Whitney rank test gives "
    f"p < {ALPHA}. A significant change counts only beyond its metric's practical-"
    "significance threshold (column 'threshold'; fractions in percentage points): "
    "inside it, it is 'within threshold', never a regression."
)
METRIC_HEADERS = ("case", "metric", "baseline", "patched", "%change", "ratio", "direction",
                  "verdict", "threshold")  # fmt: skip
MISMATCH_HEADERS = ("arch", "what", "baseline", "patched", "severity", "why")


# ------------------------------------------------------------------------ model


@dataclass
class Para:
    text: str
    strong: bool = False


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Warning:
    """A boxed warning with a list (a forced comparison)."""

    title: str
    items: list[str]


@dataclass
class Table:
    headers: Sequence[str]
    rows: list[list[str]]
    right: tuple[int, ...] = ()  # right-aligned (numeric) columns
    classes: list[str] = field(default_factory=list)  # per row: "better", "worse", ...


@dataclass
class FullTable(Table):
    """Every row of a metric kind: HTML only (the Markdown shows the changed rows)."""


@dataclass
class Figure:
    """An inline SVG plot: HTML only."""

    svg: str


@dataclass
class Code:
    lines: list[str]


Block = Para | Bullets | Warning | Table | Figure | Code


@dataclass
class Section:
    title: str
    level: int  # 2: a top-level section, 3: within an architecture
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    intro: list[Block]
    sections: list[Section]


# ------------------------------------------------------------------- formatting


def _cell(s: Stats | None, key: str) -> str:
    if s is None:
        return "-"
    if METRICS.lookup(key).unit == "fraction" and bimodal(s.values):
        # a mean +- stddev of boots near 0 and near 1 would span most of 0-100 %
        d = distribution(s.values)
        return (
            f"{format_value(s.mean, key)} ({d.low} near 0%, {d.high} near 100%, {d.middle} between)"
        )
    if s.n < 2 or s.pct_stddev is None:
        return format_value(s.mean, key)
    return f"{format_value(s.mean, key)} ±{s.pct_stddev:.0f}%"


def _pct(value: float | None) -> str:
    return "new" if value is None else f"{value:+.1f}%"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _verdict(m: MetricDelta) -> str:
    text = m.verdict.upper() if m.verdict == "worse" else m.verdict
    p = m.rank_p if m.bimodal else m.p_value
    if p is None or not m.significant:
        return text
    return f"{text} p<0.001" if p < 0.001 else f"{text} p={p:.3f}"


def _status(statuses: Sequence[str]) -> str:
    return StatusChange.summary(statuses) if statuses else "-"


def _title(cmp: Comparison) -> str:
    a, b = " ".join(cmp.baseline.kernels), " ".join(cmp.patched.kernels)
    return f"kbulk compare: {a} -> {b}"


def _accel_lines(cmp: Comparison) -> list[str]:
    lines = []
    for arch in cmp.arches:
        accel = ", ".join(arch.accelerators) or "unknown"
        reason = next(
            (
                r.run.boot.accel_reason
                for r in arch.a + arch.b
                if r.run.boot and r.run.boot.accel_reason
            ),
            None,
        )
        lines.append(f"{arch.arch}: {accel}" + (f" ({reason})" if reason else ""))
    return lines


def _uses_tcg(cmp: Comparison) -> bool:
    return any("tcg" in a.accelerators for a in cmp.arches)


def _uses_icount(cmp: Comparison) -> bool:
    return any("tcg-icount" in a.accelerators for a in cmp.arches)


def _metric_row(m: MetricDelta, as_ratio: bool) -> list[str]:
    change = _ratio(m.ratio) if as_ratio else _pct(m.pct_change)
    return [m.name, m.key, _cell(m.a, m.key), _cell(m.b, m.key), change, _verdict(m),
            threshold_text(m.spec)]  # fmt: skip


def _row_class(m: MetricDelta) -> str:
    return m.verdict if m.verdict in ("better", "worse", "intended") else ""


def _figure(m: MetricDelta) -> str:
    """baseline -> patched (change, 95 % interval of the difference), as the lists write it."""
    if m.a is None or m.b is None:
        return "-"
    a, b = format_value(m.a.mean, m.key), format_value(m.b.mean, m.key)
    fraction = m.spec.unit == "fraction"
    points = points_change(m)
    if points is not None:
        change = points
    else:
        change = _ratio(m.ratio) if m.kind is Kind.TIME else _pct(m.pct_change)
    interval = m.interval
    ci = ""
    if interval is not None and interval.width > 0:
        lo, hi = (100 * interval.lo, 100 * interval.hi) if fraction else (interval.lo, interval.hi)
        unit = " pts" if fraction else ""
        ci = f", 95% CI of the difference {lo:+.3g}..{hi:+.3g}{unit}"
    return f"{a} -> {b} ({change}{ci}; threshold {threshold_text(m.spec)})"


# --------------------------------------------------------------------- sections


def _metric_section(
    title: str, metrics: list[MetricDelta], shown: Callable[[MetricDelta], bool], as_ratio: bool
) -> list[Section]:
    if not metrics:
        return []
    keep = [m for m in metrics if shown(m)]
    section = Section(title, 3)
    if keep:
        headers = ["case", "metric", "baseline", "patched", "ratio" if as_ratio else "%change",
                   "verdict", "threshold"]  # fmt: skip
        rows = [_metric_row(m, as_ratio) for m in keep]
        section.blocks.append(Table(headers, rows, (2, 3, 4), [_row_class(m) for m in keep]))
    if hidden := len(metrics) - len(keep):
        section.blocks.append(
            Para(f"{hidden} of {len(metrics)} rows unchanged or not significant: not shown.")
        )
    return [section]


def _full_tables(arch: ArchComparison) -> list[Section]:
    out = []
    for kind in Kind:
        rows_m = [m for m in arch.metrics if m.kind is kind]
        if not rows_m:
            continue
        rows = [
            [m.name, m.key, _cell(m.a, m.key), _cell(m.b, m.key), _pct(m.pct_change),
             _ratio(m.ratio), str(m.direction), _verdict(m), threshold_text(m.spec)]
            for m in rows_m
        ]  # fmt: skip
        note = " (times: read the ratio)" if kind is Kind.TIME else ""
        table = FullTable(METRIC_HEADERS, rows, (2, 3, 4, 5), [_row_class(m) for m in rows_m])
        out.append(Section(f"All metrics: {kind}{note}", 3, [table]))
    return out


def _arch_sections(arch: ArchComparison, tcg: bool) -> list[Section]:
    head = Section(arch.arch, 2, [Para(
        f"runs: baseline {_status(arch.status_a)} ({len(arch.a)}), "
        f"patched {_status(arch.status_b)} ({len(arch.b)}); "
        f"accelerator {', '.join(arch.accelerators) or 'unknown'}"
    )])  # fmt: skip
    tests = Section("Test status changes", 3)
    if arch.tests:
        rows = [
            [c.test, _status(c.a), _status(c.b), "REGRESSION" if c.regression else ""]
            for c in arch.tests
        ]
        classes = ["regression" if c.regression else "" for c in arch.tests]
        tests.blocks.append(Table(["test", "baseline", "patched", "verdict"], rows, (), classes))
    else:
        tests.blocks.append(Para("none"))
    out = [head, tests]
    for title, crashes in (("New crashes", arch.new_crashes), ("Gone crashes", arch.gone_crashes)):
        if crashes:
            rows = [[str(c.kind), c.test or "?", c.title] for c in crashes]
            out.append(Section(title, 3, [Table(["kind", "test", "title"], rows)]))
    both = [m for m in arch.metrics if m.a is not None and m.b is not None]
    plots = [p for p in (svg_fill(both), svg_latency(both), svg_batch(both)) if p]
    if plots:
        head.blocks += [Figure(p) for p in plots]
    out += _bimodal_section(both)
    by_kind: dict[Kind, list[MetricDelta]] = {}
    for m in both:
        by_kind.setdefault(m.kind, []).append(m)
    out += _metric_section(
        "Host-independent counts (fill rate, partial/failed per request, stalls per 1000 requests)",
        by_kind.get(Kind.COUNT, []),
        lambda m: m.changed,
        as_ratio=False,
    )
    time_title = "Times as patched/baseline ratios (below 1.00x: patched is faster)"
    out += _metric_section(
        time_title + (" - TCG, not hardware figures" if tcg else ""),
        by_kind.get(Kind.TIME, []),
        lambda m: m.key in HEADLINE_TIME_KEYS or m.significant or m.declared is not None,
        as_ratio=True,
    )
    out += _metric_section(
        "Throughput in a fixed duration (depends on host speed)",
        by_kind.get(Kind.THROUGHPUT, []),
        lambda m: m.significant or m.declared is not None,
        as_ratio=True,
    )
    return out + _full_tables(arch)


def _bimodal_section(metrics: list[MetricDelta]) -> list[Section]:
    """Fractions whose boots land near 0 and near 100 %: their per-boot distribution,
    the rank test and a bootstrap interval instead of a mean +- stddev."""
    rows, classes = [], []
    for m in metrics:
        dists = m.distributions()
        if not m.bimodal or dists is None:
            continue
        interval = m.interval
        ci = "-"
        if interval is not None:
            lo, hi = 100 * interval.lo, 100 * interval.hi
            ci = f"{100 * interval.estimate:+.1f} pts [{lo:+.1f}, {hi:+.1f}]"
        p = "-" if m.rank_p is None else f"{m.rank_p:.3f}"
        rows.append([m.name, m.key, dists[0].text(), dists[1].text(), ci, p, _verdict(m)])
        classes.append(_row_class(m))
    if not rows:
        return []
    headers = ["case", "metric", "baseline boots", "patched boots",
               "patched - baseline, 95% bootstrap CI", "Mann-Whitney p", "verdict"]  # fmt: skip
    return [Section("Bimodal fractions: per-boot distribution", 3, [
        Para("The boots of these cases land near 0 and near 100%, so a mean ± stddev "
             "spans most of the range; the rank test and the bootstrap interval judge them."),
        Table(headers, rows, (), classes),
    ])]  # fmt: skip


def _intended_section(cmp: Comparison) -> list[Section]:
    """Every declared trade-off, with the figures it covers (or that nothing matched)."""
    if not cmp.tradeoffs:
        return []
    items = []
    for t in cmp.tradeoffs:
        where = f" ({t.arch})" if t.arch else ""
        head = f"{t.metric}{where} {t.direction}: {t.reason} [declared at {t.source or '?'}]"
        matched = [m for a in cmp.arches for m in a.metrics if m.intended is t]
        if not matched:
            items.append(f"{head} - no row moved that way")
            continue
        for m in matched:
            items.append(f"{head} - {m.arch}: {m.name} {m.key} {_figure(m)}: {m.verdict}")
    return [Section("Intended, as declared", 2, [
        Para("Trade-offs the series declares (run definition or the series' tradeoffs.yaml); "
             "a worsening listed here is not counted as a regression."),
        Bullets(items),
    ])]  # fmt: skip


def _threshold_section(cmp: Comparison) -> Section:
    rows = [
        [s.name, s.unit, str(s.better), str(s.kind), threshold_text(s)]
        for s in METRICS.specs
        if s.name != "*" and s.kind is not Kind.INFO
    ]
    blocks: list[Block] = [
        Para("A significant change smaller than its metric's threshold is 'within threshold'. "
             "Fractions (fill/partial/failed rates) use percentage points; others relative "
             "change. First matching pattern wins."),
        Table(["metric pattern", "unit", "direction", "kind", "threshold"], rows),
    ]  # fmt: skip
    if cmp.declared:
        own = [[f"{d.module}: {d.metric}", d.unit, str(d.better), str(d.kind),
                threshold_text(d.spec), d.source] for d in cmp.declared]  # fmt: skip
        blocks += [
            Para("Metrics of out-of-tree modules read with regular expressions, as their "
                 "run definition declares them:"),
            Table(["module: metric", "unit", "direction", "kind", "threshold", "declared at"],
                  own),
        ]  # fmt: skip
    return Section("Practical-significance thresholds", 2, blocks)


def _headline_section(cmp: Comparison) -> list[Section]:
    """The series' promises, one row each: mean (range over repetitions)."""
    rows = headline_rows([(a.arch, a.metrics) for a in cmp.arches])
    if not cmp.arches or all(cell == "n/a" for row in rows for cell in row[1:]):
        return []
    headers = ["figure", *(a.arch for a in cmp.arches)]
    return [Section("Headline figures", 2, [Table(headers, rows)])]


def _comparability(cmp: Comparison) -> Section:
    if not cmp.mismatches:
        return Section("Comparability", 2, [Para(
            "baseline and patched runs match in accelerator, config, run definition, "
            "guest memory/CPUs, kernel command line and host."
        )])  # fmt: skip
    rows = [[m.arch, m.field, ", ".join(m.a), ", ".join(m.b), str(m.severity), m.why]
            for m in cmp.mismatches]  # fmt: skip
    return Section("Comparability", 2, [Table(MISMATCH_HEADERS, rows)])


def _run_reproducers(loaded: LoadedRun) -> list[str]:
    out = []
    if command := loaded.meta.command_line:
        out.append(shlex.join(command))
    run = loaded.run
    if run.build is not None and run.build.make_argv:
        out.append(f"{run.arch} build: {run.build.reproducer}")
    if run.boot is not None and run.boot.qemu_argv:
        out.append(f"{run.arch} qemu: {run.boot.reproducer}")
    return out


def _reproduce_lines(cmp: Comparison) -> list[str]:
    lines = ["# this report", shlex.join(cmp.command_line) if cmp.command_line else "-"]
    for side in (cmp.baseline, cmp.patched):
        seen: set[str] = set()
        lines.append(f"# {side.name}: {', '.join(side.kernels)}")
        for loaded in side.runs:
            for text in _run_reproducers(loaded):
                if text not in seen:
                    seen.add(text)
                    lines.append(text)
    return lines


def _images(cmp: Comparison) -> list[list[str]]:
    rows: dict[tuple[str, ...], None] = {}
    for side in (cmp.baseline, cmp.patched):
        for loaded in side.runs:
            build = loaded.run.build
            sha = build.image_sha256 if build is not None else None
            rows[(side.name, loaded.run.arch, loaded.run.kernel, sha or "not built")] = None
    return [list(r) for r in rows]


def _reps_lines(cmp: Comparison) -> list[str]:
    """What `kbulk ab --reps auto` decided, per architecture (from the runs' meta)."""
    lines: dict[str, None] = {}
    for loaded in cmp.baseline.runs + cmp.patched.runs:
        for arch, entry in (loaded.meta.reps_auto or {}).items():
            lines[f"repetitions: --reps auto, {arch}: {entry.text}"] = None
    return list(lines)


def _direction_lines(cmp: Comparison) -> list[str]:
    """LKP-style "which way is better", one line per direction (first match wins);
    the run definition's declarations for regex-read modules come first."""
    own = [f"{d.module}.*.{d.metric}: {d.better} (declared at {d.source or '?'})"
           for d in cmp.declared]  # fmt: skip
    lines = [f"{d}: {', '.join(METRICS.named(d))}" for d in Direction]
    return [*own, *lines, "anything else: neutral (parameters, environment)"]


def build_document(cmp: Comparison) -> Document:
    """The report's content, in the one order both renderers follow."""
    regressions = cmp.regressions()
    verdict = cmp.verdict()
    intro: list[Block] = []
    if cmp.forced and cmp.refused:
        intro.append(Warning(
            "FORCED COMPARISON - the runs differ in more than the kernel:",
            [m.text() for m in cmp.refused],
        ))  # fmt: skip
    if cmp.merge_warnings:
        intro.append(Warning(
            "MERGED WITH --force - these cells are not one run:", cmp.merge_warnings
        ))  # fmt: skip
    intro.append(Para(f"Verdict: {verdict}", strong=True))
    facts = [
        f"{side.name}: {', '.join(side.kernels)}, {len(side.runs)} run(s) from "
        + ", ".join(str(d) for d in side.directories)
        for side in (cmp.baseline, cmp.patched)
    ]
    facts += [f"accelerator: {line}" for line in _accel_lines(cmp)]
    if _uses_tcg(cmp):
        facts.append(TCG_NOTE)
    if _uses_icount(cmp):
        facts.append(ICOUNT_NOTE)
    facts += _reps_lines(cmp)
    facts.append(SIGNIFICANCE_NOTE)
    for name in cmp.only_baseline + cmp.only_patched:
        side_name = "baseline" if name in cmp.only_baseline else "patched"
        facts.append(f"{name}: only the {side_name} side has runs; not compared")
    intro.append(Bullets(facts))
    sections: list[Section] = []
    # Regressions first, every time (an empty list says so).
    sections.append(Section("Regressions beyond threshold", 2,
                            [Bullets(regressions) if regressions else Para("none")]))  # fmt: skip
    sections += _intended_section(cmp)
    if improvements := cmp.improvements():
        sections.append(Section("Improvements beyond threshold", 2, [Bullets(
            [f"{m.arch}: {m.name} {m.key} {_figure(m)}" for m in improvements]
        )]))  # fmt: skip
    if within := cmp.within_threshold():
        sections.append(Section("Significant but within threshold (not counted)", 2, [Bullets(
            [f"{m.arch}: {m.name} {m.key} {_figure(m)}" for m in within]
        )]))  # fmt: skip
    if uncounted := cmp.uncounted():
        sections.append(Section("Slower under TCG (not counted as regressions)", 2,
                                [Bullets(uncounted)]))  # fmt: skip
    sections += _headline_section(cmp)
    tcg = _uses_tcg(cmp)
    for arch in cmp.arches:
        sections += _arch_sections(arch, tcg)
    sections.append(_comparability(cmp))
    images = Table(["side", "arch", "kernel", "sha256"], _images(cmp))
    sections.append(Section("Kernel images", 2, [images]))
    sections.append(Section("Reproduce", 2, [Code(_reproduce_lines(cmp))]))
    sections.append(Section("Metric directions", 2, [Bullets(_direction_lines(cmp))]))
    sections.append(_threshold_section(cmp))
    return Document(_title(cmp), intro, sections)
