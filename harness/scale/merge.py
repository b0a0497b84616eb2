"""`kbulk merge CELL_DIR... --out DIR`: many cells of one plan as one result directory.

The merged directory is what the plan run whole on one machine would have
written: one results.json (runs in plan order, the A/B slots kept, so `kbulk
compare DIR` takes it as it takes a `kbulk ab` directory), junit.xml and
summary.md; each cell's console logs are copied under ``cells/<cell id>/``.

Cells are refused when they cannot be one run: another plan, another host kind,
another kernel source or series content, another config for the same kernel, an
incomplete cell, a cell given twice, cells of the plan missing. Each refusal
names the cell directory and the field; ``--force`` merges anyway and records
every refusal it overrode in ``meta.merged.warnings`` and at the top of
summary.md.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from harness.fsutil import atomic_write_text, swap_in_dir
from harness.record.junit import write_junit
from harness.record.meta import MergeMeta, RunMeta, utc_now
from harness.record.run import ArchRun
from harness.record.schema import ResultsFormatError
from harness.record.status import RunStatus, worst
from harness.record.store import ResultDir, load_json
from harness.report.summary import render_summary

__all__ = ["CellDir", "MergeError", "MergeRefused", "load_cells", "merge_cells"]

_COPIED_SKIP = {"results.json", "junit.xml", "summary.md"}


class MergeError(Exception):
    """A directory that is not a cell (usage: exit 2)."""


class MergeRefused(Exception):
    """The cells cannot be one run (exit 8 unless --force)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass
class CellDir:
    path: Path
    meta: RunMeta
    runs: list[ArchRun]

    @property
    def cell_id(self) -> str:
        assert self.meta.cell is not None
        return self.meta.cell.id


def load_cells(dirs: list[Path]) -> list[CellDir]:
    cells = []
    for directory in dirs:
        results = directory / ResultDir.RESULTS_JSON
        if not results.is_file():
            raise MergeError(f"{directory}: no results.json (not a cell directory)")
        try:
            meta, runs = load_json(results)
        except ResultsFormatError as e:
            raise MergeError(str(e)) from e
        if meta.cell is None:
            raise MergeError(
                f"{directory}: not a cell (results.json has no meta.cell); cells are "
                "written by `kbulk run --cell ID --out DIR`"
            )
        cells.append(CellDir(directory, meta, runs))
    return cells


def _host_kind(meta: RunMeta) -> dict[str, object]:
    """What must match between hosts: the hostname may differ (CI runners), the kind
    of machine may not (its CPU count, architecture and OS decide times)."""
    host = meta.host
    if host is None:
        return {"machine": None, "cpus": None, "platform": None}
    return {"machine": host.machine, "cpus": host.cpus, "platform": host.platform}


def _host_field(name: str, cell: CellDir) -> object:
    return _host_kind(cell.meta)[name]


def _source_field(name: str, cell: CellDir) -> object:
    return getattr(cell.meta.source, name, None)


def _odd_ones(cells: list[CellDir], field: str, value: Callable[[CellDir], object]) -> list[str]:
    """Cells whose ``field`` differs from the value most cells have (the first cell's
    on a tie), each named with both values."""
    values = [value(c) for c in cells]
    counts: dict[str, int] = {}
    for v in values:
        counts[repr(v)] = counts.get(repr(v), 0) + 1
    common = max(counts.values())
    reference = next(v for v in values if counts[repr(v)] == common)
    holders = [c for c, v in zip(cells, values, strict=True) if v == reference]
    return [
        f"{cell.path}: {field} = {v!r} differs from {reference!r} "
        f"({len(holders)} of {len(cells)} cells, e.g. {holders[0].path})"
        for cell, v in zip(cells, values, strict=True)
        if v != reference
    ]


def check_cells(cells: list[CellDir]) -> list[str]:
    """Every reason these cells are not one run, each naming a cell directory and a field."""
    problems: list[str] = []
    first = cells[0]
    seen: dict[str, Path] = {}
    for cell in cells:
        if cell.cell_id in seen:
            problems.append(f"{cell.path}: cell {cell.cell_id} is also {seen[cell.cell_id]}")
        seen[cell.cell_id] = cell.path
        if cell.meta.complete is not True:
            problems.append(f"{cell.path}: incomplete (meta.complete is not true): rerun the cell")
    problems += _odd_ones(cells, "meta.cell.plan_id", lambda c: c.meta.cell and c.meta.cell.plan_id)
    for name in ("machine", "cpus", "platform"):
        problems += _odd_ones(cells, f"meta.host.{name}", partial(_host_field, name))
    for name in ("origin", "version", "sha256"):
        problems += _odd_ones(cells, f"meta.source.{name}", partial(_source_field, name))
    problems += _odd_ones(cells, "meta.spec_name", lambda c: c.meta.spec_name)
    # The same series (or prefix) must be the same patches in every cell using it.
    by_series: dict[tuple[str | None, int | None], CellDir] = {}
    for cell in cells:
        assert cell.meta.cell is not None
        slot: tuple[str | None, int | None] = (cell.meta.cell.series, cell.meta.cell.upto)
        if cell.meta.mode == "ab":
            slot = ("ab", None)  # every A/B cell records the patched side's series
        other = by_series.setdefault(slot, cell)
        mine = cell.meta.series.sha256 if cell.meta.series else None
        theirs = other.meta.series.sha256 if other.meta.series else None
        if mine != theirs:
            problems.append(
                f"{cell.path}: meta.series.sha256 = {mine!r} differs from {theirs!r} in "
                f"{other.path} (same series in the plan)"
            )
    # The same kernel on the same arch must have been built from the same config.
    configs: dict[tuple[str, str], tuple[str | None, Path]] = {}
    for cell in cells:
        for i, run in enumerate(cell.runs):
            if run.build is None:
                continue
            digest, where = configs.setdefault(
                (run.arch, run.kernel), (run.build.config_digest, cell.path)
            )
            if run.build.config_digest != digest:
                problems.append(
                    f"{cell.path}: runs[{i}].build.config_digest = "
                    f"{run.build.config_digest!r} differs from {digest!r} in {where} "
                    f"({run.arch} {run.kernel})"
                )
    plan_cells = first.meta.cell.plan_cells if first.meta.cell else []
    missing = [c for c in plan_cells if c not in seen]
    if missing:
        problems.append(
            f"cells of plan {first.meta.cell.plan_id if first.meta.cell else '?'} not given: "
            f"{', '.join(missing)}"
        )
    return problems


def merged_meta(cells: list[CellDir], argv: list[str], merge: MergeMeta) -> RunMeta:
    """The first cell's meta (plan inputs, source, kernels, trade-offs are the plan's),
    with the arches of all cells and the merge recorded. ``series`` is kept only when
    every cell applied the same one (A/B cells all record the patched side's); a run
    plan over several series or prefixes has each cell's in ``merged.cells``."""
    base = replace(cells[0].meta)
    arches: list[str] = []
    for cell in cells:
        for arch in cell.meta.arches or []:
            if arch not in arches:
                arches.append(arch)
    base.command_line = list(argv)
    base.arches = arches
    base.cell = None
    base.merged = merge
    base.started = min((c.meta.started for c in cells if c.meta.started), default=None)
    base.finished = max((c.meta.finished for c in cells if c.meta.finished), default=None)
    base.kernels = {}
    for cell in cells:
        base.kernels.update(cell.meta.kernels or {})
    base.kernels = base.kernels or None
    if len({c.meta.series.sha256 if c.meta.series else None for c in cells}) > 1:
        base.series, base.kernel = None, None
    return base


def _copy_tree(src: Path, dest: Path) -> None:
    """The cell's logs and guest images (hard links where the filesystem allows)."""
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_dir() or (len(rel.parts) == 1 and rel.name in _COPIED_SKIP):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)


def merge_cells(
    dirs: list[Path],
    out: Path,
    *,
    force: bool = False,
    argv: list[str] | None = None,
    warn: Callable[[str], None] = print,
) -> tuple[ResultDir, RunStatus]:
    """Merge cell directories into ``out`` (an earlier merge there is replaced
    atomically, as a cell directory is); the merged directory and the worst status."""
    cells = load_cells(dirs)
    problems = check_cells(cells)
    if problems and not force:
        raise MergeRefused(problems)
    for problem in problems:
        warn(f"forced: {problem}")
    plan_ids = {c.meta.cell.plan_id for c in cells if c.meta.cell is not None}
    order = cells[0].meta.cell.plan_cells if cells[0].meta.cell else []
    rank = {cell_id: i for i, cell_id in enumerate(order)}
    cells.sort(key=lambda c: (rank.get(c.cell_id, len(rank)), c.cell_id))
    merge = MergeMeta(
        plan_id=plan_ids.pop() if len(plan_ids) == 1 else None,
        cells=[
            {
                "id": c.cell_id,
                "dir": str(c.path),
                "run_id": c.meta.run_id,
                "hostname": c.meta.host.hostname if c.meta.host else None,
                "series_sha256": c.meta.series.sha256 if c.meta.series else None,
            }
            for c in cells
        ],
        forced=bool(problems),
        warnings=[f"merged with --force: {p}" for p in problems],
    )
    meta = merged_meta(cells, argv or [], merge)
    out = out.absolute()
    tmp = out.parent / f".{out.name}.tmp-{secrets.token_hex(3)}"
    results = ResultDir.at(tmp, meta=meta, run_id=out.name)
    runs: list[ArchRun] = []
    for cell in cells:
        prefix = Path("cells") / cell.cell_id
        _copy_tree(cell.path, tmp / prefix)
        for run in cell.runs:
            log = (prefix / run.console_log).as_posix() if run.console_log else None
            runs.append(replace(run, console_log=log))
    results.runs = runs
    results.meta.complete = all(c.meta.complete is True for c in cells)
    results.meta.finished = results.meta.finished or utc_now()
    results.save()
    write_junit(results.junit_xml, runs, run_dir=results.path)
    atomic_write_text(results.path / "summary.md", merge_summary(runs, meta))
    swap_in_dir(tmp, out)
    results.path = out
    return results, worst(r.status for r in runs)


def merge_summary(runs: list[ArchRun], meta: RunMeta) -> str:
    """summary.md of the merged run, led by what --force let through."""
    head = ["# kbulk merged cells", ""]
    if meta.merged is not None:
        if meta.merged.warnings:
            head += ["**Warning: cells merged with --force; they are not one run:**", ""]
            head += [f"- {w.removeprefix('merged with --force: ')}" for w in meta.merged.warnings]
            head.append("")
        plan = meta.merged.plan_id or "several"
        head.append(f"- plan {plan}, {len(meta.merged.cells)} cells:")
        for cell in meta.merged.cells:
            series = str(cell.get("series_sha256") or "none")[:12]
            head.append(f"  - {cell['id']} (series {series}, host {cell.get('hostname')})")
        if meta.series is None:
            head.append("- the cells applied different series: each run's kernel says which")
        head.append("")
    body = render_summary(runs, meta)
    return "\n".join(head) + "\n" + body.removeprefix("# kbulk run summary\n")
