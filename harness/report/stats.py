"""The statistics behind a comparison: mean, sample stddev, Welch's t-test
(two-sided p from the regularised incomplete beta function; no SciPy), and for
samples a mean +- stddev describes badly (bimodal per-boot fractions): the
Mann-Whitney U rank test, percentile bootstrap intervals and a per-boot
distribution (how many boots near 0, in between, near 1)."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ALPHA",
    "Distribution",
    "Interval",
    "Stats",
    "bimodal",
    "bootstrap_diff",
    "bootstrap_mean",
    "bootstrap_ratio",
    "distribution",
    "mann_whitney_p",
    "stats",
    "t_two_sided_p",
    "welch_p",
]

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


# ------------------------------------------------------- rank test, bootstrap


def mann_whitney_p(a: Stats, b: Stats) -> float | None:
    """Two-sided Mann-Whitney U p-value (normal approximation with tie correction and
    continuity correction); None with fewer than 3 samples a side.

    A rank test: it asks whether one side tends to give larger values, which a
    bimodal sample (boots near 0 and near 1) answers where a t-test does not.
    """
    n1, n2 = a.n, b.n
    if n1 < 3 or n2 < 3:
        return None
    pooled = sorted([(v, 0) for v in a.values] + [(v, 1) for v in b.values])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2.0 + 1.0
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    r1 = math.fsum(r for r, (_, side) in zip(ranks, pooled, strict=True) if side == 0)
    u1 = r1 - n1 * (n1 + 1) / 2.0
    mu = n1 * n2 / 2.0
    n = n1 + n2
    var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    if var <= 0.0:  # every value equal
        return 1.0
    z = (abs(u1 - mu) - 0.5) / math.sqrt(var)
    return min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2.0)))


@dataclass(frozen=True)
class Interval:
    """A point estimate and its (percentile bootstrap) confidence interval."""

    estimate: float
    lo: float
    hi: float
    level: float = 0.95

    @property
    def width(self) -> float:
        return self.hi - self.lo


BOOTSTRAP_RESAMPLES = 2000
_SEED = 20261129  # fixed: the same samples always give the same interval


def _percentiles(draws: list[float], level: float) -> tuple[float, float]:
    draws.sort()
    tail = (1.0 - level) / 2.0
    lo = draws[math.floor(tail * (len(draws) - 1))]
    hi = draws[math.ceil((1.0 - tail) * (len(draws) - 1))]
    return lo, hi


def _resample_means(values: list[float], rng: random.Random, count: int) -> list[float]:
    n = len(values)
    return [math.fsum(rng.choices(values, k=n)) / n for _ in range(count)]


def bootstrap_mean(
    values: Iterable[float], level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES
) -> Interval | None:
    """Percentile bootstrap interval of the mean; None without samples."""
    data = [float(v) for v in values]
    if not data:
        return None
    mean = math.fsum(data) / len(data)
    if len(data) == 1 or min(data) == max(data):
        return Interval(mean, mean, mean, level)
    lo, hi = _percentiles(_resample_means(data, random.Random(_SEED), resamples), level)
    return Interval(mean, lo, hi, level)


def bootstrap_diff(
    a: Iterable[float], b: Iterable[float], level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Interval | None:  # fmt: skip
    """Interval of mean(b) - mean(a), each side resampled on its own."""
    da, db = [float(v) for v in a], [float(v) for v in b]
    if not da or not db:
        return None
    est = math.fsum(db) / len(db) - math.fsum(da) / len(da)
    if min(da) == max(da) and min(db) == max(db):  # deterministic (-icount): no spread
        return Interval(est, est, est, level)
    rng = random.Random(_SEED)
    ma, mb = _resample_means(da, rng, resamples), _resample_means(db, rng, resamples)
    lo, hi = _percentiles([y - x for x, y in zip(ma, mb, strict=True)], level)
    return Interval(est, min(lo, est), max(hi, est), level)


def bootstrap_ratio(
    a: Iterable[float], b: Iterable[float], level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Interval | None:  # fmt: skip
    """Interval of mean(b) / mean(a); None when the baseline mean can be 0."""
    da, db = [float(v) for v in a], [float(v) for v in b]
    if not da or not db or min(da) <= 0 < max(da) or math.fsum(da) == 0:
        return None
    est = (math.fsum(db) / len(db)) / (math.fsum(da) / len(da))
    if min(da) == max(da) and min(db) == max(db):
        return Interval(est, est, est, level)
    rng = random.Random(_SEED)
    ma, mb = _resample_means(da, rng, resamples), _resample_means(db, rng, resamples)
    lo, hi = _percentiles([y / x for x, y in zip(ma, mb, strict=True) if x != 0], level)
    return Interval(est, min(lo, est), max(hi, est), level)


@dataclass(frozen=True)
class Distribution:
    """Per-boot values of a 0..1 fraction: how many near 0, in between, near 1."""

    low: int
    middle: int
    high: int
    edge: float = 0.1  # "near 0" is < edge, "near 1" is > 1 - edge

    @property
    def n(self) -> int:
        return self.low + self.middle + self.high

    def text(self) -> str:
        lo, hi = f"{100 * self.edge:.0f}%", f"{100 * (1 - self.edge):.0f}%"
        return f"{self.low} < {lo}, {self.middle} between, {self.high} > {hi} (of {self.n})"


def distribution(values: Iterable[float], edge: float = 0.1) -> Distribution:
    data = list(values)
    low = sum(v < edge for v in data)
    high = sum(v > 1.0 - edge for v in data)
    return Distribution(low, len(data) - low - high, high, edge)


def bimodal(values: Iterable[float], edge: float = 0.1) -> bool:
    """A 0..1 fraction whose boots land both near 0 and near 1 (the stress cases under
    pressure): a mean +- stddev of such a sample spans most of 0-100 %."""
    d = distribution(values, edge)
    return d.low > 0 and d.high > 0
