"""A/B runs: baseline and patched kernels from the same source and config.

Both kernels are built once per architecture (the patched build reuses the
baseline's objects through ccache, so only what the series changes is
compiled), then booted N times each, interleaved A B A B, so slow drift of the
host (thermal, other load) hits both sides alike. Every boot is one ArchRun
with details["variant"] ("baseline"/"patched") and details["repetition"],
all in one result directory, ready for `kbulk compare`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from harness.boot.guest.initramfs import GuestBuildError, ModuleStep
from harness.kernel.arch import Arch, get_arch
from harness.kernel.build import BuildResult
from harness.kernel.kconfig import KconfigError
from harness.kernel.patches import PatchedTree, PatchError, apply_series
from harness.kernel.source import SourceError
from harness.pipeline import Pipeline, StageError, kernel_label, obtain_source, patched_tree
from harness.record.store import ArchRun, ResultDir, RunStatus, default_meta
from harness.report.summary import write_summary

VARIANTS = ("baseline", "patched")


@dataclass
class Prepared:
    tree: PatchedTree
    build: BuildResult
    steps: list[ModuleStep]
    template: ArchRun  # build details shared by every boot of this kernel


def _prepare(pipeline: Pipeline, arch: Arch, variant: str, tree: PatchedTree) -> Prepared | ArchRun:
    template = ArchRun(arch.name, kernel_label(tree), RunStatus.INFRA_ERROR)
    template.details["variant"] = variant
    try:
        build = pipeline.build_kernel(arch, tree, template)
        steps = pipeline.build_modules(arch, tree, build, template)
    except StageError as e:
        template.status, template.message = e.status, str(e)
        return template
    except (KconfigError, GuestBuildError) as e:
        template.message = str(e)
        return template
    return Prepared(tree, build, steps, template)


def run_ab(pipeline: Pipeline, repetitions: int) -> tuple[ResultDir, RunStatus]:
    opts, reporter = pipeline.opts, pipeline.reporter
    arches = [get_arch(a) for a in (opts.arches or opts.spec.arches)]
    meta = default_meta(
        opts.argv, mode="ab", repetitions=repetitions, spec=str(opts.spec.path),
        spec_name=opts.spec.name, arches=[a.name for a in arches],
    )  # fmt: skip
    results = ResultDir.create(opts.results_root, meta=meta)
    reporter.info(f"results: {results.path}")
    try:
        source = obtain_source(opts, reporter)
        trees = {
            "baseline": apply_series(source, None, opts.cache / "work", reporter.info),
            "patched": patched_tree(opts, source, reporter),
        }
    except (SourceError, PatchError) as e:
        status = RunStatus.PATCH_FAILURE if isinstance(e, PatchError) else RunStatus.INFRA_ERROR
        for arch in arches:
            results.record(ArchRun(arch.name, "unknown", status, message=str(e)))
        reporter.error(str(e))
        return results, results.finish()
    if trees["patched"].series is None:
        reporter.warn("no series: both sides of the A/B run are the same kernel")
    results.meta["kernels"] = {v: kernel_label(t) for v, t in trees.items()}
    results.save()
    for arch in arches:
        prepared = {v: _prepare(pipeline, arch, v, trees[v]) for v in VARIANTS}
        for item in prepared.values():
            if isinstance(item, ArchRun):  # did not build: one failed run, no boots
                results.record(item)
        for rep in range(repetitions):
            for variant in VARIANTS:
                item = prepared[variant]
                if isinstance(item, ArchRun):
                    continue
                run = copy.deepcopy(item.template)
                run.details["repetition"] = rep
                pipeline.boot_and_test(
                    arch, item.tree, item.build, item.steps, run, results,
                    console_name=f"{variant}-r{rep}.console.log",
                )  # fmt: skip
                results.record(run)
                reporter.info(
                    f"{arch.name} {variant} #{rep}: {run.status.value.upper()} {run.message}"
                )
    status = results.finish()
    write_summary(results.path / "summary.md", results.runs, results.meta)
    return results, status
