"""`kbulk run --cell ID --out DIR`: one cell of a plan into a fixed directory.

The directory has no timestamp (a CI job knows where its artifact is) and is
replaced atomically: the cell runs into a fresh temporary directory beside it,
which is then swapped in with one ``renameat2(RENAME_EXCHANGE)`` (or, where that
is missing, two renames), so a reader sees the old complete cell or the new one,
and a rerun of a cell replaces it. A cell killed mid-run leaves only its
temporary directory, removed by the next run of the same cell.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
import shutil
from dataclasses import replace
from pathlib import Path

from harness.ab import run_ab
from harness.paths import REPO_ROOT
from harness.pipeline import Pipeline, RunOptions
from harness.progress import Reporter
from harness.record.meta import CellMeta
from harness.record.run import AbSlot
from harness.record.status import RunStatus, Variant
from harness.record.store import ResultDir
from harness.scale.plan import Cell, Plan

__all__ = ["run_cell"]

_TMP_MARK = ".tmp-"


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
    _swap_in(results.path, out)
    return out, status


def _swap_in(new: Path, target: Path) -> None:
    """Make ``new`` be ``target``; an existing ``target`` is replaced, never half-way."""
    if target.exists() and _exchange(new, target):
        shutil.rmtree(new)  # now holds the previous run
        return
    if target.exists():  # no renameat2: move the old one aside first
        old = target.parent / f".{target.name}{_TMP_MARK}old-{secrets.token_hex(3)}"
        os.rename(target, old)
        os.rename(new, target)
        shutil.rmtree(old)
        return
    os.rename(new, target)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where it is not available."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    rc = renameat2(
        _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), ctypes.c_uint(_RENAME_EXCHANGE)
    )
    if rc != 0:
        errno = ctypes.get_errno()
        if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: filesystem cannot
            return False
        raise OSError(errno, os.strerror(errno), str(b))
    return True
