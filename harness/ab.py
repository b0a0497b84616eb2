"""A/B runs: baseline and patched kernels from the same source and config.

Both kernels are built once per architecture (the patched build reuses the
baseline's objects through ccache, so only what the series changes is
compiled), then booted N times each, interleaved A B A B, so slow drift of the
host (thermal, other load) hits both sides alike. Every boot is one ArchRun
whose ``ab`` slot says its variant (baseline/patched) and repetition, all in
one result directory, ready for `kbulk compare`. Stages and their failures are
the pipeline's own (Pipeline.prepare / Pipeline.boot_and_test).
"""

from __future__ import annotations

from harness.kernel.patches import PatchedTree, apply_series
from harness.pipeline import Pipeline, kernel_label, obtain_source, patched_tree, series_meta
from harness.record.run import AbSlot, ArchRun
from harness.record.status import RunStatus, Variant
from harness.record.store import ResultDir, default_meta
from harness.report.summary import write_summary


def run_ab(pipeline: Pipeline, repetitions: int) -> tuple[ResultDir, RunStatus]:
    opts, reporter = pipeline.opts, pipeline.reporter
    arches = pipeline.arches()
    meta = default_meta(
        opts.argv, mode="ab", repetitions=repetitions, spec=str(opts.spec.path),
        spec_name=opts.spec.name, arches=[a.name for a in arches],
    )  # fmt: skip
    results = pipeline.start(meta)
    arches = pipeline.preflight(results, arches)
    if not arches:
        return results, results.finish()
    try:
        source = obtain_source(opts, reporter)
        trees: dict[Variant, PatchedTree] = {
            Variant.BASELINE: apply_series(source, None, opts.cache / "work", reporter.info),
            Variant.PATCHED: patched_tree(opts, source, reporter),
        }
    except Exception as e:
        return results, pipeline.record_failure(results, arches, e)
    if trees[Variant.PATCHED].series is None:
        reporter.warn("no series: both sides of the A/B run are the same kernel")
    results.meta["kernels"] = {str(v): kernel_label(t) for v, t in trees.items()}
    results.meta["series"] = series_meta(trees[Variant.PATCHED])  # the patched side's
    results.save()
    for arch in arches:
        prepared = {v: pipeline.prepare(arch, trees[v], results, AbSlot(v, 0)) for v in Variant}
        for item in prepared.values():
            if isinstance(item, ArchRun):  # did not build: one failed run, no boots
                results.record(item)
        for rep in range(repetitions):
            for variant in Variant:
                item = prepared[variant]
                if isinstance(item, ArchRun):
                    continue
                run = pipeline.boot_and_test(
                    arch, item, results, console_name=f"{variant}-r{rep}.console.log",
                    ab=AbSlot(variant, rep),
                )  # fmt: skip
                results.record(run)
                reporter.info(
                    f"{arch.name} {variant} #{rep}: {run.status.value.upper()} {run.message}"
                )
    status = results.finish()
    write_summary(results.path / "summary.md", results.runs, results.meta)
    return results, status
