"""Comparison reports: report.md (mail/CI), report.html (inline SVG plots), compare.json.

The Markdown is meant to be pasted into a mail: aligned tables, host-independent
counts first, times only as patched/baseline ratios, and only the rows that
changed (everything is in compare.json and report.html). Plots are drawn as
SVG in plain Python so the harness needs no plotting library.
"""

from __future__ import annotations

import html
import json
import math
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.fsutil import atomic_write_text
from harness.report.compare import (
    ALPHA,
    ArchComparison,
    Comparison,
    Direction,
    Kind,
    LoadedRun,
    MetricDelta,
    Refused,
    Stats,
    StatusChange,
    compare,
    describe,
    labels,
    sides_from_dirs,
)
from harness.report.headlines import rows as headline_rows
from harness.report.metrics import HEADLINE_TIME_KEYS, METRICS, RATE_KEYS

__all__ = ["render_html", "render_markdown", "run_compare", "to_json", "write_reports"]

EXIT_REFUSED = 8
GFP_MODES = ("gfp_kernel_retry_mayfail", "gfp_kernel_noretry", "gfp_nowait", "gfp_kernel")
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
    f"with n >= 3 a side, Welch's t-test also gives p < {ALPHA}."
)


# ------------------------------------------------------------------ formatting


def _num(value: float | None, key: str = "") -> str:
    if value is None:
        return "-"
    if key in RATE_KEYS:
        return f"{value:.3f}"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def _cell(s: Stats | None, key: str) -> str:
    if s is None:
        return "-"
    if s.n < 2 or s.pct_stddev is None:
        return _num(s.mean, key)
    return f"{_num(s.mean, key)} ±{s.pct_stddev:.0f}%"


def _pct(value: float | None) -> str:
    return "new" if value is None else f"{value:+.1f}%"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _verdict(m: MetricDelta) -> str:
    text = m.verdict.upper() if m.verdict == "worse" else m.verdict
    if m.p_value is None or not m.significant:
        return text
    return f"{text} p<0.001" if m.p_value < 0.001 else f"{text} p={m.p_value:.3f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Iterable[int] = ()) -> str:
    """A Markdown pipe table padded to fixed width, so it also reads as plain text."""
    right = set(right)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        padded = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in pairs]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w + 1) + ":" if i in right else "-" * (w + 2) for i, w in enumerate(widths)]
    return "\n".join([line(headers), "|" + "|".join(rule) + "|", *map(line, rows)])


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


# -------------------------------------------------------------------- markdown


def _metric_rows(
    metrics: Sequence[MetricDelta], as_ratio: bool
) -> tuple[list[list[str]], list[str]]:
    change = "ratio" if as_ratio else "%change"
    headers = ["case", "metric", "baseline", "patched", change, "verdict"]
    rows = [
        [
            m.name,
            m.key,
            _cell(m.a, m.key),
            _cell(m.b, m.key),
            _ratio(m.ratio) if as_ratio else _pct(m.pct_change),
            _verdict(m),
        ]
        for m in metrics
    ]
    return rows, headers


def _metric_section(
    title: str, metrics: list[MetricDelta], shown: Callable[[MetricDelta], bool], as_ratio: bool
) -> list[str]:
    if not metrics:
        return []
    keep = [m for m in metrics if shown(m)]
    out = [f"### {title}", ""]
    if keep:
        rows, headers = _metric_rows(keep, as_ratio)
        out += [_table(headers, rows, right=(2, 3, 4)), ""]
    hidden = len(metrics) - len(keep)
    if hidden:
        out += [f"{hidden} of {len(metrics)} rows unchanged or not significant: not shown.", ""]
    return out


def _arch_markdown(arch: ArchComparison, tcg: bool) -> list[str]:
    out = [f"## {arch.arch}", ""]
    out += [
        f"runs: baseline {_status(arch.status_a)} ({len(arch.a)}), "
        f"patched {_status(arch.status_b)} ({len(arch.b)}); "
        f"accelerator {', '.join(arch.accelerators) or 'unknown'}",
        "",
    ]
    out += ["### Test status changes", ""]
    if arch.tests:
        rows = [
            [c.test, _status(c.a), _status(c.b), "REGRESSION" if c.regression else ""]
            for c in arch.tests
        ]
        out += [_table(["test", "baseline", "patched", "verdict"], rows), ""]
    else:
        out += ["none", ""]
    for title, crashes in (("New crashes", arch.new_crashes), ("Gone crashes", arch.gone_crashes)):
        if crashes:
            out += [f"### {title}", ""]
            out += [f"- {c.kind} in {c.test or '?'}: {c.title}" for c in crashes]
            out += [""]
    by_kind: dict[Kind, list[MetricDelta]] = {}
    for m in arch.metrics:
        if m.a is not None and m.b is not None:
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
        lambda m: m.key in HEADLINE_TIME_KEYS or m.significant,
        as_ratio=True,
    )
    out += _metric_section(
        "Throughput in a fixed duration (depends on host speed)",
        by_kind.get(Kind.THROUGHPUT, []),
        lambda m: m.significant,
        as_ratio=True,
    )
    return out


def _headline_markdown(cmp: Comparison) -> list[str]:
    """The series' promises, one row each: mean (range over repetitions)."""
    table = _headline_table(cmp)
    if table is None:
        return []
    headers, rows = table
    return ["## Headline figures", "", _table(headers, rows), ""]


def _headline_table(cmp: Comparison) -> tuple[list[str], list[list[str]]] | None:
    """Headers and rows of the headline figures; None when the run has none of them."""
    rows = headline_rows([(a.arch, a.metrics) for a in cmp.arches])
    if not cmp.arches or all(cell == "n/a" for row in rows for cell in row[1:]):
        return None
    return ["figure", *(a.arch for a in cmp.arches)], rows


def _comparability_markdown(cmp: Comparison) -> list[str]:
    out = ["## Comparability", ""]
    if not cmp.mismatches:
        return [
            *out,
            "baseline and patched runs match in accelerator, config, run definition, "
            "guest memory/CPUs, kernel command line and host.",
            "",
        ]
    return [*out, _table(MISMATCH_HEADERS, _mismatch_rows(cmp)), ""]


METRIC_HEADERS = (
    "case",
    "metric",
    "baseline",
    "patched",
    "%change",
    "ratio",
    "direction",
    "verdict",
)
MISMATCH_HEADERS = ("arch", "what", "baseline", "patched", "severity", "why")


def _mismatch_rows(cmp: Comparison) -> list[list[str]]:
    return [
        [m.arch, m.field, ", ".join(m.a), ", ".join(m.b), m.severity, m.why] for m in cmp.mismatches
    ]


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


def _run_reproducers(loaded: LoadedRun) -> list[str]:
    out = []
    command = loaded.meta.get("command_line")
    if isinstance(command, list) and command:
        out.append(shlex.join(str(c) for c in command))
    run = loaded.run
    if run.build is not None and run.build.make_argv:
        out.append(f"{run.arch} build: {run.build.reproducer}")
    if run.boot is not None and run.boot.qemu_argv:
        out.append(f"{run.arch} qemu: {run.boot.reproducer}")
    return out


def _images(cmp: Comparison) -> list[list[str]]:
    rows: dict[tuple[str, ...], None] = {}
    for side in (cmp.baseline, cmp.patched):
        for loaded in side.runs:
            build = loaded.run.build
            sha = build.image_sha256 if build is not None else None
            rows[(side.name, loaded.run.arch, loaded.run.kernel, sha or "not built")] = None
    return [list(r) for r in rows]


def _direction_lines() -> list[str]:
    """LKP-style "which way is better", one line per direction (first match wins)."""
    lines = []
    for direction in Direction:
        keys = METRICS.named(direction)
        lines.append(f"- {direction}: {', '.join(keys)}")
    return [*lines, "- anything else: neutral (parameters, environment)"]


def render_markdown(cmp: Comparison) -> str:
    regressions = cmp.regressions()
    verdict = f"REGRESSION: {len(regressions)} finding(s)" if regressions else "no regression found"
    out = [f"# {_title(cmp)}", "", f"Verdict: {verdict}", ""]
    if cmp.forced and cmp.refused:
        out += ["**WARNING: FORCED COMPARISON - the runs differ in more than the kernel:**", ""]
        out += [f"- {m.text()}" for m in cmp.refused] + [""]
    for side in (cmp.baseline, cmp.patched):
        dirs = ", ".join(str(d) for d in side.directories)
        out.append(f"- {side.name}: {', '.join(side.kernels)}, {len(side.runs)} run(s) from {dirs}")
    out += [f"- accelerator: {line}" for line in _accel_lines(cmp)]
    if _uses_tcg(cmp):
        out.append(f"- {TCG_NOTE}")
    if _uses_icount(cmp):
        out.append(f"- {ICOUNT_NOTE}")
    out += [f"- {SIGNIFICANCE_NOTE}", ""]
    for name in cmp.only_baseline + cmp.only_patched:
        side_name = "baseline" if name in cmp.only_baseline else "patched"
        out += [f"- {name}: only the {side_name} side has runs; not compared", ""]
    if regressions:
        out += ["## Regressions", "", *(f"- {r}" for r in regressions), ""]
    if uncounted := cmp.uncounted():
        out += ["## Slower under TCG (not counted as regressions)", ""]
        out += [*(f"- {r}" for r in uncounted), ""]
    tcg = _uses_tcg(cmp)
    out += _headline_markdown(cmp)
    for arch in cmp.arches:
        out += _arch_markdown(arch, tcg)
    out += _comparability_markdown(cmp)
    out += ["## Kernel images", ""]
    out += [_table(["side", "arch", "kernel", "sha256"], _images(cmp)), ""]
    out += ["## Reproduce", "", "```", *_reproduce_lines(cmp), "```", ""]
    out += ["## Metric directions", "", *_direction_lines(), ""]
    return "\n".join(out)


# ----------------------------------------------------------------------- JSON


def to_json(cmp: Comparison) -> dict[str, Any]:
    def side(s: Any) -> dict[str, Any]:
        return {
            "kernels": s.kernels,
            "directories": [str(d) for d in s.directories],
            "runs": [
                {
                    "arch": r.run.arch,
                    "kernel": r.run.kernel,
                    "status": str(r.run.status),
                    "accelerator": r.run.accelerator,
                    "directory": str(r.directory),
                    "image_sha256": r.run.build.image_sha256 if r.run.build else None,
                    "repetition": r.run.repetition,
                }
                for r in s.runs
            ],
        }

    return {
        "command_line": cmp.command_line,
        "forced": cmp.forced,
        "exit_code": cmp.exit_code,
        "regressions": cmp.regressions(),
        "not_counted_tcg": cmp.uncounted(),
        "baseline": side(cmp.baseline),
        "patched": side(cmp.patched),
        "only_baseline": cmp.only_baseline,
        "only_patched": cmp.only_patched,
        "mismatches": [m.__dict__ for m in cmp.mismatches],
        "arches": [
            {
                "arch": a.arch,
                "accelerators": a.accelerators,
                "status": {"baseline": a.status_a, "patched": a.status_b},
                "run_regression": a.run_regression,
                "tests": [
                    {"test": c.test, "baseline": c.a, "patched": c.b, "regression": c.regression}
                    for c in a.tests
                ],
                "new_crashes": [
                    {"kind": c.kind, "title": c.title, "test": c.test} for c in a.new_crashes
                ],
                "gone_crashes": [
                    {"kind": c.kind, "title": c.title, "test": c.test} for c in a.gone_crashes
                ],
                "metrics": [describe(m) for m in a.metrics],
                "labels": {
                    "baseline": _labels_json(r.run for r in a.a),
                    "patched": _labels_json(r.run for r in a.b),
                },
            }
            for a in cmp.arches
        ],
    }


def _labels_json(runs: Iterable[Any]) -> dict[str, dict[str, list[str]]]:
    return {f"{g}.{c}" if g else c: v for (g, c), v in labels(runs).items() if v}


# ------------------------------------------------------------------------ SVG

BASE_COLOR, PATCH_COLOR = "#1f77b4", "#d62728"
FONT = 'font-family="sans-serif" font-size="11"'


@dataclass
class _Axis:
    """Maps data to pixels, linear or log10."""

    lo: float
    hi: float
    p0: float
    p1: float
    log: bool = False

    def __call__(self, v: float) -> float:
        f = (lambda x: math.log10(max(x, 1e-12))) if self.log else (lambda x: x)
        span = (f(self.hi) - f(self.lo)) or 1.0
        return self.p0 + (f(v) - f(self.lo)) / span * (self.p1 - self.p0)

    def ticks(self) -> list[float]:
        if self.log:
            first, last = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
            return [10.0**e for e in range(first, last + 1)]
        step = _nice_step((self.hi - self.lo) / 5 or 1.0)
        count = int((self.hi - self.lo) / step + 1e-9)
        return [self.lo + i * step for i in range(count + 1)]


def _nice_step(raw: float) -> float:
    mag = 10.0 ** math.floor(math.log10(raw))
    return float(next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw))


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>{html.escape(title)}</title>'
        f'<text x="{width / 2}" y="16" text-anchor="middle" {FONT} font-weight="bold">'
        f"{html.escape(title)}</text>" + "".join(body) + "</svg>"
    )


def _el(tag: str, **attrs: float | str) -> str:
    """An empty SVG element; numbers to 0.1 px, ``stroke_width`` -> ``stroke-width``."""
    parts = " ".join(
        f'{k.replace("_", "-")}="{v:.1f}"'
        if isinstance(v, float)
        else f'{k.replace("_", "-")}="{v}"'
        for k, v in attrs.items()
    )
    return f"<{tag} {parts}/>"


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {FONT} {extra}>'
        f"{html.escape(text)}</text>"
    )


def _legend(x: float, y: float) -> list[str]:
    return [
        f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{BASE_COLOR}"/>',
        _text(x + 14, y, "baseline"),
        f'<rect x="{x + 80}" y="{y - 9}" width="10" height="10" fill="{PATCH_COLOR}"/>',
        _text(x + 94, y, "patched"),
    ]


def _find(metrics: Sequence[MetricDelta], case: str, key: str) -> MetricDelta | None:
    return next((m for m in metrics if m.case == case and m.key == key), None)


def svg_latency(metrics: Sequence[MetricDelta]) -> str | None:
    """Per case: a bar from p50 to max with a p99 tick, baseline above patched (log x)."""
    cases = list(dict.fromkeys(m.case for m in metrics if m.key == "p50_ns"))
    if not cases:
        return None
    values = [
        s.mean
        for m in metrics
        if m.key in ("p50_ns", "p99_ns", "max_ns")
        for s in (m.a, m.b)
        if s is not None and s.mean > 0
    ]
    if not values:
        return None
    left, width, row = 190, 760, 24
    height = 50 + row * len(cases) + 30
    x = _Axis(min(values), max(values), left, width - 20, log=True)
    body = _legend(left, 34)
    for tick in x.ticks():
        if x.lo <= tick <= x.hi * 10:
            px = min(x(tick), width - 20)
            body.append(_el("line", x1=px, y1=44, x2=px, y2=height - 24, stroke="#ddd"))
            body.append(_text(px, height - 10, _ns(tick), "middle"))
    for i, case in enumerate(cases):
        y0 = 50 + i * row
        body.append(_text(left - 6, y0 + 14, case, "end"))
        for j, (side, color) in enumerate((("a", BASE_COLOR), ("b", PATCH_COLOR))):
            pts = {}
            for key in ("p50_ns", "p99_ns", "max_ns"):
                m = _find(metrics, case, key)
                s = getattr(m, side) if m else None
                if s is not None and s.mean > 0:
                    pts[key] = x(s.mean)
            if "p50_ns" not in pts:
                continue
            y = y0 + 7 + j * 9
            end = pts.get("max_ns", pts["p50_ns"])
            p50 = pts["p50_ns"]
            body.append(_el("line", x1=p50, y1=y, x2=end, y2=y, stroke=color, stroke_width=2))
            body.append(_el("circle", cx=p50, cy=y, r=3, fill=color))
            if "p99_ns" in pts:
                p99 = pts["p99_ns"]
                body.append(
                    _el("line", x1=p99, y1=y - 4, x2=p99, y2=y + 4, stroke=color, stroke_width=2)
                )
    title = "Request latency per case: dot p50, tick p99, line end max (log scale)"
    return _svg(width, height, body, title)


def _ns(value: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if value >= scale:
            return f"{value / scale:g} {unit}"
    return f"{value:g} ns"


def svg_batch(metrics: Sequence[MetricDelta]) -> str | None:
    """ns/page of order0_batch<B> against B, one line per side, +-1 stddev whiskers."""
    points: list[tuple[int, MetricDelta]] = []
    for m in metrics:
        if m.key == "ns_per_page" and m.case.startswith("order0_batch"):
            suffix = m.case.removeprefix("order0_batch")
            if suffix.isdigit():
                points.append((int(suffix), m))
    if len(points) < 2:
        return None
    points.sort(key=lambda p: p[0])
    tops = [s.mean + s.stddev for _, m in points for s in (m.a, m.b) if s is not None]
    width, height, left, bottom = 520, 320, 60, 270
    x = _Axis(points[0][0], points[-1][0], left + 10, width - 30, log=True)
    y = _Axis(0, max(tops) * 1.1 or 1.0, bottom, 40)
    body = _legend(left + 10, 34)
    for tick in y.ticks():
        body.append(_el("line", x1=left, y1=y(tick), x2=width - 20, y2=y(tick), stroke="#ddd"))
        body.append(_text(left - 4, y(tick) + 4, _num(tick), "end"))
    for batch, _ in points:
        body.append(_text(x(batch), bottom + 16, str(batch), "middle"))
    xlabel = "batch size (pages per call, log scale)"
    body.append(_text((left + width) / 2, bottom + 34, xlabel, "middle"))
    mid = (bottom + 40) / 2
    body.append(_text(14, mid, "ns/page", "middle", f'transform="rotate(-90 14 {mid})"'))
    for side, color in (("a", BASE_COLOR), ("b", PATCH_COLOR)):
        coords = []
        for batch, m in points:
            s = getattr(m, side)
            if s is None:
                continue
            px, py = x(batch), y(s.mean)
            coords.append(f"{px:.1f},{py:.1f}")
            body.append(_el("circle", cx=px, cy=py, r=3, fill=color))
            if s.stddev:
                lo, hi = y(s.mean - s.stddev), y(s.mean + s.stddev)
                body.append(_el("line", x1=px, y1=lo, x2=px, y2=hi, stroke=color))
        if coords:
            path = " ".join(coords)
            body.append(_el("polyline", points=path, fill="none", stroke=color, stroke_width=2))
    return _svg(width, height, body, "Order-0 bulk allocation: ns per page against batch size")


def gfp_mode(case: str) -> tuple[str, str] | None:
    for mode in GFP_MODES:  # longest names first: gfp_kernel is a prefix of the others
        if case.startswith(mode + "_"):
            return mode, case.removeprefix(mode + "_")
    return None


def svg_fill(metrics: Sequence[MetricDelta]) -> str | None:
    """Fill rate per case, one panel per GFP mode, baseline and patched bars."""
    panels: dict[str, list[MetricDelta]] = {}
    for m in metrics:
        if m.key == "fill_rate" and (mode := gfp_mode(m.case)):
            panels.setdefault(mode[0], []).append(m)
    if not panels:
        return None
    per = max(len(v) for v in panels.values())
    panel_w, bar = max(220, 34 * per + 40), 12
    width, height = panel_w * len(panels) + 20, 300
    body = _legend(20, 34)
    for i, gfp in enumerate(m for m in reversed(GFP_MODES) if m in panels):
        x0, bottom = 10 + i * panel_w + 36, 220
        y = _Axis(0.0, 1.0, bottom, 60)
        body.append(_text(x0 + (panel_w - 40) / 2, 54, gfp, "middle", 'font-weight="bold"'))
        for tick in (0.0, 0.5, 1.0):
            x2 = x0 + panel_w - 46
            body.append(_el("line", x1=x0, y1=y(tick), x2=x2, y2=y(tick), stroke="#ddd"))
            body.append(_text(x0 - 4, y(tick) + 4, f"{tick:g}", "end"))
        for j, m in enumerate(panels[gfp]):
            cx = x0 + 8 + j * 34
            for k, (s, color) in enumerate(((m.a, BASE_COLOR), (m.b, PATCH_COLOR))):
                if s is not None:
                    top = y(max(0.0, min(1.0, s.mean)))
                    body.append(
                        _el(
                            "rect",
                            x=cx + k * bar,
                            y=top,
                            width=bar,
                            height=bottom - top,
                            fill=color,
                        )
                    )
            label = gfp_mode(m.case)[1]  # type: ignore[index]
            rotate = f'transform="rotate(-45 {cx + bar} {bottom + 8})"'
            body.append(_text(cx + bar, bottom + 8, label, "end", rotate))
    return _svg(width, height, body, "Fill rate (requests filled completely) per GFP mode")


# ----------------------------------------------------------------------- HTML

CSS = """
body{font-family:sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}
td.n{text-align:right;font-family:monospace}
.worse,.regression{background:#fdd}.better{background:#dfd}
.warning{border:3px solid #c00;padding:.5em 1em;background:#fee}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:12px}
"""


def _html_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = ()
) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if i < len(classes) and classes[i] else ""
        cells = "".join(f"<td>{html.escape(c)}</td>" for c in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _html_arch(arch: ArchComparison) -> list[str]:
    out = [f"<h2>{html.escape(arch.arch)}</h2>"]
    out.append(
        f"<p>runs: baseline {html.escape(_status(arch.status_a))}, patched "
        f"{html.escape(_status(arch.status_b))}; accelerator "
        f"{html.escape(', '.join(arch.accelerators) or 'unknown')}</p>"
    )
    out.append("<h3>Test status changes</h3>")
    if arch.tests:
        rows = [[c.test, _status(c.a), _status(c.b)] for c in arch.tests]
        cls = ["regression" if c.regression else "" for c in arch.tests]
        out.append(_html_table(["test", "baseline", "patched"], rows, cls))
    else:
        out.append("<p>none</p>")
    for title, crashes in (("New crashes", arch.new_crashes), ("Gone crashes", arch.gone_crashes)):
        if crashes:
            out.append(f"<h3>{title}</h3>")
            rows = [[c.kind, c.test or "?", c.title] for c in crashes]
            out.append(_html_table(["kind", "test", "title"], rows))
    both = [m for m in arch.metrics if m.a is not None and m.b is not None]
    for plot in (svg_fill(both), svg_latency(both), svg_batch(both)):
        if plot:
            out.append(f"<figure>{plot}</figure>")
    for kind in (Kind.COUNT, Kind.TIME, Kind.THROUGHPUT, Kind.RAW, Kind.INFO):
        rows_m = [m for m in arch.metrics if m.kind is kind]
        if not rows_m:
            continue
        as_ratio = kind is not Kind.COUNT
        rows = [
            [
                m.name,
                m.key,
                _cell(m.a, m.key),
                _cell(m.b, m.key),
                _pct(m.pct_change),
                _ratio(m.ratio),
                str(m.direction),
                _verdict(m),
            ]
            for m in rows_m
        ]
        cls = [m.verdict if m.verdict in ("better", "worse") else "" for m in rows_m]
        headers = [*METRIC_HEADERS]
        note = " (times: read the ratio)" if as_ratio and kind is Kind.TIME else ""
        out.append(f"<h3>Metrics: {kind}{note}</h3>")
        out.append(_html_table(headers, rows, cls))
    return out


def render_html(cmp: Comparison, markdown_title: str | None = None) -> str:
    title = markdown_title or _title(cmp)
    regressions = cmp.regressions()
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"/>',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if cmp.forced and cmp.refused:
        items = "".join(f"<li>{html.escape(m.text())}</li>" for m in cmp.refused)
        out.append(
            '<div class="warning"><strong>FORCED COMPARISON: the runs differ in more than '
            f"the kernel.</strong><ul>{items}</ul></div>"
        )
    verdict = f"REGRESSION: {len(regressions)} finding(s)" if regressions else "no regression found"
    out.append(f"<p><strong>Verdict: {html.escape(verdict)}</strong></p><ul>")
    for side in (cmp.baseline, cmp.patched):
        dirs = ", ".join(str(d) for d in side.directories)
        text = f"{side.name}: {', '.join(side.kernels)}, {len(side.runs)} run(s) from {dirs}"
        out.append(f"<li>{html.escape(text)}</li>")
    out += [f"<li>accelerator: {html.escape(line)}</li>" for line in _accel_lines(cmp)]
    if _uses_tcg(cmp):
        out.append(f"<li>{html.escape(TCG_NOTE)}</li>")
    if _uses_icount(cmp):
        out.append(f"<li>{html.escape(ICOUNT_NOTE)}</li>")
    out.append(f"<li>{html.escape(SIGNIFICANCE_NOTE)}</li></ul>")
    if uncounted := cmp.uncounted():
        items = "".join(f"<li>{html.escape(r)}</li>" for r in uncounted)
        out.append(f"<h2>Slower under TCG (not counted as regressions)</h2><ul>{items}</ul>")
    if regressions:
        out.append("<h2>Regressions</h2><ul>")
        out += [f"<li>{html.escape(r)}</li>" for r in regressions]
        out.append("</ul>")
    if (table := _headline_table(cmp)) is not None:
        out.append("<h2>Headline figures</h2>")
        out.append(_html_table(*table))
    for arch in cmp.arches:
        out += _html_arch(arch)
    out.append("<h2>Comparability</h2>")
    if cmp.mismatches:
        out.append(_html_table(MISMATCH_HEADERS, _mismatch_rows(cmp)))
    else:
        out.append("<p>the runs match in everything but the kernel</p>")
    out.append("<h2>Kernel images</h2>")
    out.append(_html_table(["side", "arch", "kernel", "sha256"], _images(cmp)))
    out.append("<h2>Reproduce</h2>")
    out.append(f"<pre>{html.escape(chr(10).join(_reproduce_lines(cmp)))}</pre>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------- entry


def write_reports(cmp: Comparison, out_dir: str | Path) -> list[Path]:
    """Write report.md, report.html and compare.json atomically; return their paths."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "report.md": render_markdown(cmp),
        "report.html": render_html(cmp),
        "compare.json": json.dumps(to_json(cmp), indent=2, allow_nan=False, default=str) + "\n",
    }
    for name, text in files.items():
        atomic_write_text(directory / name, text)
    return [directory / name for name in files]


def run_compare(
    dirs: Sequence[Path],
    *,
    baseline_dirs: Sequence[Path] = (),
    patched_dirs: Sequence[Path] = (),
    baseline_label: str | None = None,
    patched_label: str | None = None,
    out: Path | None = None,
    force: bool = False,
    argv: Sequence[str] = (),
    info: Callable[[str], None] = print,
    error: Callable[[str], None] = print,
) -> int:
    """The compare/report commands: 0 no regression, 1 regression, 2 usage, 8 refused."""
    if len(dirs) > 2 or (len(dirs) == 2 and (baseline_dirs or patched_dirs)):
        error("give one A/B directory, two directories, or --baseline/--patched lists")
        return 2
    base = [*dirs[:1], *baseline_dirs]
    patched = [*dirs[1:], *patched_dirs]
    if not base:
        error("no baseline directory given")
        return 2
    try:
        a, b = sides_from_dirs(
            base, patched, baseline_label=baseline_label, patched_label=patched_label
        )
        cmp = compare(a, b, force=force, command_line=argv)
    except Refused as e:
        error("refusing to compare: the runs differ in more than the kernel (--force to override)")
        for m in e.mismatches:
            error(f"  {m.text()}")
        return EXIT_REFUSED
    except (OSError, ValueError, KeyError) as e:
        error(str(e))
        return 2
    target = out or (patched[0] if patched else base[0])
    for path in write_reports(cmp, target):
        info(f"wrote {path}")
    for line in cmp.regressions():
        info(f"regression: {line}")
    if cmp.forced and cmp.refused:
        info("warning: forced comparison of runs that differ in more than the kernel")
    return cmp.exit_code
