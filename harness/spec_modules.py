"""The out-of-tree module keys of a run definition's ``modules.load`` entries.

An entry may name its own directory (``dir``), which modules.dir (kselftests/)
does not have to hold:

* ``kernel:<dir>``: a directory of the kernel source under test (``kernel:lib``):
  the files named in ``sources`` (default ``<name>.c``) are copied into a build
  directory beside a generated Kbuild, so an in-tree test module builds out of tree
  against each kernel of a run or an A/B, from that kernel's own source;
* a path relative to the run definition, or an absolute one: a directory with its
  own Makefile or Kbuild, copied as it is.

``load_rc`` is the status a module's load is expected to end with (lib/test_vmalloc.c
returns -EAGAIN once its tests ran, so it is not left loaded), and ``metrics`` the
regular expressions that turn its output into metrics (see
:mod:`harness.analysis.module_metrics`); without ``metrics`` the module's KTAP and
``# kbulk-metric`` lines are read as before.

Every error names the run definition's file:line and the key, as the rest of
:mod:`harness.spec` does.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.analysis.module_metrics import RESERVED_GROUPS, DeclaredMetric, MetricRule
from harness.report.metrics import Direction, Kind

if TYPE_CHECKING:
    from harness.spec import SpecError, _Reader

__all__ = [
    "ENTRY_KEYS",
    "KERNEL_PREFIX",
    "ModuleExtras",
    "ModuleSource",
    "parse_entry_extras",
]

KERNEL_PREFIX = "kernel:"
ENTRY_KEYS = frozenset({"dir", "sources", "load_rc", "metrics"})  # beside name, params
RULE_KEYS = frozenset({"pattern", "case", "values"})
VALUE_KEYS = frozenset({"unit", "better", "threshold", "kind"})
BETTER = {"higher": Direction.HIGHER, "lower": Direction.LOWER, "neutral": Direction.NEUTRAL}
KINDS = {str(k): k for k in Kind}
_MODULE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,54}$")
_SOURCE_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*\.[chS]$")
SOURCES_ONLY_KERNEL = (
    f"'sources' is for a {KERNEL_PREFIX}<dir> module directory; "
    "a directory of your own builds with its Makefile or Kbuild"
)
_GROUP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ModuleSource:
    """Where a module's sources are: a host directory (``path``) or a directory of the
    kernel tree under test (``kernel_dir``, relative to its top, with ``files``)."""

    path: Path | None = None
    kernel_dir: str | None = None
    files: tuple[str, ...] = ()
    # file:line of the entry's ``dir``; not part of the identity: two entries naming
    # the same directory build it once
    where: str = field(default="", compare=False)

    @property
    def label(self) -> str:
        if self.kernel_dir is not None:
            return f"{KERNEL_PREFIX}{self.kernel_dir}"
        return str(self.path)


@dataclass
class ModuleExtras:
    source: ModuleSource | None = None  # None: modules.dir
    load_rc: int = 0
    rules: list[MetricRule] = field(default_factory=list)
    declared: list[DeclaredMetric] = field(default_factory=list)
    where: str = ""  # file:line of the entry


def _line(where: Any, key: str | None) -> int | None:
    lines = getattr(where, "key_lines", {})
    if key is not None and key in lines:
        return int(lines[key])
    line = getattr(where, "line", 0)
    return int(line) if line else None


def _fail(r: _Reader, where: Any, label: str, message: str) -> SpecError:
    key = label.rsplit(".", 1)[-1].split("[", 1)[0]
    return r.fail(None, label, message, _line(where, key))


def check_name(r: _Reader, label: str, name: str, line: int | None) -> None:
    """A module name goes into file names and a generated Kbuild: nothing else."""
    if not _MODULE_NAME.match(name):
        raise r.fail(
            None,
            f"{label}.name",
            f"{name!r} is not a module name (letters, digits, '_' and '-')",
            line,
        )


def parse_entry_extras(
    r: _Reader, entry: dict[str, Any], label: str, name: str, spec_dir: Path
) -> ModuleExtras:
    """The keys of ENTRY_KEYS in one ``modules.load`` entry (``label``: its path in the
    run definition, e.g. ``modules.load[2]``)."""
    extras = ModuleExtras(where=f"{r.path}:{_line(entry, None)}")
    if "dir" in entry:
        extras.source = _source(r, entry, label, name, spec_dir)
    elif "sources" in entry:
        raise _fail(
            r,
            entry,
            f"{label}.sources",
            SOURCES_ONLY_KERNEL,
        )
    if "load_rc" in entry:
        extras.load_rc = _load_rc(r, entry, label)
    if "metrics" in entry:
        rules = entry["metrics"]
        if not isinstance(rules, list) or not rules:
            raise _fail(
                r, entry, f"{label}.metrics", "expected a list of rules: {pattern, case?, values}"
            )
        item_lines = getattr(rules, "item_lines", [])
        for index, item in enumerate(rules):
            rule_label = f"{label}.metrics[{index}]"
            if not isinstance(item, dict):
                line = item_lines[index] if index < len(item_lines) else None
                raise r.fail(
                    None,
                    rule_label,
                    "each rule is a mapping: pattern, case (optional), values",
                    line,
                )
            rule, declared = _rule(r, item, rule_label, name)
            extras.rules.append(rule)
            extras.declared.extend(declared)
    return extras


def _source(
    r: _Reader, entry: dict[str, Any], label: str, name: str, spec_dir: Path
) -> ModuleSource:
    value = entry["dir"]
    where = f"{r.path}:{_line(entry, 'dir')}"
    if not isinstance(value, str) or not value.strip():
        raise _fail(r, entry, f"{label}.dir", f"expected a directory, got {value!r}")
    if value.startswith(KERNEL_PREFIX):
        sub = value.removeprefix(KERNEL_PREFIX).strip("/")
        parts = Path(sub).parts
        if not sub or Path(sub).is_absolute() or ".." in parts:
            raise _fail(
                r,
                entry,
                f"{label}.dir",
                f"{value!r}: {KERNEL_PREFIX} takes a directory inside the kernel "
                "tree, e.g. kernel:lib",
            )
        files = _sources(r, entry, label, name)
        return ModuleSource(kernel_dir=sub, files=files, where=where)
    if "sources" in entry:
        raise _fail(
            r,
            entry,
            f"{label}.sources",
            SOURCES_ONLY_KERNEL,
        )
    path = Path(value).expanduser()
    path = path if path.is_absolute() else (spec_dir / path).resolve()
    if not path.exists():
        problem = "does not exist (a relative dir is relative to the run definition)"
    elif not path.is_dir():
        problem = "is not a directory"
    elif not ((path / "Makefile").is_file() or (path / "Kbuild").is_file()):
        problem = "has no Makefile or Kbuild (kbuild's M= needs one: obj-m := <name>.o)"
    else:
        return ModuleSource(path=path, where=where)
    raise _fail(r, entry, f"{label}.dir", f"{path} {problem}")


def _sources(r: _Reader, entry: dict[str, Any], label: str, name: str) -> tuple[str, ...]:
    if "sources" not in entry:
        return (f"{name}.c",)
    value = entry["sources"]
    if not isinstance(value, list) or not value:
        raise _fail(r, entry, f"{label}.sources", "expected a list of file names, e.g. [foo.c]")
    for item in value:
        if not isinstance(item, str) or not _SOURCE_FILE.match(item):
            raise _fail(
                r,
                entry,
                f"{label}.sources",
                f"{item!r}: a .c, .h or .S file name in that directory (no path)",
            )
    if not any(f.endswith((".c", ".S")) for f in value):
        raise _fail(r, entry, f"{label}.sources", "names no .c or .S file to compile")
    return tuple(value)


def _load_rc(r: _Reader, entry: dict[str, Any], label: str) -> int:
    value = entry["load_rc"]
    if isinstance(value, int) and not isinstance(value, bool):
        if value > 0:
            raise _fail(
                r,
                entry,
                f"{label}.load_rc",
                f"{value}: a load status is 0 or a negative errno, e.g. -EAGAIN or -11",
            )
        return value
    if isinstance(value, str):
        text = value.strip()
        number = getattr(errno, text.removeprefix("-"), None)
        if text.startswith("-") and isinstance(number, int):
            return -number
    raise _fail(
        r,
        entry,
        f"{label}.load_rc",
        f"{value!r}: expected 0, a negative number or a negative errno name such as -EAGAIN",
    )


def _rule(
    r: _Reader, item: dict[str, Any], label: str, module: str
) -> tuple[MetricRule, list[DeclaredMetric]]:
    unknown = sorted(set(map(str, item)) - RULE_KEYS)
    if unknown:
        raise _fail(
            r,
            item,
            f"{label}.{unknown[0]}",
            f"unknown key; allowed here: {', '.join(sorted(RULE_KEYS))}",
        )
    text = item.get("pattern")
    if not isinstance(text, str) or not text:
        raise _fail(r, item, f"{label}.pattern", "each rule needs a pattern (a regular expression)")
    try:
        pattern = re.compile(text)
    except re.error as e:
        raise _fail(
            r,
            item,
            f"{label}.pattern",
            f"bad regular expression: {e.msg} at position {e.pos}: {text!r}",
        ) from e
    groups = set(pattern.groupindex)
    direct = [g for g in pattern.groupindex if g not in RESERVED_GROUPS]
    named_in_text = "metric" in groups and "value" in groups
    if ("metric" in groups) != ("value" in groups):
        raise _fail(
            r,
            item,
            f"{label}.pattern",
            "(?P<metric>...) and (?P<value>...) go together: the metric's name "
            "and its value, both from the text",
        )
    if "unit" in groups and not named_in_text:
        raise _fail(
            r,
            item,
            f"{label}.pattern",
            "(?P<unit>...) goes with (?P<metric>...) and (?P<value>...)",
        )
    if not direct and not named_in_text:
        raise _fail(
            r,
            item,
            f"{label}.pattern",
            "no named value group: name each number the metric is, e.g. "
            r"'avg: (?P<avg_usec>\d+) usec', or use (?P<metric>...) with "
            "(?P<value>...)",
        )
    case = item.get("case")
    if case is not None and (not isinstance(case, str) or not _GROUP_NAME.match(case)):
        raise _fail(r, item, f"{label}.case", f"{case!r}: a case name (letters, digits, '_')")
    if case is not None and "case" in groups:
        raise _fail(
            r, item, f"{label}.case", "the pattern's (?P<case>...) group names the case already"
        )
    values = item.get("values")
    if not isinstance(values, dict) or not values:
        raise _fail(
            r,
            item,
            f"{label}.values",
            "declare each value the rule yields: "
            "<name>: {unit, better: higher|lower|neutral, threshold}",
        )
    declared = [_declared(r, values, f"{label}.values.{key}", str(key), module) for key in values]
    names = {d.metric for d in declared}
    for group in direct:
        if group not in names:
            raise _fail(
                r,
                item,
                f"{label}.values",
                f"the pattern's group {group!r} is not declared here "
                "(its unit, better direction and threshold)",
            )
    if not named_in_text:
        for d in declared:
            if d.metric not in direct:
                raise _fail(
                    r,
                    values,
                    f"{label}.values.{d.metric}",
                    f"the pattern has no group (?P<{d.metric}>...)",
                )
    where = f"{r.path}:{_line(item, 'pattern')}"
    return MetricRule(pattern, case, where), declared


def _declared(
    r: _Reader, values: dict[str, Any], label: str, key: str, module: str
) -> DeclaredMetric:
    item = values[key]
    line = _line(values, key)
    if not isinstance(item, dict):
        raise r.fail(None, label, "expected {unit, better, threshold, kind?}", line)
    unknown = sorted(set(map(str, item)) - VALUE_KEYS)
    if unknown:
        raise _fail(
            r,
            item,
            f"{label}.{unknown[0]}",
            f"unknown key; allowed here: {', '.join(sorted(VALUE_KEYS))}",
        )
    better = item.get("better")
    if better not in BETTER:
        raise _fail(
            r,
            item,
            f"{label}.better",
            f"{better!r}; allowed: {', '.join(BETTER)} (which way is better)",
        )
    direction = BETTER[str(better)]
    unit = item.get("unit", "")
    if not isinstance(unit, str):
        raise _fail(r, item, f"{label}.unit", f"expected a unit name, got {unit!r}")
    kind = item.get("kind", "time")
    if kind not in KINDS:
        raise _fail(
            r,
            item,
            f"{label}.kind",
            f"{kind!r}; allowed: {', '.join(KINDS)} (time: not judged under plain "
            "TCG, where it is host speed)",
        )
    if "threshold" not in item and direction is not Direction.NEUTRAL:
        raise r.fail(
            None,
            label,
            "a value with a better direction needs a threshold (e.g. 2% or 0.02): "
            "the smallest change worth a verdict",
            line,
        )
    threshold = _threshold(r, item, f"{label}.threshold", item.get("threshold", 0))
    source = f"{r.path}:{line}" if line else str(r.path)
    return DeclaredMetric(module, key, unit, direction, KINDS[str(kind)], threshold, source)


def _threshold(r: _Reader, item: dict[str, Any], label: str, value: Any) -> float:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and value.strip().endswith("%"):
        try:
            number = float(value.strip()[:-1]) / 100
        except ValueError:
            number = None
    if number is None or not 0 <= number <= 10 or number != number:
        raise _fail(r, item, label, f"{value!r}: a relative change, e.g. 2% or 0.02 (0 to 1000%)")
    return number
