"""`kbulk plan`: a run definition and its options expanded into independent cells.

A cell is one unit a CI engine can run on its own machine: one architecture and
one kernel (a series revision or prefix, or the baseline), and for A/B plans one
boot of one side (variant and repetition). Cell IDs depend only on the plan's
inputs, so a plan recomputed from the same inputs in another job names the same
cells, and ``plan_id`` (a digest of the inputs, the run definition's bytes and
the series' contents included) says whether two cells belong to the same plan.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.kernel.arch import ARCHES
from harness.kernel.patches import load_series
from harness.paths import REPO_ROOT
from harness.record.status import Variant
from harness.spec import RunSpec

__all__ = ["PLAN_VERSION", "Cell", "Plan", "PlanError", "PlanInputs", "make_plan", "read_plan"]

PLAN_VERSION = 1
_ID_SAFE = re.compile(r"[^a-z0-9_.]+")


class PlanError(ValueError):
    """Unusable plan options or plan file (the message names the option or the file)."""


@dataclass(frozen=True)
class PlanInputs:
    """Everything a plan is computed from; the same inputs give the same cells."""

    spec: str  # run definition, relative to the repository when inside it
    mode: str = "run"  # "run" | "ab"
    arches: tuple[str, ...] = ()  # empty: the run definition's
    reps: int = 1  # A/B: boots per side and arch
    series: tuple[str, ...] = ()  # series directories; empty: the run definition's
    baseline: bool = False  # run mode: also the unpatched kernel
    upto: tuple[int, ...] = ()  # run mode: series prefixes (patch counts)
    suites: str | None = None
    modules: bool = True
    accel: str = "auto"
    cmdline: tuple[str, ...] = ()
    timeout: float | None = None

    def args(self) -> list[str]:
        """The plan options as command-line arguments (to recompute the plan in a job)."""
        out = ["--spec", self.spec]
        if self.mode == "ab":
            out += ["--ab", "--reps", str(self.reps)]
        for arch in self.arches:
            out += ["--arch", arch]
        for series in self.series:
            out += ["--series", series]
        if self.baseline:
            out.append("--baseline")
        for n in self.upto:
            out += ["--upto", str(n)]
        if self.suites is not None:
            out += ["--suites", self.suites]
        if not self.modules:
            out.append("--no-modules")
        if self.accel != "auto":
            out += ["--accel", self.accel]
        for arg in self.cmdline:
            out += ["--cmdline", arg]
        if self.timeout is not None:
            out += ["--timeout", repr(self.timeout)]
        return out


@dataclass(frozen=True)
class Cell:
    """One independent unit of a plan."""

    id: str
    mode: str  # "run" | "ab"
    arch: str
    series: str | None  # series directory; None: the unpatched kernel
    upto: int | None = None  # only the first N patches
    variant: str | None = None  # A/B: "baseline" | "patched"
    repetition: int | None = None  # A/B: 0-based

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cell:
        return cls(
            id=str(data["id"]),
            mode=str(data["mode"]),
            arch=str(data["arch"]),
            series=data.get("series"),
            upto=data.get("upto"),
            variant=data.get("variant"),
            repetition=data.get("repetition"),
        )


@dataclass
class Plan:
    inputs: PlanInputs
    plan_id: str
    digests: dict[str, str]  # what the inputs named, by content: spec and series
    cells: list[Cell] = field(default_factory=list)

    def cell(self, cell_id: str) -> Cell:
        for cell in self.cells:
            if cell.id == cell_id:
                return cell
        known = ", ".join(c.id for c in self.cells)
        raise PlanError(f"--cell {cell_id}: not a cell of this plan; its cells: {known}")

    def to_json(self) -> dict[str, Any]:
        inputs = asdict(self.inputs)
        return {
            "kbulk_plan": PLAN_VERSION,
            "plan_id": self.plan_id,
            "inputs": inputs,
            "digests": dict(self.digests),
            "args": self.inputs.args(),
            "cells": [c.to_json() for c in self.cells],
        }


def repo_relative(path: Path) -> str:
    """``path`` relative to the repository when it is inside it (CI jobs check the
    repository out elsewhere), else absolute."""
    resolved = path.resolve() if path.is_absolute() else (Path.cwd() / path).resolve()
    try:
        return resolved.relative_to(REPO_ROOT.resolve()).as_posix()
    except ValueError:
        return str(resolved)


def _resolve(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else REPO_ROOT / p


def _label(text: str) -> str:
    return _ID_SAFE.sub("-", text.lower()).strip("-.") or "x"


def _series_labels(series: list[str]) -> dict[str, str]:
    """A short, unique label per series directory (its name; a counter on a clash)."""
    labels: dict[str, str] = {}
    for i, directory in enumerate(series):
        label = _label(Path(directory).name)
        labels[directory] = label if label not in labels.values() else f"{label}-{i}"
    return labels


def make_plan(inputs: PlanInputs, spec: RunSpec) -> Plan:
    """Expand ``inputs`` (already checked against ``spec``) into cells."""
    arches = list(inputs.arches) or list(spec.arches)
    for arch in arches:
        if arch not in ARCHES:
            raise PlanError(f"--arch {arch}: unknown; known: {', '.join(sorted(ARCHES))}")
    if inputs.mode not in ("run", "ab"):
        raise PlanError(f"plan mode {inputs.mode!r}: 'run' or 'ab'")
    series = list(inputs.series)
    if not series and spec.series is not None:
        series = [repo_relative(spec.series)]
    if inputs.reps < 1:
        raise PlanError(f"--reps {inputs.reps}: needs at least 1")
    if inputs.mode == "ab" and (len(series) != 1 or inputs.upto or inputs.baseline):
        raise PlanError(
            "--ab takes exactly one series (the patched side; the baseline is implied) "
            "and no --upto/--baseline"
        )
    if inputs.mode == "run" and inputs.reps != 1:
        raise PlanError("--reps goes with --ab (repeated boots are for A/B comparisons)")
    if inputs.mode == "run" and not series and not inputs.baseline:
        raise PlanError(f"{spec.path}: names no series; give --series DIR or --baseline")
    if any(n < 1 for n in inputs.upto):
        raise PlanError("--upto N: N must be at least 1")
    digests = {"spec": hashlib.sha256(spec.path.read_bytes()).hexdigest()}
    for directory in series:
        try:
            loaded = load_series(_resolve(directory))
        except Exception as e:  # a missing series file, an unreadable patch
            raise PlanError(f"--series {directory}: {e}") from e
        for n in inputs.upto:
            if n > len(loaded.patches):
                raise PlanError(f"--upto {n}: {directory} has only {len(loaded.patches)} patches")
        digests[f"series:{directory}"] = loaded.digest
    canonical = json.dumps(
        {"version": PLAN_VERSION, "inputs": asdict(inputs), "arches": arches, "series": series,
         "digests": digests},
        sort_keys=True,
    )  # fmt: skip
    plan = Plan(inputs, hashlib.sha256(canonical.encode()).hexdigest()[:12], digests)
    labels = _series_labels(series)
    for arch in arches:
        if inputs.mode == "ab":
            for rep in range(inputs.reps):
                for variant in Variant:  # A before B, as `kbulk ab` boots them
                    plan.cells.append(
                        Cell(f"ab-{arch}-r{rep}-{variant}", "ab", arch, series[0],
                             variant=str(variant), repetition=rep)
                    )  # fmt: skip
            continue
        if inputs.baseline:
            plan.cells.append(Cell(f"run-{arch}-baseline", "run", arch, None))
        for directory in series:
            for upto in [*inputs.upto, None] if inputs.upto else [None]:
                suffix = f"-p{upto}" if upto is not None else ""
                cell_id = f"run-{arch}-{labels[directory]}{suffix}"
                plan.cells.append(Cell(cell_id, "run", arch, directory, upto=upto))
    return plan


def read_plan(path: Path) -> Plan:
    """A plan written by `kbulk plan --format json`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("kbulk_plan") != PLAN_VERSION:
            raise PlanError(f"{path}: not a kbulk plan (version {PLAN_VERSION})")
        raw = data["inputs"]
        inputs = PlanInputs(
            **{
                **raw,
                "arches": tuple(raw.get("arches", ())),
                "series": tuple(raw.get("series", ())),
                "upto": tuple(raw.get("upto", ())),
                "cmdline": tuple(raw.get("cmdline", ())),
            }
        )
        return Plan(
            inputs,
            str(data["plan_id"]),
            {str(k): str(v) for k, v in data.get("digests", {}).items()},
            [Cell.from_json(c) for c in data["cells"]],
        )
    except PlanError:
        raise
    except OSError as e:
        raise PlanError(f"--plan {path}: {e.strerror}") from e
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise PlanError(f"--plan {path}: not a kbulk plan ({type(e).__name__}: {e})") from e
