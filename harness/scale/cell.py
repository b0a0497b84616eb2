"""`kbulk run --cell ID --out DIR`: one cell of a plan into a fixed directory.

The directory has no timestamp (a CI job knows where its artifact is) and is
replaced atomically: the cell runs into a fresh temporary directory beside it,
which is then swapped in with one ``renameat2(RENAME_EXCHANGE)`` (or, where that
is missing, two renames), so a reader sees the old complete cell or the new one,
and a rerun of a cell replaces it. A cell killed mid-run leaves only its
temporary directory, removed by the next run of the same cell.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import replace
from pathlib import Path

from harness.ab import run_ab
from harness.fsutil import swap_in_dir
from harness.paths import REPO_ROOT
from harness.pipeline import Pipeline, RunOptions
from harness.progress import Reporter
from harness.record.meta import CellMeta
from harness.record.run import AbSlot
from harness.record.status import RunStatus, Variant
from harness.record.store import ResultDir
from harness.scale.plan import Cell, Plan

__all__ = ["run_cell"]

_TMP_MARK = ".tmp-"  # <parent>/.<name>.tmp-<random>: a cell being written


def _cell_options(base: RunOptions, plan: Plan, cell: Cell, path: Path) -> RunOptions:
    series = Path(cell.series) if cell.series is not None else None
    if series is not None and not series.is_absolute():
        series = REPO_ROOT / series
    return replace(
        base,
        arches=[cell.arch],
        series_override=series,
        no_series=cell.series is None,
        series_upto=cell.upto,
        result_path=path,
        cell=CellMeta(cell.id, plan.plan_id, [c.id for c in plan.cells], cell.series, cell.upto),
    )


def run_cell(
    plan: Plan, cell: Cell, out: Path, base: RunOptions, reporter: Reporter
) -> tuple[Path, RunStatus]:
    """Run ``cell`` into ``out`` (replacing a previous run of it); its status."""
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}{_TMP_MARK}*"):  # a killed earlier run's
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}{_TMP_MARK}{secrets.token_hex(3)}"
    opts = _cell_options(base, plan, cell, tmp)
    pipeline = Pipeline(opts, reporter)
    results: ResultDir
    if cell.mode == "ab":
        assert cell.variant is not None and cell.repetition is not None
        slot = AbSlot(Variant(cell.variant), cell.repetition)
        results, status = run_ab(pipeline, plan.inputs.reps, slots={slot})
    else:
        results, status = pipeline.run()
    swap_in_dir(results.path, out)
    return out, status
