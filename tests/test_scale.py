"""kbulk plan / run --cell / merge without booting: cells and their IDs, the golden
GitLab / GitHub / LAVA forms, merging (refusals name the cell directory and the
field; merged cells compare exactly as the run they came from), atomic cell
directories. The real runs are in tests/test_gitlab_local.py (gitlab-ci-local)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from runs import comparison_figures

from harness.compare_cmd import run_compare
from harness.fsutil import swap_in_dir
from harness.paths import REPO_ROOT
from harness.record.meta import CellMeta, HostMeta, SourceMeta
from harness.record.run import ArchRun
from harness.record.store import load_json, write_json
from harness.scale.merge import MergeError, MergeRefused, merge_cells
from harness.scale.plan import PlanError, PlanInputs, make_plan, read_plan
from harness.spec import load_spec

DATA = Path(__file__).parent / "data" / "plan"
AB_SPEC = "tests/data/plan/ab.yaml"
KUNIT_SPEC = "tests/data/plan/kunit.yaml"
UPDATE = os.environ.get("KBULK_UPDATE_GOLDEN") == "1"


def kbulk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip


def plan_of(**kw: object) -> object:
    inputs = PlanInputs(**{"spec": AB_SPEC, **kw})  # type: ignore[arg-type]
    return make_plan(inputs, load_spec(REPO_ROOT / inputs.spec, REPO_ROOT))


# ------------------------------------------------------------------------ plans


def test_ab_plan_two_arches_two_reps_is_eight_cells_with_stable_ids() -> None:
    plan = plan_of(mode="ab", reps=2)
    assert [c.id for c in plan.cells] == [
        "ab-x86_64-r0-baseline", "ab-x86_64-r0-patched",
        "ab-x86_64-r1-baseline", "ab-x86_64-r1-patched",
        "ab-arm64-r0-baseline", "ab-arm64-r0-patched",
        "ab-arm64-r1-baseline", "ab-arm64-r1-patched",
    ]  # fmt: skip
    again = plan_of(mode="ab", reps=2)
    assert again.plan_id == plan.plan_id and again.cells == plan.cells


def test_plan_id_follows_the_run_definition_and_series_contents(tmp_path: Path) -> None:
    series = tmp_path / "series"
    shutil.copytree(DATA / "series", series)
    first = plan_of(mode="ab", reps=1, series=(str(series),))
    assert plan_of(mode="ab", reps=1, series=(str(series),)).plan_id == first.plan_id
    patch = series / "0002-second.patch"
    patch.write_text(patch.read_text() + "\n")  # same names, other bytes
    assert plan_of(mode="ab", reps=1, series=(str(series),)).plan_id != first.plan_id
    assert plan_of(mode="ab", reps=2, series=(str(series),)).plan_id != first.plan_id


def test_run_plan_expands_series_prefixes_and_baseline() -> None:
    plan = plan_of(spec=KUNIT_SPEC, arches=("x86_64",), upto=(1,), baseline=True)
    assert [(c.id, c.series, c.upto) for c in plan.cells] == [
        ("run-x86_64-baseline", None, None),
        ("run-x86_64-series-p1", "tests/data/plan/series", 1),
        ("run-x86_64-series", "tests/data/plan/series", None),
    ]


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"mode": "ab", "reps": 0}, "--reps 0"),
        ({"mode": "run", "reps": 2}, "--reps goes with --ab"),
        ({"mode": "ab", "upto": (1,)}, "--ab takes exactly one series"),
        ({"upto": (3,)}, "--upto 3: tests/data/plan/series has only 2 patches"),
        ({"series": ("tests/data/plan/nothing",)}, "--series tests/data/plan/nothing"),
    ],
)
def test_plan_errors_name_the_option(kw: dict[str, object], words: str) -> None:
    with pytest.raises(PlanError, match=words.replace("+", r"\+")):
        plan_of(**kw)


def test_plan_file_round_trips_and_names_unknown_cells(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    proc = kbulk("plan", "--spec", AB_SPEC, "--ab", "--reps", "2", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    plan = read_plan(out)
    assert plan.plan_id == plan_of(mode="ab", reps=2).plan_id
    with pytest.raises(PlanError, match="--cell nope: not a cell of this plan"):
        plan.cell("nope")
    bad = tmp_path / "bad.json"
    bad.write_text('{"kbulk_plan": 1}')
    with pytest.raises(PlanError, match=f"--plan {bad}: not a kbulk plan"):
        read_plan(bad)


def test_run_cell_refuses_a_plan_that_changed(tmp_path: Path) -> None:
    proc = kbulk(
        "run", "--cell", "ab-x86_64-r0-baseline", "--out", str(tmp_path / "c"),
        "--expect-plan", "000000000000", "--spec", AB_SPEC, "--ab", "--reps", "2",
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--expect-plan 000000000000: these inputs give plan" in proc.stderr
    assert not (tmp_path / "c").exists()


# ------------------------------------------------------------------ golden files

GOLDEN = [
    ("ab-reps2.json", ["--spec", AB_SPEC, "--ab", "--reps", "2", "--format", "json"]),
    ("ab-reps2.gitlab-ci.yml", ["--spec", AB_SPEC, "--ab", "--reps", "2", "--format", "gitlab"]),
    ("ab-reps2.github-matrix.json",
     ["--spec", AB_SPEC, "--ab", "--reps", "2", "--format", "github"]),
    ("ab-reps1-x86_64.lava.yaml",
     ["--spec", AB_SPEC, "--ab", "--reps", "1", "--arch", "x86_64", "--format", "lava",
      "--artifacts-url", "https://lab.example/kbulk"]),
    ("kunit-prefixes.lava.yaml",
     ["--spec", KUNIT_SPEC, "--upto", "1", "--arch", "arm64", "--format", "lava",
      "--artifacts-url", "https://lab.example/kbulk"]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "args"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_plan_output_matches_golden_file(name: str, args: list[str]) -> None:
    proc = kbulk("plan", *args)
    assert proc.returncode == 0, proc.stderr
    golden = DATA / "golden" / name
    if UPDATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(proc.stdout)
    assert proc.stdout == golden.read_text(), f"regenerate with KBULK_UPDATE_GOLDEN=1 ({name})"


def test_lava_jobs_monitor_the_init_markers_and_ktap() -> None:
    jobs = list(yaml.safe_load_all((DATA / "golden" / "kunit-prefixes.lava.yaml").read_text()))
    assert len(jobs) == 2
    for job in jobs:
        assert job["device_type"] == "qemu" and job["context"]["arch"] == "arm64"
        (test,) = [a["test"] for a in job["actions"] if "test" in a]
        kunit, modules = test["monitors"]
        assert (kunit["start"], kunit["end"]) == ("KTAP version 1", "kbulk-init: start")
        assert (modules["start"], modules["end"]) == ("kbulk-init: start", "kbulk-init: done")
        kernel = job["actions"][0]["deploy"]["images"]["kernel"]
        assert "console=ttyAMA0" in kernel["image_arg"]
        assert "kunit.filter_glob=page_alloc_bulk*" in kernel["image_arg"]
    icount = yaml.safe_load_all((DATA / "golden" / "ab-reps1-x86_64.lava.yaml").read_text())
    assert all("-icount shift=0,sleep=off" in j["context"]["extra_options"] for j in icount)


def test_lava_needs_an_absolute_artifacts_url() -> None:
    proc = kbulk("plan", "--spec", AB_SPEC, "--ab", "--format", "lava")
    assert proc.returncode == 2 and "--artifacts-url" in proc.stderr
    proc = kbulk("plan", "--spec", AB_SPEC, "--ab", "--format", "lava", "--artifacts-url", "x/y")
    assert proc.returncode == 2 and "an absolute URL" in proc.stderr


def test_generated_child_pipeline_is_schema_valid(tmp_path: Path) -> None:
    child = tmp_path / "child.yml"
    child.write_text((DATA / "golden" / "ab-reps2.gitlab-ci.yml").read_text())
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci",
         str(child)], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = yaml.safe_load(child.read_text())
    cells = [k for k, v in jobs.items() if isinstance(v, dict) and v.get("stage") == "cells"]
    assert len(cells) == 8
    assert all(jobs[c]["timeout"] for c in cells) and jobs["merge"]["timeout"]
    assert [n["job"] for n in jobs["merge"]["needs"]] == cells
    assert jobs["merge"]["artifacts"]["reports"]["junit"] == "merged/junit.xml"


# ------------------------------------------------------------------------ merge

WHOLE = REPO_ROOT / "tests" / "data" / "results-v1" / "ab"


def split_into_cells(whole: Path, root: Path, plan_id: str = "abc123abc123") -> list[Path]:
    """The boots of a whole `kbulk ab` directory as the cells `kbulk run --cell` writes:
    one boot each, meta.cell naming the cell and the plan."""
    meta, runs = load_json(whole / "results.json")
    meta.source = meta.source or SourceMeta("debian:linux-source-7.2=7.2.13-1", "7.2.13", "f" * 64)
    ids = [f"ab-{r.arch}-r{r.repetition}-{r.ab.variant if r.ab else '?'}" for r in runs]
    dirs = []
    for cell_id, run in zip(ids, runs, strict=True):
        cell = root / cell_id
        cell.mkdir(parents=True)
        cell_meta = replace(meta, complete=True, run_id=cell_id)
        cell_meta.cell = CellMeta(cell_id, plan_id, ids, "patches/v7.2")
        if run.console_log is not None:  # the fixture keeps no logs: one of its own
            (cell / run.console_log).parent.mkdir(parents=True, exist_ok=True)
            (cell / run.console_log).write_text(f"console of {cell_id}\n")
        write_json(cell / "results.json", [run], cell_meta)
        dirs.append(cell)
    return dirs


def compare_json(directory: Path) -> dict[str, object]:
    code = run_compare([directory], argv=["kbulk", "compare"], info=lambda s: None,
                       error=lambda s: None)  # fmt: skip
    return {
        "exit": code,
        **comparison_figures(json.loads((directory / "compare.json").read_text())),
    }


def test_merged_cells_compare_exactly_as_the_whole_run(tmp_path: Path, no_fsync: None) -> None:
    whole = tmp_path / "whole"
    shutil.copytree(WHOLE, whole)
    cells = split_into_cells(whole, tmp_path / "cells")
    merged, _ = merge_cells(list(reversed(cells)), tmp_path / "merged", argv=["kbulk"])
    _, whole_runs = load_json(whole / "results.json")
    meta, runs = load_json(merged.results_json)
    assert [(r.arch, r.ab) for r in runs] == [(r.arch, r.ab) for r in whole_runs]  # plan order
    assert meta.merged is not None and not meta.merged.forced and meta.complete
    assert meta.mode == "ab" and meta.kernels
    assert compare_json(merged.path) == compare_json(whole)
    assert (merged.path / "junit.xml").is_file()
    assert "4 cells" in (merged.path / "summary.md").read_text()
    for run, cell in zip(runs, cells, strict=True):
        assert run.console_log == f"cells/{cell.name}/{run.arch}/{Path(run.console_log).name}"
        assert (merged.path / run.console_log).read_text() == f"console of {cell.name}\n"


def _edit(cell: Path, change: object) -> None:
    meta, runs = load_json(cell / "results.json")
    change(meta, runs)  # type: ignore[operator]
    write_json(cell / "results.json", runs, meta)


def _host_cpus(meta: object, runs: list[ArchRun]) -> None:
    meta.host = replace(meta.host or HostMeta(), cpus=64)  # type: ignore[attr-defined]


def _source(meta: object, runs: list[ArchRun]) -> None:
    meta.source = replace(meta.source, sha256="0" * 64)  # type: ignore[attr-defined]


def _config(meta: object, runs: list[ArchRun]) -> None:
    runs[0].build = replace(runs[0].build, config_digest="other")  # type: ignore[type-var]


def _plan(meta: object, runs: list[ArchRun]) -> None:
    meta.cell = replace(meta.cell, plan_id="fedcba987654")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_host_cpus, "meta.host.cpus = 64 differs from 2 (3 of 4 cells"),
        (_source, "meta.source.sha256"),
        (_config, "runs[0].build.config_digest = 'other'"),
        (_plan, "meta.cell.plan_id = 'fedcba987654'"),
    ],
)
def test_mismatched_cell_is_refused_naming_dir_and_field(
    tmp_path: Path, no_fsync: None, change: object, field: str
) -> None:
    cells = split_into_cells(WHOLE, tmp_path / "cells")
    _edit(cells[2], change)
    with pytest.raises(MergeRefused) as refused:
        merge_cells(cells, tmp_path / "merged")
    assert any(p.startswith(f"{cells[2]}: {field}") for p in refused.value.problems), refused
    assert not (tmp_path / "merged").exists()
    warnings: list[str] = []
    merged, _ = merge_cells(cells, tmp_path / "merged", force=True, warn=warnings.append)
    meta, _ = load_json(merged.results_json)
    assert meta.merged is not None and meta.merged.forced
    assert any(field in w for w in meta.merged.warnings)
    summary = (merged.path / "summary.md").read_text()
    assert "Warning: cells merged with --force" in summary
    assert field.split(" =")[0] in summary
    run_compare([merged.path], force=True, info=lambda s: None, error=lambda s: None)
    report = (merged.path / "report.md").read_text()
    assert "MERGED WITH --force" in report and field.split(" =")[0] in report


def test_missing_duplicate_and_incomplete_cells_are_refused(tmp_path: Path) -> None:
    cells = split_into_cells(WHOLE, tmp_path / "cells")
    with pytest.raises(MergeRefused, match="not given: ab-x86_64-r1-patched"):
        merge_cells(cells[:3], tmp_path / "m1")
    with pytest.raises(MergeRefused, match="cell ab-x86_64-r0-baseline is also"):
        merge_cells([*cells, cells[0]], tmp_path / "m2")
    _edit(cells[1], lambda meta, runs: setattr(meta, "complete", False))
    with pytest.raises(MergeRefused, match=r"incomplete \(meta.complete is not true\)"):
        merge_cells(cells, tmp_path / "m3")


def test_a_directory_that_is_not_a_cell_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(MergeError, match=r"no results\.json"):
        merge_cells([tmp_path], tmp_path / "out")
    proc = kbulk("merge", str(WHOLE), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "not a cell (results.json has no meta.cell)" in proc.stderr


def test_merge_cli_refusal_exits_8_and_force_exits_with_the_runs_status(tmp_path: Path) -> None:
    cells = split_into_cells(WHOLE, tmp_path / "cells")
    _edit(cells[0], _host_cpus)
    proc = kbulk("merge", *map(str, cells), "--out", str(tmp_path / "m"))
    assert proc.returncode == 8, proc.stderr
    assert f"{cells[0]}: meta.host.cpus" in proc.stderr and "--force" in proc.stderr
    proc = kbulk("merge", *map(str, cells), "--out", str(tmp_path / "m"), "--force")
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------- atomic cell dirs


def test_cell_directory_is_swapped_in_whole(tmp_path: Path) -> None:
    target = tmp_path / "cell"
    first = tmp_path / ".cell.tmp-1"
    first.mkdir()
    (first / "results.json").write_text("first")
    swap_in_dir(first, target)
    assert (target / "results.json").read_text() == "first" and not first.exists()
    second = tmp_path / ".cell.tmp-2"
    second.mkdir()
    (second / "results.json").write_text("second")
    swap_in_dir(second, target)  # a rerun replaces the complete cell
    assert (target / "results.json").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cell"]


def test_a_plan_file_is_emitted_in_another_format_as_computed(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    assert kbulk("plan", "--spec", AB_SPEC, "--ab", "--reps", "2", "-o", str(plan)).returncode == 0
    from_file = kbulk("plan", "--plan", str(plan), "--format", "github")
    direct = kbulk("plan", "--spec", AB_SPEC, "--ab", "--reps", "2", "--format", "github")
    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout == direct.stdout
    assert len(json.loads(from_file.stdout)["include"]) == 8


def test_a_cell_from_a_plan_file_runs_with_the_plans_options(tmp_path: Path) -> None:
    """`kbulk run --plan FILE --cell ID` takes the run definition and options from the
    plan, not the command line's defaults (configs/default.yaml, all suites)."""
    from harness.cli import _run_options, build_parser, plan_run_args
    from harness.progress import Reporter

    plan_file = tmp_path / "plan.json"
    args = ["--spec", KUNIT_SPEC, "--arch", "x86_64", "--no-modules", "--suites", "x*",
            "--cmdline", "no_timer_check", "--timeout", "99"]  # fmt: skip
    assert kbulk("plan", *args, "-o", str(plan_file)).returncode == 0
    parser = build_parser()
    from_file = parser.parse_args(["run", "--plan", str(plan_file), "--cell", "run-x86_64-series",
                                   "--out", str(tmp_path / "c")])  # fmt: skip
    recomputed = parser.parse_args(["run", "--cell", "run-x86_64-series", "--out",
                                    str(tmp_path / "c"), *args])  # fmt: skip
    plan = read_plan(plan_file)
    opts = [_run_options(plan_run_args(a, plan), Reporter(quiet=True))
            for a in (from_file, recomputed)]  # fmt: skip
    assert opts[0] is not None and opts[1] is not None
    for o in opts:
        assert o.spec.path == REPO_ROOT / KUNIT_SPEC and o.suites == "x*" and not o.modules
        assert o.extra_cmdline == ["no_timer_check"] and o.spec.boot.timeout == 99
    assert opts[0].spec == opts[1].spec


def test_a_plan_over_gitlabs_needs_limit_merges_after_the_cells_stage(tmp_path: Path) -> None:
    """GitLab allows 50 `needs` per job: 52 cells are merged by stage order instead."""
    child = tmp_path / "child.yml"
    proc = kbulk("plan", "--spec", AB_SPEC, "--ab", "--reps", "13", "--format", "gitlab",
                 "-o", str(child))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    jobs = yaml.safe_load(child.read_text())
    assert sum(1 for v in jobs.values() if isinstance(v, dict) and v.get("stage") == "cells") == 52
    assert "needs" not in jobs["merge"] and jobs["stages"].index("merge") > 0
    small = yaml.safe_load((DATA / "golden" / "ab-reps2.gitlab-ci.yml").read_text())
    assert len(small["merge"]["needs"]) == 8
