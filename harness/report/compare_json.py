"""compare.json: the whole comparison as data (every metric, every sample)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.record.run import ArchRun
from harness.report.compare import Comparison, Side, describe, labels

__all__ = ["to_json"]


def to_json(cmp: Comparison) -> dict[str, Any]:
    def side(s: Side) -> dict[str, Any]:
        return {
            "kernels": s.kernels,
            "directories": [str(d) for d in s.directories],
            "runs": [
                {
                    "arch": r.run.arch,
                    "kernel": r.run.kernel,
                    "status": str(r.run.status),
                    "accelerator": r.run.accelerator,
                    "directory": str(r.directory),
                    "image_sha256": r.run.build.image_sha256 if r.run.build else None,
                    "repetition": r.run.repetition,
                }
                for r in s.runs
            ],
        }

    return {
        "command_line": cmp.command_line,
        "forced": cmp.forced,
        "merge_warnings": cmp.merge_warnings,
        "exit_code": cmp.exit_code,
        "verdict": cmp.verdict(),
        "regressions": cmp.regressions(),
        "intended": [f"{m.arch}: {m.path}" for m in cmp.intended()],
        "improvements": [f"{m.arch}: {m.path}" for m in cmp.improvements()],
        "within_threshold": [f"{m.arch}: {m.path}" for m in cmp.within_threshold()],
        "tradeoffs": [t.to_json() for t in cmp.tradeoffs],
        "module_metrics": [d.to_json() for d in cmp.declared],
        "not_counted_tcg": cmp.uncounted(),
        "baseline": side(cmp.baseline),
        "patched": side(cmp.patched),
        "only_baseline": cmp.only_baseline,
        "only_patched": cmp.only_patched,
        "mismatches": [m.__dict__ for m in cmp.mismatches],
        "arches": [
            {
                "arch": a.arch,
                "accelerators": a.accelerators,
                "status": {"baseline": a.status_a, "patched": a.status_b},
                "run_regression": a.run_regression,
                "tests": [
                    {"test": c.test, "baseline": c.a, "patched": c.b, "regression": c.regression}
                    for c in a.tests
                ],
                "new_crashes": [
                    {"kind": c.kind, "title": c.title, "test": c.test} for c in a.new_crashes
                ],
                "gone_crashes": [
                    {"kind": c.kind, "title": c.title, "test": c.test} for c in a.gone_crashes
                ],
                "metrics": [describe(m) for m in a.metrics],
                "labels": {
                    "baseline": _labels_json(r.run for r in a.a),
                    "patched": _labels_json(r.run for r in a.b),
                },
            }
            for a in cmp.arches
        ],
    }


def _labels_json(runs: Iterable[ArchRun]) -> dict[str, dict[str, list[str]]]:
    return {f"{g}.{c}" if g else c: v for (g, c), v in labels(runs).items() if v}
