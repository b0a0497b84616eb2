"""The search: which prefix of a series first shows the problem, by binary search.

Pure logic over a probe (prefix -> good/bad/skip), like ``git bisect`` over a
linear history: prefix 0 (no patches) must be good and prefix N (the whole
series) bad, both verified first; then the untested prefix nearest the middle
of the (last good, first bad) interval is probed until the interval holds one
patch. A prefix that cannot be tested (does not build or does not boot) is a
skip: the search goes around it, and if only skipped prefixes are left between
the last good and the first bad prefix, the answer is the set of candidates,
as ``git bisect`` says "only skipped commits left to test".
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field


class Verdict(enum.StrEnum):
    GOOD = "good"
    BAD = "bad"
    SKIP = "skip"  # not testable: does not build, does not boot


class Outcome(enum.StrEnum):
    FOUND = "found"  # one first bad patch
    AMBIGUOUS = "ambiguous"  # skipped prefixes hide which patch of a few it is
    REFUSED = "refused"  # prefix 0 not good or prefix N not bad


@dataclass(frozen=True)
class Probe:
    prefix: int
    verdict: Verdict


@dataclass
class SearchResult:
    total: int  # patches in the series (N)
    outcome: Outcome
    probes: list[Probe] = field(default_factory=list)  # in the order they were made
    last_good: int | None = None
    first_bad: int | None = None  # FOUND: the patch; AMBIGUOUS: the first prefix seen bad
    candidates: list[int] = field(default_factory=list)  # patches that may be the first bad
    refusal: str = ""

    @property
    def builds(self) -> int:
        """Prefixes built and tested (each prefix is probed at most once)."""
        return len(self.probes)

    @property
    def linear_builds(self) -> int | None:
        """What a linear walk (prefix 0, then 1, 2, ... up to the first bad one) builds
        to find the same patch; None when nothing was found."""
        if self.outcome is not Outcome.FOUND or self.first_bad is None:
            return None
        return self.first_bad + 1

    def verdict_of(self, prefix: int) -> Verdict | None:
        return next((p.verdict for p in self.probes if p.prefix == prefix), None)


def _next(good: int, bad: int, skipped: set[int]) -> int | None:
    """The untested prefix strictly between good and bad nearest their middle (the
    lower one on a tie); None if only skipped ones are left."""
    middle = (good + bad) / 2
    candidates = [k for k in range(good + 1, bad) if k not in skipped]
    return min(candidates, key=lambda k: (abs(k - middle), k)) if candidates else None


def bisect(total: int, probe: Callable[[int], Verdict]) -> SearchResult:
    """Find the first bad prefix of a series of ``total`` patches (total >= 1)."""
    if total < 1:
        raise ValueError("a series of at least one patch is needed")
    result = SearchResult(total, Outcome.REFUSED)

    def test(k: int) -> Verdict:
        verdict = probe(k)
        result.probes.append(Probe(k, verdict))
        return verdict

    first = test(0)
    if first is not Verdict.GOOD:
        result.refusal = (
            "prefix 0 (no patches) is bad: the problem is older than the series"
            if first is Verdict.BAD
            else "prefix 0 (no patches) could not be tested"
        )
        return result
    last = test(total)
    if last is not Verdict.BAD:
        result.refusal = (
            f"prefix {total} (the whole series) is good: the problem does not show"
            if last is Verdict.GOOD
            else f"prefix {total} (the whole series) could not be tested"
        )
        return result
    good, bad = 0, total
    skipped: set[int] = set()
    while (k := _next(good, bad, skipped)) is not None:
        verdict = test(k)
        if verdict is Verdict.GOOD:
            good = k
        elif verdict is Verdict.BAD:
            bad = k
        else:
            skipped.add(k)
    result.last_good, result.first_bad = good, bad
    hidden = sorted(k for k in skipped if good < k < bad)
    if hidden:
        result.outcome, result.candidates = Outcome.AMBIGUOUS, [*hidden, bad]
    else:
        result.outcome, result.candidates = Outcome.FOUND, [bad]
    return result
