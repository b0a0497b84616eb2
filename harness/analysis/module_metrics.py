"""Metrics from modules that do not print ``# kbulk-metric`` lines: regular expressions
declared in the run definition, applied to the console lines a module printed while
the guest's init was loading it (between its step begin/end markers).

A rule's named groups say what a match means:

* ``case``: the case name (the metric line's ``test=``); without it, the rule's
  fixed ``case`` (default: the module's name);
* ``metric`` + ``value`` (+ ``unit``): one metric whose name and unit are in the text;
* any other named group: a metric of that name, its value the group's text.

Each metric a rule can produce is declared beside it (unit, better direction, kind,
practical-significance threshold) as a :class:`DeclaredMetric`, recorded in
results.json's meta so ``kbulk compare`` judges it like the harness's own metrics.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.analysis.ktap import MAX_LINE_LENGTH, Metric, strip_escapes
from harness.boot.guest.markers import STEP_BEGIN, STEP_END
from harness.report.metrics import Direction, Kind, MetricSpec

__all__ = [
    "RESERVED_GROUPS",
    "DeclaredMetric",
    "MetricRule",
    "declared_spec",
    "module_output",
    "regex_metrics",
]

# Groups that are not values: the case, and a metric named (and measured) in the text.
RESERVED_GROUPS = frozenset({"case", "metric", "value", "unit"})


@dataclass(frozen=True)
class DeclaredMetric:
    """How to judge one metric of one module (``metric`` is an fnmatch pattern on
    the metric's key), as declared in a run definition."""

    module: str
    metric: str
    unit: str
    better: Direction
    kind: Kind
    threshold: float
    source: str = ""  # file:line of the declaration

    @property
    def spec(self) -> MetricSpec:
        return MetricSpec(
            self.metric,
            self.unit,
            self.better,
            self.kind,
            self.threshold,
            f"declared at {self.source}" if self.source else "declared",
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "metric": self.metric,
            "unit": self.unit,
            "better": self.better.name.lower(),
            "kind": str(self.kind),
            "threshold": self.threshold,
            "source": self.source,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> DeclaredMetric | None:
        module, metric, unit = data.get("module"), data.get("metric"), data.get("unit", "")
        better, kind, threshold = data.get("better"), data.get("kind"), data.get("threshold")
        if not (isinstance(module, str) and isinstance(metric, str) and isinstance(unit, str)):
            return None
        if not isinstance(better, str) or better.upper() not in Direction.__members__:
            return None
        if kind not in {str(k) for k in Kind}:
            return None
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            return None
        source = data.get("source")
        return DeclaredMetric(
            module,
            metric,
            unit,
            Direction[better.upper()],
            Kind(str(kind)),
            float(threshold),
            source if isinstance(source, str) else "",
        )


def declared_spec(declared: Sequence[DeclaredMetric], module: str, key: str) -> MetricSpec | None:
    """The first declaration for ``key`` of ``module`` (None: the built-in vocabulary)."""
    for d in declared:
        if d.module == module and fnmatch.fnmatchcase(key, d.metric):
            return d.spec
    return None


@dataclass(frozen=True)
class MetricRule:
    """One regular expression of a module's ``metrics:`` list."""

    pattern: re.Pattern[str]
    case: str | None = None  # fixed case name when the pattern has no case group
    source: str = ""  # file:line

    @property
    def value_groups(self) -> list[str]:
        """Groups whose text is a metric's value (named after the metric)."""
        return [g for g in self.pattern.groupindex if g not in RESERVED_GROUPS]

    def apply(self, module: str, line: str) -> Metric | None:
        m = self.pattern.search(line)
        if m is None:
            return None
        groups = m.groupdict()
        values: dict[str, float | str] = {}
        if groups.get("metric") is not None and groups.get("value") is not None:
            values[groups["metric"]] = _number(groups["value"])
            if groups.get("unit"):
                values["unit"] = groups["unit"]
        for name in self.value_groups:
            if groups.get(name) is not None:
                values[name] = _number(groups[name])
        if not values:
            return None
        case = groups.get("case") or self.case or module
        return Metric(test_path=[module], test=case, values=values)


_INT = re.compile(r"[-+]?\d{1,18}")


def _number(text: str) -> float | str:
    """An int or a float when the text is one, else the text (a label, never a value)."""
    text = text.strip()
    if _INT.fullmatch(text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return text
    return value if value == value and abs(value) != float("inf") else text


def module_output(lines: Iterable[str]) -> Iterable[tuple[str, str]]:
    """(module, line) for each console line printed while init was loading a module."""
    current: str | None = None
    for raw in lines:
        line = strip_escapes(raw[:MAX_LINE_LENGTH])
        if m := STEP_BEGIN.search(line):
            current = m.group(1)
            continue
        if m := STEP_END.search(line):
            current = None
            continue
        if current is not None:
            yield current, line


def regex_metrics(lines: Iterable[str], rules: Mapping[str, Sequence[MetricRule]]) -> list[Metric]:
    """The metrics each module's rules find in that module's own output, in order."""
    if not any(rules.values()):
        return []
    out: list[Metric] = []
    for module, line in module_output(lines):
        for rule in rules.get(module, ()):
            if (metric := rule.apply(module, line)) is not None:
                out.append(metric)
    return out
