"""The run pipeline: source -> patched tree -> config -> build -> boot -> analysis -> record.

Each stage returns its own typed record (BuildInfo from the build, BootInfo and
the console from the Booter, the Analysis of the console) and the pipeline
assembles the ArchRun from them. A failure at any stage becomes a classified
ArchRun through errors.failure(), written to the result directory at once,
and the next architecture still runs. choose_booter() is where the boot stage
is picked (QEMU, or a real machine with --machine).
"""

from __future__ import annotations

import hashlib
import re
import shlex
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from harness.analysis.analyze import analyze, decode_crashes
from harness.analysis.module_metrics import MetricRule
from harness.boot.guest.initramfs import ModuleStep
from harness.boot.stage import Booter, BootRequest, HostChecked, QemuBooter
from harness.errors import StageError, failure
from harness.kernel.arch import Arch, get_arch
from harness.kernel.build import BuildResult, KernelBuilder
from harness.kernel.kconfig import ConfigRequest
from harness.kernel.patches import PatchedTree, apply_series, load_series
from harness.kernel.source import (
    SourceError,
    SourceTree,
    from_debian,
    from_local_tree,
    from_tarball,
    sha256_file,
)
from harness.machine.booter import MachineBooter
from harness.machine.inventory import Machine
from harness.progress import Reporter
from harness.record.meta import CellMeta, RunMeta, SeriesMeta, SourceMeta
from harness.record.run import AbSlot, ArchRun, BootInfo, BuildInfo
from harness.record.status import CrashKind, RunStatus
from harness.record.store import ResultDir, default_meta
from harness.report.summary import write_summary
from harness.spec import RunSpec
from harness.spec_modules import ModuleSource


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
    machine: Machine | None = None  # boot on this machine (kexec over SSH) instead of QEMU
    result_path: Path | None = None  # this exact (new) directory, not results_root/<time>-<id>
    cell: CellMeta | None = None  # the plan cell this run is (kbulk run --cell)


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


def config_request(spec: RunSpec, arch: Arch, tree: PatchedTree) -> ConfigRequest:
    """The run definition's config for ``arch``; series fragments only when a series applies."""
    request = ConfigRequest(spec.config_base)
    request.add_symbols(arch.kconfig, f"arch {arch.name}")
    if spec.boot.numa_nodes is not None:
        request.add_symbols(arch.numa_kconfig, f"arch {arch.name} (boot.numa)")
    series_only = spec.series_fragments if tree.series is not None else []
    for fragment in [*spec.fragments, *series_only, *spec.arch_fragments.get(arch.name, [])]:
        request.add_fragment(fragment)
    return request


def series_meta(tree: PatchedTree) -> SeriesMeta:
    """results.json meta.series: the patches in order, each with its sha256 (KCIDB's
    patchset_hash is computed from those, so an export needs no access to the files)."""
    patches = tree.series.patches if tree.series else []
    return SeriesMeta(
        dir=str(tree.series.directory) if tree.series else None,
        sha256=tree.series_digest,
        patches=[p.name for p in patches],
        patch_sha256=[hashlib.sha256(p.read_bytes()).hexdigest() for p in patches],
    )


def kernel_label(tree: PatchedTree) -> str:
    base = f"v{tree.source.kernel_version}"
    return base if tree.series is None else f"{base}+series-{tree.label}"


def boot_cmdline(opts: RunOptions) -> list[str]:
    cmdline = list(opts.spec.boot.cmdline)
    suites = opts.suites if opts.suites is not None else opts.spec.kunit_filter
    if suites:
        cmdline.append(f"kunit.filter_glob={suites}")
    return [*cmdline, *opts.extra_cmdline]


def series_label(tree: PatchedTree) -> str | None:
    return tree.label if tree.series is not None else None


def choose_booter(opts: RunOptions) -> Booter:
    """The boot stage: QEMU, or the real machine of --machine (one booter per run, so
    the machine's state, e.g. unusable after failed power cycles, lasts the run)."""
    if opts.machine is not None:
        return MachineBooter(opts.machine, opts.cache)
    return QemuBooter(opts.accel, opts.cache)


@dataclass
class Prepared:
    """A kernel (and its test modules) built and ready to boot, possibly many times."""

    tree: PatchedTree
    result: BuildResult
    info: BuildInfo
    steps: list[ModuleStep]


class Pipeline:
    def __init__(self, opts: RunOptions, reporter: Reporter, booter: Booter | None = None) -> None:
        self.opts = opts
        self.reporter = reporter
        self.booter = booter if booter is not None else choose_booter(opts)

    def start(self, meta: RunMeta) -> ResultDir:
        meta.cell = self.opts.cell
        if self.opts.result_path is not None:
            cell_id = self.opts.cell.id if self.opts.cell is not None else None
            results = ResultDir.at(self.opts.result_path, meta=meta, run_id=cell_id)
        else:
            results = ResultDir.create(self.opts.results_root, meta=meta)
        self.reporter.info(f"results: {results.path}")
        return results

    def arches(self) -> list[Arch]:
        return [get_arch(a) for a in (self.opts.arches or self.opts.spec.arches)]

    def preflight(self, results: ResultDir, arches: list[Arch]) -> list[Arch]:
        """Arches this host can boot; the others are recorded as infra_error at once,
        before the source is fetched or anything is built."""
        if not isinstance(self.booter, HostChecked):
            return arches
        ready = []
        for arch in arches:
            problem = self.booter.host_problem(arch)
            if problem is None:
                ready.append(arch)
                continue
            results.record(ArchRun(arch.name, "unknown", RunStatus.INFRA_ERROR, message=problem))
            self.reporter.error(problem)
        return ready

    def record_failure(
        self, results: ResultDir, arches: list[Arch], exc: BaseException
    ) -> RunStatus:
        """The source or the series failed: one failed run per arch, and finish."""
        found = failure(exc, traceback_log(results))
        for arch in arches:
            results.record(ArchRun(arch.name, "unknown", found.status, message=found.message))
        self.reporter.error(found.message)
        if found.interrupted:
            raise exc
        return results.finish()

    def run(self) -> tuple[ResultDir, RunStatus]:
        opts = self.opts
        arches = self.arches()
        meta = default_meta(opts.argv)
        meta.spec, meta.spec_name = str(opts.spec.path), opts.spec.name
        meta.arches = [a.name for a in arches]
        meta.module_metrics = opts.spec.declared_metrics or None
        results = self.start(meta)
        arches = self.preflight(results, arches)
        if not arches:
            return results, results.finish()
        try:
            source = obtain_source(opts, self.reporter)
            tree = patched_tree(opts, source, self.reporter)
        except Exception as e:
            return results, self.record_failure(results, arches, e)
        results.meta.source = SourceMeta(source.origin, source.kernel_version, source.checksum)
        results.meta.series = series_meta(tree)
        results.meta.kernel = kernel_label(tree)
        results.save()
        for arch in arches:
            run = self.run_arch(arch, tree, results)
            results.record(run)
            self.reporter.info(f"{arch.name}: {run.status.value.upper()} {run.message}")
        status = results.finish()
        write_summary(results.path / "summary.md", results.runs, results.meta)
        return results, status

    def run_arch(self, arch: Arch, tree: PatchedTree, results: ResultDir) -> ArchRun:
        prepared = self.prepare(arch, tree, results)
        if isinstance(prepared, ArchRun):
            return prepared
        return self.boot_and_test(arch, prepared, results)

    def failed_run(
        self,
        exc: BaseException,
        results: ResultDir,
        arch: Arch,
        tree: PatchedTree,
        *,
        build: BuildInfo | None = None,
        boot: BootInfo | None = None,
        ab: AbSlot | None = None,
        durations: dict[str, float] | None = None,
        console_log: str | None = None,
    ) -> ArchRun:
        """The record of a run a stage stopped; re-raises interrupts once it is saved."""
        found = failure(exc, traceback_log(results))
        run = ArchRun(
            arch.name,
            kernel_label(tree),
            found.status,
            series=series_label(tree),
            message=found.message,
            build=build,
            boot=boot,
            ab=ab,
            durations=dict(durations or {}),
            console_log=console_log,
        )
        if found.interrupted:
            # Keep what this arch produced (console log, build record) before leaving.
            results.record(run)
            raise exc
        return run

    def mark_running(
        self,
        results: ResultDir,
        arch: Arch,
        tree: PatchedTree,
        doing: str,
        *,
        ab: AbSlot | None = None,
        build: BuildInfo | None = None,
        boot: BootInfo | None = None,
        console_log: str | None = None,
    ) -> None:
        """Record the run as cut short *before* the stage starts: if the harness is
        killed (SIGKILL, OOM, power) results.json says where, not no_tests. The stage's
        own record replaces it (same arch, kernel and A/B slot)."""
        results.record(
            ArchRun(
                arch.name, kernel_label(tree), RunStatus.INFRA_ERROR, series=series_label(tree),
                message=f"{INTERRUPTED_WHILE} {doing} (the harness stopped before this run "
                "was recorded; its console log, if any, is kept)",
                build=build, boot=boot, ab=ab, console_log=console_log,
            )
        )  # fmt: skip

    def prepare(
        self, arch: Arch, tree: PatchedTree, results: ResultDir, ab: AbSlot | None = None
    ) -> Prepared | ArchRun:
        """Build the kernel and the test modules; a failed run if either fails."""
        info: BuildInfo | None = None
        durations: dict[str, float] = {}
        self.mark_running(results, arch, tree, "building", ab=ab)
        try:
            result, info = self.build_kernel(arch, tree)
            durations["build"] = round(result.duration, 1)
            check_build(result)
            steps = self.build_modules(arch, tree, result)
        except BaseException as e:
            return self.failed_run(e, results, arch, tree, build=info, ab=ab, durations=durations)
        return Prepared(tree, result, info, steps)

    def builder(self, arch: Arch, tree: PatchedTree) -> KernelBuilder:
        opts = self.opts
        request = config_request(opts.spec, arch, tree)
        return KernelBuilder(tree, arch, request, opts.cache, opts.cache / "work", jobs=opts.jobs)

    def build_kernel(self, arch: Arch, tree: PatchedTree) -> tuple[BuildResult, BuildInfo]:
        builder = self.builder(arch, tree)
        with self.reporter.step(f"build {arch.name}") as step:
            result = builder.build(on_line=step.activity)
            step.outcome = "ok" if result.ok else "FAILED"
        info = BuildInfo(
            dir=str(result.build_dir),
            log=str(result.log),
            warnings=result.warnings,
            errors=result.errors,
            config_digest=builder.request.digest,
            make_argv=list(result.make_argv),
        )
        if result.ok and result.image is not None:
            info.image, info.image_sha256 = str(result.image), sha256_file(result.image)
            self.reporter.info(f"    {arch.name}: {result.summary}")
        return result, info

    def build_modules(self, arch: Arch, tree: PatchedTree, build: BuildResult) -> list[ModuleStep]:
        """Build every module directory the run definition names (modules.dir and each
        entry's own ``dir``) against this kernel; the load steps in the listed order."""
        spec = self.opts.spec
        if not self.opts.modules or not spec.modules:
            return []
        builder = self.builder(arch, tree)
        log = build.build_dir / "modules.log"
        log.write_text("")
        by_name: dict[str, Path] = {}
        for source in dict.fromkeys(m.source for m in spec.modules):
            source_dir, dest, files = module_directory(spec, source, tree)
            label = "modules" if source is None else f"modules {source.label}"
            with self.reporter.step(f"{label} {arch.name}") as step:
                built, scan, rc = builder.build_external_modules(
                    source_dir, log, step.activity, dest_name=dest, files=files
                )
                step.outcome = "ok" if rc == 0 else "FAILED"
            if rc != 0:
                first = scan.first_error or f"make exited {rc}"
                where = f" from {source.label} ({source.where})" if source is not None else ""
                raise StageError(
                    RunStatus.BUILD_FAILURE,
                    f"test modules{where} failed to build: {first} (log: {log})",
                )
            wanted = {m.name for m in spec.modules if m.source == source}
            by_name.update({p.name.removesuffix(".ko"): p for p in built if p.stem in wanted})
        steps = []
        for load in spec.modules:
            if load.name not in by_name:
                raise StageError(
                    RunStatus.BUILD_FAILURE,
                    f"module {load.name}.ko was not built ({load.where}; log: {log})",
                )
            memcg_max = load.memcg.max_bytes if load.memcg else None
            steps.append(ModuleStep(by_name[load.name], load.params, load.mempolicy, memcg_max))
        return steps

    def boot_request(self, arch: Arch, prepared: Prepared) -> BootRequest:
        boot, result = self.opts.spec.boot, prepared.result
        assert result.image is not None
        return BootRequest(
            arch=arch,
            image=result.image,
            build_dir=result.build_dir,
            steps=prepared.steps,
            cmdline=boot_cmdline(self.opts),
            memory=boot.memory,
            smp=boot.smp,
            icount=boot.icount,
            numa_nodes=boot.numa_nodes,
            timeout=boot.timeout,
            inactivity_timeout=boot.inactivity_timeout,
        )

    def boot_and_test(
        self,
        arch: Arch,
        prepared: Prepared,
        results: ResultDir,
        console_name: str = "console.log",
        ab: AbSlot | None = None,
    ) -> ArchRun:
        """Boot a prepared kernel once, read its console, and assemble the run record."""
        tree = prepared.tree
        durations = {"build": round(prepared.result.duration, 1)}
        console_log = results.arch_path(arch.name, console_name)
        relative_log = results.relative(console_log)
        booted: list[BootInfo] = []

        def on_booted(info: BootInfo) -> None:
            booted.append(info)
            self.mark_running(
                results, arch, tree, "booting", ab=ab, build=prepared.info, boot=info,
                console_log=relative_log,
            )  # fmt: skip

        try:
            boot, outcome = self.booter.boot(
                self.boot_request(arch, prepared), console_log, self.reporter, on_booted
            )
            durations["boot_to_results"] = round(outcome.duration, 1)
            if outcome.first_output_after is not None:
                durations["first_output"] = round(outcome.first_output_after, 2)
            found = analyze(
                outcome.lines, outcome.reason, [s.name for s in prepared.steps],
                qemu_stderr=outcome.qemu_stderr, qemu_exit=outcome.qemu_exit,
                **module_expectations(self.opts.spec, prepared.steps),
                evidence=outcome.evidence, watched=outcome.watched,
            )  # fmt: skip
            started = time.monotonic()
            decode_crashes(
                [c for c in found.crashes if c.kind is not CrashKind.WARNING],
                tree.path,
                prepared.result.build_dir,
            )
            durations["decode"] = round(time.monotonic() - started, 1)
        except BaseException as e:
            return self.failed_run(
                e, results, arch, tree, build=prepared.info, boot=booted[0] if booted else None,
                ab=ab, durations=durations, console_log=relative_log,
            )  # fmt: skip
        return ArchRun(
            arch.name,
            kernel_label(tree),
            found.status,
            series=series_label(tree),
            ktap=found.ktap,
            crashes=found.crashes,
            metrics=found.metrics,
            console_log=relative_log,
            durations=durations,
            message=found.message,
            build=prepared.info,
            boot=boot,
            ab=ab,
            module_steps=found.module_steps,
        )


INTERRUPTED_WHILE = "interrupted while"


class ModuleExpectations(TypedDict):
    rules: dict[str, list[MetricRule]]
    load_rc: dict[str, int]


def module_expectations(spec: RunSpec, steps: list[ModuleStep]) -> ModuleExpectations:
    """The loaded modules' regex rules and expected load statuses, for analyze()."""
    loaded = {s.name for s in steps}
    mods = [m for m in spec.modules if m.name in loaded]
    return {
        "rules": {m.name: m.rules for m in mods if m.rules},
        "load_rc": {m.name: m.load_rc for m in mods if m.load_rc},
    }


def module_directory(
    spec: RunSpec, source: ModuleSource | None, tree: PatchedTree
) -> tuple[Path, str, list[str] | None]:
    """(directory to build from, its copy's name in the build directory, the files to
    copy under a generated Kbuild or None). A ``kernel:`` directory is looked up in
    this kernel's tree, so baseline and patched each build their own source."""
    if source is None:
        assert spec.modules_dir is not None
        return spec.modules_dir, "kbulk-modules", None
    digest = hashlib.sha256(source.label.encode()).hexdigest()[:8]
    if source.path is not None:
        return source.path, f"kbulk-modules-{source.path.name}-{digest}", None
    assert source.kernel_dir is not None
    directory = tree.path / source.kernel_dir
    missing = [f for f in source.files if not (directory / f).is_file()]
    if not directory.is_dir() or missing:
        what = "no such directory" if not directory.is_dir() else f"no {', '.join(missing)}"
        raise StageError(
            RunStatus.BUILD_FAILURE,
            f"{source.where}: dir: {source.label}: {what} in the kernel tree {tree.path}",
        )
    slug = source.kernel_dir.replace("/", "-")
    return directory, f"kbulk-modules-kernel-{slug}-{digest}", list(source.files)


def check_build(result: BuildResult) -> None:
    """Raise the build's failure with its status (config or build)."""
    if result.config_mismatches:
        raise StageError(RunStatus.CONFIG_ERROR, result.summary)
    if not result.ok and result.storage_error:  # the disk, not the kernel
        raise StageError(
            RunStatus.INFRA_ERROR,
            f"the build's disk failed: {result.storage_error} (log: {result.log})",
        )
    if not result.ok:  # make failed, configuring or building: a build failure
        raise StageError(RunStatus.BUILD_FAILURE, f"{result.summary} (log: {result.log})")


def traceback_log(results: ResultDir) -> Path:
    """Where unexpected errors' tracebacks go (pointed to from the run's message)."""
    return results.path / "harness-error.log"


_SAFE_GLOB = re.compile(r"^[A-Za-z0-9_*?.\-\[\]]+$")


def validate_suites(glob: str) -> str:
    """A KUnit filter goes on the kernel command line: no spaces or quotes."""
    if not _SAFE_GLOB.match(glob):
        raise ValueError(
            f"--suites {shlex.quote(glob)}: only letters, digits and _ * ? . - [ ] are allowed"
        )
    return glob


def run_from_console(
    arch: str, lines: Collection[str], console_log: str, spec: RunSpec | None = None
) -> ArchRun:
    """`kbulk parse`: the run record of a saved console (how it ended is unknown);
    with ``spec``, its modules' regex rules and expected load statuses apply."""
    found = analyze(
        lines, None, [],
        rules={m.name: m.rules for m in spec.modules if m.rules} if spec else None,
        load_rc={m.name: m.load_rc for m in spec.modules if m.load_rc} if spec else None,
    )  # fmt: skip
    return ArchRun(
        arch, "unknown", found.status, ktap=found.ktap, crashes=found.crashes,
        metrics=found.metrics, message=found.message, module_steps=found.module_steps,
        console_log=console_log,
    )  # fmt: skip
