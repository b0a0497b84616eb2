"""Inline SVG plots of a comparison (fill rate per GFP mode, latency, ns/page per batch),
drawn in plain Python so the harness needs no plotting library."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.report.compare import MetricDelta
from harness.report.metrics import format_value

__all__ = ["GFP_MODES", "gfp_mode", "svg_batch", "svg_fill", "svg_latency"]

GFP_MODES = ("gfp_kernel_retry_mayfail", "gfp_kernel_noretry", "gfp_nowait", "gfp_kernel")


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
        body.append(_text(left - 4, y(tick) + 4, format_value(tick), "end"))
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
