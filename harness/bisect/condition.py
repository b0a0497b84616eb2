"""What "bad" means for a bisect: a test that fails, a module step that fails, a
kernel that does not come back (crash or hang), or a metric beyond a limit or a
change against the baseline kernel (prefix 0) in the direction the metric
vocabulary calls worse.

Each condition judges one prefix's run record. What no condition can judge is a
skip: a prefix that does not build, or, for a test, module step or metric, a
kernel that crashed or hung before the thing was reached. A host problem
(infra_error) is not a verdict about the kernel at all: :class:`Untestable`
stops the bisect instead of skipping, so a flaky host cannot steer the search.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from harness.analysis.ktap import TestNode, TestStatus
from harness.errors import HarnessError
from harness.record.run import ArchRun
from harness.record.status import CrashKind, RunStatus
from harness.report.compare import samples
from harness.report.metrics import (
    METRICS,
    Direction,
    MetricSpec,
    beyond_threshold,
    format_value,
    threshold_text,
)

from .search import Verdict

_NOT_BUILT = frozenset({RunStatus.BUILD_FAILURE, RunStatus.CONFIG_ERROR, RunStatus.PATCH_FAILURE})
_DID_NOT_FINISH = frozenset({RunStatus.CRASH, RunStatus.TIMEOUT})
_BAD_TEST = frozenset({TestStatus.FAIL, TestStatus.CRASH})


class ConditionError(ValueError):
    """A condition that cannot be judged as given (a usage error, exit 2)."""


class Untestable(HarnessError):
    """The host failed a prefix (infra_error): the bisect stops, nothing is guessed."""


@dataclass
class Judgement:
    verdict: Verdict
    text: str  # one line: what was seen
    evidence: dict[str, Any] = field(default_factory=dict)  # the JSON form


class Condition(Protocol):
    def describe(self) -> str: ...

    def judge(self, run: ArchRun, baseline: ArchRun | None) -> Judgement: ...


def _first_look(run: ArchRun) -> Judgement | None:
    """The verdicts every condition shares: not built is a skip, the host is no verdict."""
    if run.status is RunStatus.INFRA_ERROR:
        raise Untestable(f"infrastructure error, no verdict on this kernel: {run.message}")
    if run.status in _NOT_BUILT:
        return Judgement(
            Verdict.SKIP,
            f"does not build ({run.status}): {run.message}",
            {"run_status": str(run.status), "message": run.message},
        )
    return None


def _did_not_finish(run: ArchRun, what: str) -> Judgement:
    return Judgement(
        Verdict.SKIP,
        f"the kernel did not finish ({run.status}) before {what} ran: {run.message}",
        {"run_status": str(run.status), "message": run.message},
    )


def _fatal_crashes(run: ArchRun) -> list[str]:
    return [f"{c.kind}: {c.title}" for c in run.crashes if c.kind is not CrashKind.WARNING]


@dataclass(frozen=True)
class BootsCondition:
    """Bad when the kernel crashes or hangs (status crash or timeout)."""

    def describe(self) -> str:
        return "the kernel crashes or hangs (boots)"

    def judge(self, run: ArchRun, baseline: ArchRun | None) -> Judgement:
        first = _first_look(run)
        if first is not None:
            return first
        evidence = {
            "run_status": str(run.status),
            "message": run.message,
            "crashes": _fatal_crashes(run),
        }
        if run.status in _DID_NOT_FINISH:
            return Judgement(Verdict.BAD, f"{run.status}: {run.message}", evidence)
        return Judgement(Verdict.GOOD, f"booted and finished ({run.status})", evidence)


_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-:]*$")


def _find(run: ArchRun, path: str) -> TestNode | None:
    if run.ktap is None:
        return None
    return next((node for p, node in run.ktap.walk() if ".".join(p) == path), None)


@dataclass(frozen=True)
class TestCondition:
    """Bad when the KTAP test at ``path`` (``suite.case``) fails or crashes."""

    __test__ = False  # not a pytest test class
    path: str

    def __post_init__(self) -> None:
        if not _PATH.match(self.path):
            raise ConditionError(
                f"--test {self.path!r}: a KTAP test path such as "
                "page_alloc_bulk_semantics.bulk_nothing_to_do"
            )

    def describe(self) -> str:
        return f"KTAP test {self.path} fails"

    def judge(self, run: ArchRun, baseline: ArchRun | None) -> Judgement:
        first = _first_look(run)
        if first is not None:
            return first
        node = _find(run, self.path)
        inside = self.path + "."
        crashed_in = [c for c in run.crashes if c.test and (c.test + ".").startswith(inside)]
        if node is None and not crashed_in:
            if run.status in _DID_NOT_FINISH:
                return _did_not_finish(run, self.path)
            # The test does not exist at this prefix (the series adds it later):
            # it does not fail here.
            return Judgement(
                Verdict.GOOD,
                f"{self.path} absent (not in this kernel)",
                {"status": "absent", "run_status": str(run.status)},
            )
        status = node.status if node is not None else TestStatus.CRASH
        evidence: dict[str, Any] = {
            "status": str(status),
            "run_status": str(run.status),
            "diagnostics": _diagnostics(node) if node is not None else [],
            "crashes": [f"{c.kind}: {c.title}" for c in crashed_in],
        }
        if node is not None and node.directive:
            evidence["directive"] = node.directive
        bad = status in _BAD_TEST or bool(crashed_in)
        failed = _failed_leaves(node) if node is not None else []
        if failed:
            evidence["failed_cases"] = failed
        text = f"{self.path}: {status}" + (f" ({', '.join(failed[:4])})" if failed else "")
        return Judgement(Verdict.BAD if bad else Verdict.GOOD, text, evidence)


def _failed_leaves(node: TestNode) -> list[str]:
    return [".".join(p) for p, n in node.walk() if not n.subtests and n.status in _BAD_TEST]


def _diagnostics(node: TestNode, limit: int = 40) -> list[str]:
    """The test's own diagnostic lines and its failing subtests' (the KUnit expectation
    messages), at most ``limit``."""
    lines = list(node.diagnostics)
    for path, sub in node.walk():
        if sub.status in _BAD_TEST:
            lines += [f"[{'.'.join(path)}] {d}" for d in sub.diagnostics]
    return lines[:limit]


_MODULE = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass(frozen=True)
class ModuleCondition:
    """Bad when the guest init's step loading module ``name`` fails (insmod's exit
    status is not 0, or the step never ended)."""

    name: str

    def __post_init__(self) -> None:
        if not _MODULE.match(self.name):
            raise ConditionError(f"--module {self.name!r}: a test module name, e.g. kbulk_stress")

    def describe(self) -> str:
        return f"module step {self.name} fails"

    def judge(self, run: ArchRun, baseline: ArchRun | None) -> Judgement:
        first = _first_look(run)
        if first is not None:
            return first
        if self.name not in run.module_steps:
            if run.status in _DID_NOT_FINISH:
                return _did_not_finish(run, f"module step {self.name}")
            raise ConditionError(
                f"--module {self.name}: no such step in this run (steps: "
                f"{', '.join(run.module_steps) or 'none'}); the run definition's modules: "
                "list names them"
            )
        rc = run.module_steps[self.name]
        evidence = {
            "exit_status": rc,
            "run_status": str(run.status),
            "message": run.message,
            "crashes": _fatal_crashes(run),
        }
        if rc == 0:
            return Judgement(Verdict.GOOD, f"{self.name}: insmod exit status 0", evidence)
        what = "never ended" if rc is None else f"insmod exit status {rc}"
        return Judgement(Verdict.BAD, f"{self.name}: {what}", evidence)


@dataclass(frozen=True)
class MetricCondition:
    """Bad when ``module.case.key`` is worse than ``limit``, or (without a limit) worse
    than the baseline kernel's value beyond ``change`` (default: the vocabulary's
    threshold), "worse" in the vocabulary's direction for the key."""

    path: str
    limit: float | None = None
    change: float | None = None  # relative (points for 0..1 fractions), e.g. 0.05

    def __post_init__(self) -> None:
        parts = self.path.split(".")
        if len(parts) < 3 or not all(parts):
            raise ConditionError(
                f"--metric {self.path!r}: <module>.<case>.<key>, e.g. "
                "kbulk_bench.order0_batch64.ns_per_page"
            )
        if self.limit is not None and self.change is not None:
            raise ConditionError("--limit and --change exclude each other")
        if self.change is not None and self.change <= 0:
            raise ConditionError(f"--change {self.change:g}: must be positive")
        if self.spec.better is Direction.NEUTRAL:
            raise ConditionError(
                f"--metric {self.path}: the metric vocabulary (harness/report/metrics.py) "
                f"calls {self.key!r} neutral: no direction is worse, nothing to bisect"
            )

    @property
    def group(self) -> str:
        return self.path.split(".")[0]

    @property
    def case(self) -> str:
        return ".".join(self.path.split(".")[1:-1])

    @property
    def key(self) -> str:
        return self.path.split(".")[-1]

    @property
    def spec(self) -> MetricSpec:
        return METRICS.lookup(self.key, self.case)

    @property
    def threshold(self) -> MetricSpec:
        """The vocabulary's row with the threshold this bisect uses."""
        return self.spec if self.change is None else replace(self.spec, threshold=self.change)

    def describe(self) -> str:
        worse = "above" if self.spec.better is Direction.LOWER else "below"
        if self.limit is not None:
            return f"{self.path} {worse} {format_value(self.limit)} {self.spec.unit}".rstrip()
        return (
            f"{self.path} worse than the baseline kernel (prefix 0) by more than "
            f"{threshold_text(self.threshold)} ({self.spec.better})"
        )

    def value(self, run: ArchRun) -> float | None:
        values = samples([run]).get((self.group, self.case, self.key))
        return sum(values) / len(values) if values else None

    def judge(self, run: ArchRun, baseline: ArchRun | None) -> Judgement:
        first = _first_look(run)
        if first is not None:
            return first
        value = self.value(run)
        evidence: dict[str, Any] = {
            "value": value,
            "unit": self.spec.unit,
            "run_status": str(run.status),
            "accelerator": run.accelerator,
        }
        if value is None:
            if run.status in _DID_NOT_FINISH:
                return _did_not_finish(run, self.path)
            return Judgement(Verdict.SKIP, f"{self.path} not reported by this kernel", evidence)
        lower = self.spec.better is Direction.LOWER
        if self.limit is not None:
            evidence["limit"] = self.limit
            bad = value > self.limit if lower else value < self.limit
            return Judgement(
                Verdict.BAD if bad else Verdict.GOOD,
                f"{self.path} = {format_value(value)} (limit {format_value(self.limit)})",
                evidence,
            )
        base = self.value(baseline) if baseline is not None else None
        if base is None:
            raise ConditionError(f"{self.path}: the baseline kernel (prefix 0) did not report it")
        evidence["baseline"] = base
        worse = value > base if lower else value < base
        bad = worse and beyond_threshold(self.threshold, base, value)
        change = (
            f"{100 * (value - base):+.1f} pts"
            if self.spec.unit == "fraction"
            else f"{100 * (value - base) / abs(base):+.1f}%"
            if base
            else "n/a"
        )
        evidence["change"] = change
        return Judgement(
            Verdict.BAD if bad else Verdict.GOOD,
            f"{self.path} = {format_value(value)} ({change} against prefix 0's "
            f"{format_value(base)}; threshold {threshold_text(self.threshold)})",
            evidence,
        )
