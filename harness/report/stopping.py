"""The stopping rule of `kbulk ab --reps auto`, as a pure function.

After each interleaved A/B pair the harness asks :func:`decide` whether every
headline figure's 95 % interval is narrower than its target; it stops when they
all are ("narrow") or when the budget of repetitions is spent ("budget"), and
the report says which, naming the figures still too wide.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Decision", "FigureWidth", "Stop", "decide"]

MIN_REPS = 3  # fewer boots a side say nothing about an interval's width


@dataclass(frozen=True)
class FigureWidth:
    label: str
    width: float  # of its widest 95 % interval
    target: float  # the widest acceptable

    @property
    def narrow(self) -> bool:
        return self.width <= self.target


class Stop(enum.StrEnum):
    CONTINUE = "continue"  # boot another pair
    NARROW = "narrow"  # every headline interval is narrower than its target
    BUDGET = "budget"  # max repetitions reached with some interval still too wide


@dataclass(frozen=True)
class Decision:
    stop: Stop
    reps: int
    wide: list[FigureWidth] = field(default_factory=list)  # still wider than their target
    measured: int = 0  # headline figures the runs have

    @property
    def done(self) -> bool:
        return self.stop is not Stop.CONTINUE

    def text(self) -> str:
        if self.stop is Stop.NARROW and not self.measured:
            return f"stopped after {self.reps} repetition(s): the runs have no headline figure"
        if self.stop is Stop.NARROW:
            return (
                f"stopped after {self.reps} repetition(s): every headline interval is "
                "narrower than its target"
            )
        wide = "; ".join(f"{w.label}: {w.width:.3g} > {w.target:.3g}" for w in self.wide)
        if self.stop is Stop.BUDGET:
            return f"budget of {self.reps} repetition(s) reached; still too wide: {wide}"
        return f"{self.reps} repetition(s), still too wide: {wide}"


def decide(
    figures: Sequence[FigureWidth], reps: int, *, max_reps: int, min_reps: int = MIN_REPS
) -> Decision:
    """Stop or go on after ``reps`` pairs: at least ``min_reps`` (capped by the budget),
    then until every figure is narrow or ``max_reps`` is reached."""
    wide = [f for f in figures if not f.narrow]
    n = len(figures)
    if reps < min(min_reps, max_reps):
        return Decision(Stop.CONTINUE, reps, wide, n)
    if not wide:
        return Decision(Stop.NARROW, reps, [], n)
    if reps >= max_reps:
        return Decision(Stop.BUDGET, reps, wide, n)
    return Decision(Stop.CONTINUE, reps, wide, n)
