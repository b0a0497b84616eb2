"""The bisect run: the series' incremental work tree (series-check's, moved to each
prefix the search asks for), one build per prefix with series-check's prefix build,
the pipeline's module build and boot, and the condition's verdict."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.boot.stage import HostChecked
from harness.errors import failure
from harness.kernel.arch import Arch, get_arch
from harness.kernel.build import BuildResult, KernelBuilder
from harness.kernel.patches import PatchedTree, Series, load_series
from harness.kernel.source import SourceTree, sha256_file
from harness.pipeline import (
    Pipeline,
    Prepared,
    RunOptions,
    config_request,
    kernel_label,
    obtain_source,
    series_meta,
)
from harness.progress import Reporter
from harness.record.meta import SourceMeta
from harness.record.run import ArchRun, BuildInfo
from harness.record.status import RunStatus
from harness.record.store import ResultDir, default_meta
from harness.report.summary import write_summary
from harness.seriescheck.prefix import build_prefix, touches_kconfig
from harness.seriescheck.report import PrefixBuild, PrefixStatus
from harness.seriescheck.worktree import WorkTree

from .condition import Condition, Judgement
from .report import BisectReport, PrefixRecord, patch_subject
from .search import Verdict, bisect


@dataclass
class BisectOptions:
    run: RunOptions  # spec, cache, results root, boot choices (suites, accel, modules, ...)
    series_dir: Path
    arch: str
    condition: Condition
    argv: list[str] = field(default_factory=list)


class Bisector:
    def __init__(self, opts: BisectOptions, reporter: Reporter, out: Path) -> None:
        self.opts = opts
        self.reporter = reporter
        self.out = out
        self.pipeline = Pipeline(opts.run, reporter)
        self.arch: Arch = get_arch(opts.arch)
        self.series: Series = load_series(opts.series_dir)
        self.report = BisectReport(
            series_dir=str(self.series.directory),
            series_digest=self.series.digest,
            patches=[p.name for p in self.series.patches],
            subjects=[patch_subject(p) for p in self.series.patches],
            arch=self.arch.name,
            condition=opts.condition.describe(),
            spec=str(opts.run.spec.path),
            meta=default_meta(opts.argv),
        )
        self._baseline: ArchRun | None = None  # prefix 0's run (metric changes against it)
        self._built_at: int | None = None  # the prefix the build directory last built
        self._source: SourceTree | None = None

    def run(self) -> BisectReport:
        """Search; the report is complete whether the search ends, refuses or aborts
        (the exception is re-raised after it is written only for interrupts)."""
        started = time.monotonic()
        try:
            self._run()
        except BaseException as e:
            found = failure(e, self.out / "harness-error.log")
            self.report.abort(found.status, found.message)
            if found.interrupted:
                raise
        finally:
            self.report.seconds = round(time.monotonic() - started, 1)
            self.report.meta.finished = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            self.report.write(self.out)
        return self.report

    def _run(self) -> None:
        booter = self.pipeline.booter
        problem = booter.host_problem(self.arch) if isinstance(booter, HostChecked) else None
        if problem is not None:
            self.report.abort(RunStatus.INFRA_ERROR, problem)
            return
        source = obtain_source(self.opts.run, self.reporter)
        self._source = source
        self.report.source = source.origin
        work = WorkTree(
            self.opts.run.cache / "work" / f"seriescheck-{self.series.digest[:12]}",
            source,
            self.series,
        )
        tree = PatchedTree(work.path, source, self.series, self.series.digest)
        spec = self.opts.run.spec
        builder = KernelBuilder(
            tree,
            self.arch,
            config_request(spec, self.arch, tree),
            self.opts.run.cache,
            self.opts.run.cache / "work",
            jobs=self.opts.run.jobs,
        )
        with work.locked():
            with self.reporter.step("work tree") as step:
                work.reset(self.reporter.info)
                step.outcome = str(work.path)
            self._built_at = None

            def probe(k: int) -> Verdict:
                return self._probe(work, builder, k).verdict

            self.report.search = bisect(len(self.series.patches), probe)

    def _probe(self, work: WorkTree, builder: KernelBuilder, k: int) -> PrefixRecord:
        total = len(self.series.patches)
        started = time.monotonic()
        reconfigure = self._built_at is None or touches_kconfig(self.series, self._built_at, k)
        work.goto(k)
        logs = builder.build_dir / "bisect-logs"
        logs.mkdir(parents=True, exist_ok=True)
        name = self.series.patches[k - 1].name if k else "(no patches)"
        with self.reporter.step(f"[prefix {k}/{total}] build {self.arch.name}: {name[:50]}") as s:
            build, made = build_prefix(
                builder, work.path, k, logs / f"prefix-{k:04d}.log", reconfigure, s.activity
            )
            s.outcome = "ok" if build.status is PrefixStatus.OK else build.status.upper()
        self._built_at = k if made else None  # a failed configuration: configure next time
        label_tree = self._label_tree(work, k)
        results = self._result_dir(k, label_tree)
        if build.status is not PrefixStatus.OK:
            shutil.copy2(build.log, results.path / "build.log")
            run = ArchRun(
                self.arch.name,
                kernel_label(label_tree),
                build.status.run_status,
                series=label_tree.label if label_tree.series else None,
                message="; ".join(build.config_mismatches) or build.first_error,
            )
        else:
            run = self._boot(builder, build, label_tree, results)
        results.record(run)
        results.finish()
        write_summary(results.path / "summary.md", results.runs, results.meta)
        if k == 0:
            self._baseline = run
        judgement: Judgement = self.opts.condition.judge(run, self._baseline)
        record = PrefixRecord(
            prefix=k,
            patch=self.series.patches[k - 1].name if k else None,
            verdict=judgement.verdict,
            text=judgement.text,
            evidence=judgement.evidence,
            run_status=str(run.status),
            kernel=run.kernel,
            result_dir=results.path.name,
            build_status=str(build.status),
            build_seconds=build.duration,
            seconds=round(time.monotonic() - started, 1),
        )
        self.report.prefixes.append(record)
        self.report.write(self.out)  # progress survives a kill
        self.reporter.info(f"    prefix {k}: {judgement.verdict.upper()} - {judgement.text}")
        return record

    def _label_tree(self, work: WorkTree, k: int) -> PatchedTree:
        """The tree as prefix k: its labels (kernel, series) in the run record. The build
        keeps the whole series' config request, so every prefix shares one build dir."""
        assert self._source is not None
        if k == 0:
            return PatchedTree(work.path, self._source, None, "none")
        prefix = self.series.prefix(k)
        return PatchedTree(work.path, self._source, prefix, prefix.digest)

    def _result_dir(self, k: int, tree: PatchedTree) -> ResultDir:
        """``<out>/prefix-NN``: a normal result directory (kbulk compare reads it)."""
        path = self.out / f"prefix-{k:02d}"
        path.mkdir()
        spec, src = self.opts.run.spec, tree.source
        meta = default_meta(self.opts.argv)
        meta.spec, meta.spec_name, meta.arches = str(spec.path), spec.name, [self.arch.name]
        meta.run_id, meta.complete = path.name, False
        meta.source = SourceMeta(src.origin, src.kernel_version, src.checksum)
        meta.series, meta.kernel = series_meta(tree), kernel_label(tree)
        results = ResultDir(path, meta, [])
        results.save()
        return results

    def _boot(
        self, builder: KernelBuilder, build: PrefixBuild, tree: PatchedTree, results: ResultDir
    ) -> ArchRun:
        bdir = builder.build_dir
        image = bdir / self.arch.image
        result = BuildResult(
            self.arch.name,
            True,
            bdir,
            Path(build.log),
            build.duration,
            warnings=build.warnings_total,
            image=image,
            vmlinux=bdir / "vmlinux",
            make_argv=builder.make_args(*builder.kernel_targets()),
        )
        info = BuildInfo(
            dir=str(bdir),
            log=build.log,
            warnings=build.warnings_total,
            config_digest=builder.request.digest,
            image=str(image),
            image_sha256=sha256_file(image),
            make_argv=list(result.make_argv),
        )
        try:
            steps = self.pipeline.build_modules(self.arch, tree, result)
        except BaseException as e:
            return self.pipeline.failed_run(e, results, self.arch, tree, build=info)
        prepared = Prepared(tree, result, info, steps)
        return self.pipeline.boot_and_test(self.arch, prepared, results)
