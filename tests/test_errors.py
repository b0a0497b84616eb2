"""One error root, one mapping: each error class gets the same run status whether it
stops `kbulk run`, `kbulk ab` or `kbulk series-check` (stages stubbed at their boundary)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import cli, seriescheck
from harness.ab import run_ab
from harness.boot.guest.initramfs import GuestBuildError
from harness.errors import INTERRUPTED, StageError, failure
from harness.kernel.build import BuildError, BuildResult
from harness.kernel.kconfig import KconfigError
from harness.kernel.patches import PatchedTree, PatchError
from harness.kernel.source import SourceError, SourceTree
from harness.paths import REPO_ROOT
from harness.pipeline import Pipeline, Prepared, RunOptions
from harness.progress import Reporter
from harness.record.run import BuildInfo
from harness.record.status import EXIT_CODES, RunStatus
from harness.spec import load_spec

pytestmark = pytest.mark.usefixtures("no_fsync")

CASES: list[tuple[BaseException, RunStatus]] = [
    (SourceError("no source"), RunStatus.INFRA_ERROR),
    (PatchError("0001 does not apply"), RunStatus.PATCH_FAILURE),
    (KconfigError("x.config:3: bad line"), RunStatus.CONFIG_ERROR),
    (BuildError("configuring failed"), RunStatus.BUILD_FAILURE),
    (GuestBuildError("no static libc"), RunStatus.INFRA_ERROR),
    (seriescheck.SeriesCheckError("work tree busy"), RunStatus.INFRA_ERROR),
    (StageError(RunStatus.BUILD_FAILURE, "module not built"), RunStatus.BUILD_FAILURE),
    (RuntimeError("a bug in the harness"), RunStatus.INFRA_ERROR),
]
IDS = [type(e).__name__ for e, _ in CASES]


def options(tmp_path: Path) -> RunOptions:
    spec = load_spec(REPO_ROOT / "configs" / "default.yaml", REPO_ROOT)
    return RunOptions(spec=spec, results_root=tmp_path / "results", cache=tmp_path / "cache",
                      arches=["x86_64"], modules=False)  # fmt: skip


def tree(tmp_path: Path) -> PatchedTree:
    source = SourceTree(tmp_path / "linux", "7.2.13", "test", "0" * 64)
    return PatchedTree(tmp_path / "linux", source, None, "none")


def prepared(tmp_path: Path) -> Prepared:
    result = BuildResult("x86_64", True, tmp_path / "build", tmp_path / "build.log", 1.0,
                         image=tmp_path / "bzImage")  # fmt: skip
    return Prepared(tree(tmp_path), result, BuildInfo(str(tmp_path), "build.log"), [])


class Raising:
    """A booter (or build stage) that fails with the given exception."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __call__(self, *args: object, **kwargs: object) -> object:
        raise self.exc

    boot = __call__


def stub_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for module in ("harness.pipeline", "harness.ab"):
        monkeypatch.setattr(f"{module}.obtain_source", lambda *a: tree(tmp_path).source)
        monkeypatch.setattr(f"{module}.patched_tree", lambda *a: tree(tmp_path))
    monkeypatch.setattr("harness.ab.apply_series", lambda *a: tree(tmp_path))


@pytest.mark.parametrize(("exc", "status"), CASES, ids=IDS)
def test_the_mapping(exc: BaseException, status: RunStatus) -> None:
    assert failure(exc).status is status


@pytest.mark.parametrize(("exc", "status"), CASES, ids=IDS)
def test_run_build_stage(
    exc: BaseException, status: RunStatus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub_source(monkeypatch, tmp_path)
    monkeypatch.setattr(Pipeline, "build_kernel", Raising(exc))
    results, overall = Pipeline(options(tmp_path), Reporter(quiet=True)).run()
    (run,) = results.runs
    assert (run.status, overall) == (status, status)
    assert str(exc) in run.message


@pytest.mark.parametrize(("exc", "status"), CASES, ids=IDS)
def test_run_source_stage(
    exc: BaseException, status: RunStatus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("harness.pipeline.obtain_source", Raising(exc))
    results, overall = Pipeline(options(tmp_path), Reporter(quiet=True)).run()
    assert [r.status for r in results.runs] == [status] and overall is status


@pytest.mark.parametrize(("exc", "status"), CASES, ids=IDS)
def test_run_and_ab_boot_stage(
    exc: BaseException, status: RunStatus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub_source(monkeypatch, tmp_path)
    monkeypatch.setattr(Pipeline, "prepare", lambda self, *a: prepared(tmp_path))
    opts = options(tmp_path)
    results, _ = Pipeline(opts, Reporter(quiet=True), booter=Raising(exc)).run()
    ab_results, _ = run_ab(Pipeline(opts, Reporter(quiet=True), booter=Raising(exc)), 2)
    assert [r.status for r in results.runs] == [status]
    assert [r.status for r in ab_results.runs] == [status] * 4  # 2 variants x 2 repetitions
    assert results.runs[0].console_log == "x86_64/console.log"


@pytest.mark.parametrize(("exc", "status"), CASES, ids=IDS)
def test_ab_build_stage(
    exc: BaseException, status: RunStatus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub_source(monkeypatch, tmp_path)
    monkeypatch.setattr(Pipeline, "build_kernel", Raising(exc))
    results, overall = run_ab(Pipeline(options(tmp_path), Reporter(quiet=True)), 3)
    assert [r.status for r in results.runs] == [status] * 2  # one failed build per variant
    assert overall is status


@pytest.mark.parametrize(("exc", "status"), CASES, ids=IDS)
def test_series_check_exit_code(
    exc: BaseException, status: RunStatus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seriescheck, "run", Raising(exc))
    code = cli.main(["series-check", "--results", str(tmp_path), "--quiet"])
    assert code == EXIT_CODES[status]


@pytest.mark.parametrize("exc", [BuildError("olddefconfig failed"), PatchError("0002")])
def test_series_check_prefix_status_goes_through_the_mapping(exc: BaseException) -> None:
    status = failure(exc).status
    assert seriescheck.PrefixStatus.of(status).run_status is status


def test_interrupt_is_recorded_then_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stub_source(monkeypatch, tmp_path)
    monkeypatch.setattr(Pipeline, "prepare", lambda self, *a: prepared(tmp_path))
    pipeline = Pipeline(
        options(tmp_path), Reporter(quiet=True), booter=Raising(KeyboardInterrupt())
    )
    with pytest.raises(KeyboardInterrupt):
        run_ab(pipeline, 1)
    (result_dir,) = (tmp_path / "results").iterdir()
    from harness.record.store import load_json

    (run,) = load_json(result_dir / "results.json")[1]
    assert (run.status, run.message) == (RunStatus.INFRA_ERROR, INTERRUPTED)


def test_unexpected_error_points_to_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub_source(monkeypatch, tmp_path)
    monkeypatch.setattr(Pipeline, "build_kernel", Raising(ZeroDivisionError("oops")))
    results, _ = Pipeline(options(tmp_path), Reporter(quiet=True)).run()
    (run,) = results.runs
    log = results.path / "harness-error.log"
    assert run.message.startswith("internal error: ZeroDivisionError: oops")
    assert str(log) in run.message and "Traceback" in log.read_text()
