"""The statistics behind a comparison: mean, sample stddev, and Welch's t-test
(two-sided p from the regularised incomplete beta function; no SciPy)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ALPHA", "Stats", "stats", "t_two_sided_p", "welch_p"]

ALPHA = 0.05  # Welch's t-test threshold (two-sided)


@dataclass
class Stats:
    values: list[float]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return math.fsum(self.values) / self.n

    @property
    def stddev(self) -> float:
        """Sample standard deviation (n - 1); 0 for a single sample."""
        if self.n < 2:
            return 0.0
        m = self.mean
        return math.sqrt(math.fsum((v - m) ** 2 for v in self.values) / (self.n - 1))

    @property
    def pct_stddev(self) -> float | None:
        return 100.0 * self.stddev / abs(self.mean) if self.mean else None

    @property
    def lo(self) -> float:
        return min(self.values)

    @property
    def hi(self) -> float:
        return max(self.values)


def stats(values: Iterable[float]) -> Stats:
    return Stats([float(v) for v in values])


def _betacf(a: float, b: float, x: float) -> float:
    # Continued fraction of the incomplete beta function (Numerical Recipes, 6.4).
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(ln_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p-value of Student's t with ``df`` degrees of freedom (exact, no scipy)."""
    if math.isinf(t):
        return 0.0
    return _betainc(df / 2.0, 0.5, df / (df + t * t))


def welch_p(a: Stats, b: Stats) -> float | None:
    """Welch's unequal-variance t-test p-value; None with fewer than 3 samples a side."""
    if a.n < 3 or b.n < 3:
        return None
    va, vb = a.stddev**2 / a.n, b.stddev**2 / b.n
    if va + vb == 0.0:  # both sides constant: identical or certainly different
        return 1.0 if a.mean == b.mean else 0.0
    t = (b.mean - a.mean) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    return t_two_sided_p(t, df)
