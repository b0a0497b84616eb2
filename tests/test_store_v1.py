"""results.json schema version 1 (the untyped ``details`` dict) still loads and compares."""

from __future__ import annotations

import json
from pathlib import Path

from harness.compare_cmd import run_compare
from harness.record.run import AbSlot
from harness.record.status import Accel, ExitReason, Variant
from harness.record.store import SCHEMA_VERSION, load_json, write_json
from harness.report.compare import compare, sides_from_dirs


def test_v1_runs_become_typed_records(v1_ab_dir: Path) -> None:
    raw = json.loads((v1_ab_dir / "results.json").read_text())
    assert raw["schema_version"] == 1 and "details" in raw["runs"][0]
    meta, runs = load_json(v1_ab_dir / "results.json")
    assert meta.mode == "ab" and len(runs) == 4
    base, patched = runs[0], runs[1]
    assert base.ab == AbSlot(Variant.BASELINE, 0) and patched.ab == AbSlot(Variant.PATCHED, 0)
    assert (base.patched, patched.patched) == (False, True)
    assert (base.series, patched.series) == (None, "1fc5a8998240")
    assert patched.build is not None and patched.boot is not None
    assert patched.build.config_digest == "9c3d5e7f1a2b" + "1" * 52
    assert patched.build.image_sha256 == "b" * 64
    assert patched.build.make_argv[0] == "make" and patched.build.make_argv[-1] == "vmlinux"
    boot = patched.boot
    assert (boot.accel, boot.memory, boot.smp) == (Accel.TCG, "1G", 2)
    # the shell-quoted v1 string is split once, here, into the argv list
    assert boot.qemu_argv[0] == "qemu-system-x86_64" and "-append" in boot.qemu_argv
    assert boot.cmdline == "console=ttyS0 panic=-1 kunit.filter_glob=page_alloc_bulk*"
    assert boot.exit_reason is ExitReason.COMPLETED
    assert "using TCG" in boot.accel_reason
    assert patched.module_steps == {"kbulk_stress": 0, "kbulk_bench": 0}


def test_v1_directory_compares(v1_ab_dir: Path) -> None:
    cmp = compare(*sides_from_dirs([v1_ab_dir], []))
    (arch,) = cmp.arches
    assert [r.run.repetition for r in arch.b] == [0, 1]
    # baseline and patched configs differ only by the series fragments: a note
    assert [(m.field, m.severity) for m in cmp.mismatches] == [("config", "note")]
    fill = next(m for m in arch.metrics if m.case == "gfp_kernel_order0" and m.key == "fill_rate")
    assert fill.verdict == "better"


def test_kbulk_compare_reads_v1_and_v2_side_by_side(v1_ab_dir: Path, tmp_path: Path) -> None:
    meta, runs = load_json(v1_ab_dir / "results.json")
    v2 = tmp_path / "v2"
    v2.mkdir()
    write_json(v2 / "results.json", [r for r in runs if r.patched], meta)
    assert json.loads((v2 / "results.json").read_text())["schema_version"] == SCHEMA_VERSION == 2
    lines: list[str] = []
    code = run_compare(
        [v1_ab_dir, v2], baseline_label="v7.2.13", out=tmp_path / "out", info=lines.append,
        error=lines.append,
    )  # fmt: skip
    assert code == 0, lines
    report = (tmp_path / "out" / "report.md").read_text()
    assert "b" * 64 in report and "qemu-system-x86_64" in report
