"""`kbulk run --cell ID --out DIR`: one cell of a plan into a fixed directory.

The directory has no timestamp (a CI job knows where its artifact is) and is
replaced atomically: the cell runs into a fresh temporary directory beside it,
which is then swapped in with one ``renameat2(RENAME_EXCHANGE)`` (or, where that
is missing, two renames), so a reader sees the old complete cell or the new one,
and a rerun of a cell replaces it. A cell killed mid-run leaves only its
temporary directory, removed by the next run of the same cell.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import asdict, replace
from pathlib import Path

from harness.ab import run_ab
from harness.boot.guest.initramfs import build_initramfs
from harness.errors import failure
from harness.fsutil import atomic_write_text, swap_in_dir
from harness.kernel.arch import get_arch
from harness.kernel.patches import apply_series
from harness.paths import REPO_ROOT
from harness.pipeline import (
    Pipeline,
    RunOptions,
    boot_cmdline,
    check_build,
    kernel_label,
    obtain_source,
    patched_tree,
)
from harness.progress import Reporter
from harness.record.meta import CellMeta
from harness.record.run import AbSlot
from harness.record.status import RunStatus, Variant
from harness.record.store import ResultDir
from harness.scale.plan import Cell, Plan

__all__ = ["build_cell", "run_cell"]

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


def build_cell(
    plan: Plan, cell: Cell, out: Path, base: RunOptions, reporter: Reporter
) -> tuple[Path, RunStatus]:
    """`--build-only`: the cell's kernel and guest initramfs, for a lab that boots them
    itself (LAVA: `kbulk plan --format lava` points at ``<url>/<cell>/kernel`` and
    ``initramfs.cpio``). ``out`` gets ``kernel``, ``initramfs.cpio``, ``cmdline`` and
    ``build.json``; nothing is booted. Swapped in atomically like a cell directory."""
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}{_TMP_MARK}{secrets.token_hex(3)}"
    tmp.mkdir()
    opts = _cell_options(base, plan, cell, tmp)
    pipeline = Pipeline(opts, reporter)
    arch = get_arch(cell.arch)
    try:
        source = obtain_source(opts, reporter)
        if cell.variant == str(Variant.BASELINE):
            tree = apply_series(source, None, opts.cache / "work", reporter.info)
        else:
            tree = patched_tree(opts, source, reporter)
        result, info = pipeline.build_kernel(arch, tree)
        check_build(result)
        steps = pipeline.build_modules(arch, tree, result)
        assert result.image is not None
        shutil.copyfile(result.image, tmp / "kernel")
        build_initramfs(arch, steps, tmp / "initramfs.cpio", opts.cache / "guest")
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        found = failure(e, None)
        reporter.error(found.message)
        return out, found.status
    cmdline = " ".join([f"console={arch.console}", *boot_cmdline(opts)])
    atomic_write_text(tmp / "cmdline", cmdline + "\n")
    record = {
        "cell": asdict(opts.cell) if opts.cell else None,
        "kernel": kernel_label(tree),
        "arch": arch.name,
        "build": asdict(info),
        "cmdline": cmdline,
    }
    atomic_write_text(tmp / "build.json", json.dumps(record, indent=2) + "\n")
    swap_in_dir(tmp, out)
    return out, RunStatus.PASS
