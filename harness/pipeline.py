"""The run pipeline: source -> patched tree -> config -> build -> guest -> boot -> results.

Each stage returns a typed record; a failure at any stage becomes a classified
ArchRun (build failure, config error, crash, timeout, infra error) that is
written to the result directory at once, and the next architecture still runs.
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.analysis.analyze import analyze, decode_crashes
from harness.boot import accel as accel_mod
from harness.boot.console import run_console
from harness.boot.guest.initramfs import GuestBuildError, ModuleStep, build_initramfs
from harness.boot.qemu import BootSpec, qemu_command
from harness.kernel.arch import Arch, get_arch
from harness.kernel.build import BuildResult, KernelBuilder
from harness.kernel.kconfig import ConfigRequest, KconfigError
from harness.kernel.patches import PatchedTree, PatchError, apply_series, load_series
from harness.kernel.source import (
    SourceError,
    SourceTree,
    from_debian,
    from_local_tree,
    from_tarball,
    sha256_file,
)
from harness.progress import Reporter
from harness.record.store import ArchRun, ResultDir, RunStatus, default_meta
from harness.report.summary import write_summary
from harness.spec import RunSpec


@dataclass
class RunOptions:
    """Command-line choices layered over the run definition."""

    spec: RunSpec
    results_root: Path
    cache: Path
    source_override: Path | None = None
    series_override: Path | None = None
    no_series: bool = False
    series_upto: int | None = None  # apply only the first N patches
    arches: list[str] = field(default_factory=list)
    suites: str | None = None  # KUnit glob; overrides the spec
    accel: str = "auto"  # auto | kvm | tcg
    jobs: int = 2
    extra_cmdline: list[str] = field(default_factory=list)
    modules: bool = True
    label: str | None = None
    argv: list[str] = field(default_factory=list)


class StageError(RuntimeError):
    def __init__(self, status: RunStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def obtain_source(opts: RunOptions, reporter: Reporter) -> SourceTree:
    src = opts.source_override
    with reporter.step("kernel source") as step:
        step.outcome = "ready"
        if src is not None:
            if src.is_dir():
                return from_local_tree(src)
            return from_tarball(src, opts.cache, reporter.info)
        if opts.spec.debian is None:
            raise SourceError(
                f"{opts.spec.path}: the run definition names no source; pass --source "
                f"with a kernel tree or tarball"
            )
        return from_debian(opts.spec.debian, opts.cache, reporter.info)


def patched_tree(opts: RunOptions, source: SourceTree, reporter: Reporter) -> PatchedTree:
    series_dir = None if opts.no_series else (opts.series_override or opts.spec.series)
    series = load_series(series_dir) if series_dir else None
    if series is not None and opts.series_upto is not None:
        total = len(series.patches)
        series = series.prefix(opts.series_upto)
        reporter.info(f"first {opts.series_upto} of {total} patches")
    with reporter.step("apply series" if series else "work tree") as step:
        tree = apply_series(source, series, opts.cache / "work", reporter.info)
        step.outcome = (
            f"{len(series.patches)} patches, series {tree.label}" if series else "no series"
        )
    return tree


def config_request(opts: RunOptions, arch: Arch, tree: PatchedTree) -> ConfigRequest:
    spec = opts.spec
    request = ConfigRequest(spec.config_base)
    request.add_symbols(arch.kconfig, f"arch {arch.name}")
    series_only = spec.series_fragments if tree.series is not None else []
    for fragment in [*spec.fragments, *series_only, *spec.arch_fragments.get(arch.name, [])]:
        request.add_fragment(fragment)
    return request


def kernel_label(tree: PatchedTree) -> str:
    base = f"v{tree.source.kernel_version}"
    return base if tree.series is None else f"{base}+series-{tree.label}"


def boot_cmdline(opts: RunOptions) -> list[str]:
    cmdline = list(opts.spec.boot.cmdline)
    suites = opts.suites if opts.suites is not None else opts.spec.kunit_filter
    if suites:
        cmdline.append(f"kunit.filter_glob={suites}")
    return [*cmdline, *opts.extra_cmdline]


class Pipeline:
    def __init__(self, opts: RunOptions, reporter: Reporter) -> None:
        self.opts = opts
        self.reporter = reporter

    def run(self) -> tuple[ResultDir, RunStatus]:
        opts = self.opts
        arches = [get_arch(a) for a in (opts.arches or opts.spec.arches)]
        meta = default_meta(
            opts.argv,
            spec=str(opts.spec.path),
            spec_name=opts.spec.name,
            arches=[a.name for a in arches],
        )
        results = ResultDir.create(opts.results_root, meta=meta)
        self.reporter.info(f"results: {results.path}")
        try:
            source = obtain_source(opts, self.reporter)
            tree = patched_tree(opts, source, self.reporter)
        except (SourceError, PatchError) as e:
            status = RunStatus.PATCH_FAILURE if isinstance(e, PatchError) else RunStatus.INFRA_ERROR
            for arch in arches:
                results.record(ArchRun(arch.name, "unknown", status, message=str(e)))
            self.reporter.error(str(e))
            return results, results.finish()
        results.meta.update(
            source={
                "origin": source.origin,
                "version": source.kernel_version,
                "sha256": source.checksum,
            },
            series={
                "dir": str(tree.series.directory) if tree.series else None,
                "sha256": tree.series_digest,
                "patches": [p.name for p in tree.series.patches] if tree.series else [],
            },
            kernel=kernel_label(tree),
        )
        results.save()
        for arch in arches:
            run = self.run_arch(arch, tree, results)
            results.record(run)
            self.reporter.info(f"{arch.name}: {run.status.value.upper()} {run.message}")
        status = results.finish()
        write_summary(results.path / "summary.md", results.runs, results.meta)
        return results, status

    def run_arch(self, arch: Arch, tree: PatchedTree, results: ResultDir) -> ArchRun:
        label = kernel_label(tree)
        run = ArchRun(arch.name, label, RunStatus.INFRA_ERROR)
        try:
            build = self.build_kernel(arch, tree, run)
            steps = self.build_modules(arch, tree, build, run)
            self.boot_and_test(arch, tree, build, steps, run, results)
        except StageError as e:
            run.status, run.message = e.status, str(e)
        except (KconfigError, GuestBuildError) as e:
            run.status = (
                RunStatus.CONFIG_ERROR if isinstance(e, KconfigError) else RunStatus.INFRA_ERROR
            )
            run.message = str(e)
        except (KeyboardInterrupt, SystemExit):
            # Keep what this arch produced (console log, build details) before leaving.
            run.status = RunStatus.INFRA_ERROR
            run.message = "interrupted (Ctrl-C or SIGTERM); the console log so far is kept"
            results.record(run)
            raise
        return run

    def builder(self, arch: Arch, tree: PatchedTree) -> KernelBuilder:
        opts = self.opts
        request = config_request(opts, arch, tree)
        return KernelBuilder(tree, arch, request, opts.cache, opts.cache / "work", jobs=opts.jobs)

    def build_kernel(self, arch: Arch, tree: PatchedTree, run: ArchRun) -> BuildResult:
        builder = self.builder(arch, tree)
        with self.reporter.step(f"build {arch.name}") as step:
            result = builder.build(on_line=step.activity)
            step.outcome = "ok" if result.ok else "FAILED"
        run.durations["build"] = round(result.duration, 1)
        run.details["config_digest"] = builder.request.digest
        run.details["build"] = {
            "dir": str(result.build_dir),
            "log": str(result.log),
            "warnings": result.warnings,
            "errors": result.errors,
            "reproducer": result.reproducer,
        }
        if result.config_mismatches:
            raise StageError(RunStatus.CONFIG_ERROR, result.summary)
        if not result.ok:
            status = RunStatus.CONFIG_ERROR if result.stage == "config" else RunStatus.BUILD_FAILURE
            raise StageError(status, f"{result.summary} (log: {result.log})")
        assert result.image is not None
        run.details["image"] = {"path": str(result.image), "sha256": sha256_file(result.image)}
        self.reporter.info(f"    {arch.name}: {result.summary}")
        return result

    def build_modules(
        self, arch: Arch, tree: PatchedTree, build: BuildResult, run: ArchRun
    ) -> list[ModuleStep]:
        spec = self.opts.spec
        if not self.opts.modules or not spec.modules or spec.modules_dir is None:
            return []
        builder = self.builder(arch, tree)
        log = build.build_dir / "modules.log"
        log.write_text("")
        with self.reporter.step(f"modules {arch.name}") as step:
            built, scan, rc = builder.build_external_modules(spec.modules_dir, log, step.activity)
            step.outcome = "ok" if rc == 0 else "FAILED"
        if rc != 0:
            first = scan.first_error or f"make exited {rc}"
            raise StageError(
                RunStatus.BUILD_FAILURE, f"test modules failed to build: {first} (log: {log})"
            )
        by_name = {p.name.removesuffix(".ko"): p for p in built}
        steps = []
        for load in spec.modules:
            if load.name not in by_name:
                raise StageError(
                    RunStatus.BUILD_FAILURE, f"module {load.name}.ko was not built (log: {log})"
                )
            steps.append(ModuleStep(by_name[load.name], load.params))
        return steps

    def boot_and_test(
        self,
        arch: Arch,
        tree: PatchedTree,
        build: BuildResult,
        steps: list[ModuleStep],
        run: ArchRun,
        results: ResultDir,
        console_name: str = "console.log",
    ) -> None:
        opts = self.opts
        assert build.image is not None
        guest_dir = build.build_dir / "kbulk-guest"
        image = build_initramfs(arch, steps, guest_dir / "initramfs.cpio", opts.cache / "guest")
        boot = BootSpec(
            kernel=build.image,
            initramfs=image.initramfs,
            cmdline=boot_cmdline(opts),
            memory=opts.spec.boot.memory,
            smp=opts.spec.boot.smp,
            icount=opts.spec.boot.icount,
        )
        verdict = accel_mod.choose(
            arch, opts.accel, build.image, opts.cache, self.reporter, icount=boot.icount
        )
        run.accelerator = verdict.accel
        run.details["accelerator_reason"] = verdict.reason
        command = qemu_command(arch, boot, verdict.accel)
        run.details["qemu"] = str(command)
        run.details["boot"] = {"memory": boot.memory, "smp": boot.smp, "cmdline": boot.cmdline}
        console_log = results.arch_path(arch.name, console_name)
        run.console_log = results.relative(console_log)
        with self.reporter.step(f"boot {arch.name} ({verdict.accel})") as step:
            outcome = run_console(
                command.argv,
                console_log,
                overall_timeout=opts.spec.boot.timeout,
                inactivity_timeout=opts.spec.boot.inactivity_timeout,
                on_line=step.activity,
            )
            step.outcome = outcome.reason.value
        run.durations["boot_to_results"] = round(outcome.duration, 1)
        if outcome.first_output_after is not None:
            run.durations["first_output"] = round(outcome.first_output_after, 2)
        run.details["exit_reason"] = outcome.reason.value
        run.details["reproducer"] = {
            "build": build.reproducer,
            "qemu": str(command),
        }
        found = analyze(outcome.lines, outcome.reason, [s.name for s in steps])
        started = time.monotonic()
        decode_crashes(
            [c for c in found.crashes if c.kind != "warning"], tree.path, build.build_dir
        )
        run.durations["decode"] = round(time.monotonic() - started, 1)
        run.status, run.message = found.status, found.message
        run.ktap, run.crashes, run.metrics = found.ktap, found.crashes, found.metrics
        if found.module_steps:
            run.details["modules"] = found.module_steps


_SAFE_GLOB = re.compile(r"^[A-Za-z0-9_*?.\-\[\]]+$")


def validate_suites(glob: str) -> str:
    """A KUnit filter goes on the kernel command line: no spaces or quotes."""
    if not _SAFE_GLOB.match(glob):
        raise ValueError(
            f"--suites {shlex.quote(glob)}: only letters, digits and _ * ? . - [ ] are allowed"
        )
    return glob
