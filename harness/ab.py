"""A/B runs: baseline and patched kernels from the same source and config.

Both kernels are built once per architecture (the patched build reuses the
baseline's objects through ccache, so only what the series changes is
compiled), then booted N times each, interleaved A B A B, so slow drift of the
host (thermal, other load) hits both sides alike. Every boot is one ArchRun
whose ``ab`` slot says its variant (baseline/patched) and repetition, all in
one result directory, ready for `kbulk compare`. Stages and their failures are
the pipeline's own (Pipeline.prepare / Pipeline.boot_and_test).

With ``repetitions=None`` (`--reps auto`) each architecture gets pairs until every
headline figure's 95 % interval is narrower than its target, or ``max_reps`` pairs
(:func:`harness.report.stopping.decide`); the decision is recorded in the meta
(``reps_auto``) and shown in the report. The declared trade-offs (run definition
and the series' tradeoffs.yaml) are recorded in the meta too, for `kbulk compare`.
"""

from __future__ import annotations

from collections.abc import Collection

from harness.kernel.patches import PatchedTree, apply_series
from harness.pipeline import Pipeline, kernel_label, obtain_source, patched_tree, series_meta
from harness.record.meta import RepsAutoMeta, SourceMeta
from harness.record.run import AbSlot, ArchRun
from harness.record.status import RunStatus, Variant
from harness.record.store import ResultDir, default_meta
from harness.report.compare import compare_metrics
from harness.report.headlines import widths
from harness.report.stopping import Decision, decide
from harness.report.summary import write_summary
from harness.spec import SpecError, series_tradeoffs

DEFAULT_MAX_REPS = 20


def auto_decision(arch: str, runs: list[ArchRun], reps: int, max_reps: int) -> Decision:
    """The stopping rule on this architecture's boots so far."""
    mine = [r for r in runs if r.arch == arch and r.ab is not None]
    a = [r for r in mine if r.ab is not None and r.ab.variant is Variant.BASELINE]
    b = [r for r in mine if r.ab is not None and r.ab.variant is Variant.PATCHED]
    return decide(widths(compare_metrics(arch, a, b)), reps, max_reps=max_reps)


def run_ab(
    pipeline: Pipeline,
    repetitions: int | None,
    max_reps: int = DEFAULT_MAX_REPS,
    slots: Collection[AbSlot] | None = None,
) -> tuple[ResultDir, RunStatus]:
    """``repetitions`` pairs per architecture; None: auto, up to ``max_reps``.

    ``slots``: boot only these (variant, repetition) slots, building only their
    kernels: one cell of a plan (`kbulk run --cell`), the rest exactly as a whole run.
    """
    if slots is not None and repetitions is None:
        raise ValueError("A/B cells need a fixed number of repetitions")
    opts, reporter = pipeline.opts, pipeline.reporter
    arches = pipeline.arches()
    meta = default_meta(opts.argv)
    meta.mode, meta.repetitions = "ab", repetitions if repetitions is not None else "auto"
    meta.spec, meta.spec_name = str(opts.spec.path), opts.spec.name
    meta.arches = [a.name for a in arches]
    if repetitions is None:
        meta.max_reps = max_reps
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
    results.meta.kernels = {str(v): kernel_label(t) for v, t in trees.items()}
    results.meta.source = SourceMeta(source.origin, source.kernel_version, source.checksum)
    results.meta.series = series_meta(trees[Variant.PATCHED])  # the patched side's
    try:
        series_dir = trees[Variant.PATCHED].series
        declared = [
            *opts.spec.tradeoffs,
            *series_tradeoffs(series_dir.directory if series_dir else None),
        ]
    except SpecError as e:
        return results, pipeline.record_failure(results, arches, e)
    results.meta.tradeoffs = declared
    results.meta.module_metrics = opts.spec.declared_metrics or None
    results.save()
    for arch in arches:
        wanted = [v for v in Variant if slots is None or any(s.variant is v for s in slots)]
        # A build that fails is recorded in the first slot this invocation boots.
        first = {v: min((s.repetition for s in slots or () if s.variant is v), default=0)
                 for v in wanted}  # fmt: skip
        prepared = {v: pipeline.prepare(arch, trees[v], results, AbSlot(v, first[v]))
                    for v in wanted}  # fmt: skip
        for item in prepared.values():
            if isinstance(item, ArchRun):  # did not build: one failed run, no boots
                results.record(item)
        rep = 0
        while repetitions is None or rep < repetitions:
            for variant in wanted:
                item = prepared[variant]
                if slots is not None and AbSlot(variant, rep) not in slots:
                    continue
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
            rep += 1
            if repetitions is None:
                decision = auto_decision(arch.name, results.runs, rep, max_reps)
                if any(isinstance(item, ArchRun) for item in prepared.values()):
                    decision = decide([], rep, max_reps=rep)  # no boots: nothing to narrow
                reporter.info(f"{arch.name} --reps auto: {decision.text()}")
                if decision.done:
                    if results.meta.reps_auto is None:
                        results.meta.reps_auto = {}
                    results.meta.reps_auto[arch.name] = RepsAutoMeta(
                        reps=rep, max_reps=max_reps, stop=str(decision.stop),
                        text=decision.text(),
                        wide=[(w.label, w.width, w.target) for w in decision.wide],
                    )  # fmt: skip
                    results.save()
                    break
    status = results.finish()
    write_summary(results.path / "summary.md", results.runs, results.meta)
    return results, status
