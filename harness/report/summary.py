"""summary.md for one run: what a reviewer reads first.

Per architecture: status, accelerator, times, KUnit counts per suite,
crashes with the test that was running, and the stress/benchmark module
figures as fixed-width tables that read well in a mail.
"""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from pathlib import Path

from harness.analysis.ktap import Metric, TestStatus
from harness.fsutil import atomic_write_text
from harness.record.meta import RunMeta, SeriesMeta
from harness.record.run import ArchRun
from harness.report.metrics import BENCH_COLUMNS, INFO_CASES, LOCKHOLD_COLUMNS, STRESS_COLUMNS
from harness.tables import markdown_table


def _fmt(value: float | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}"
    return str(int(value)) if isinstance(value, float) else str(value)


def _suite_counts(run: ArchRun) -> list[list[str]]:
    if run.ktap is None:
        return []
    rows = []
    for suite in run.ktap.root.subtests:
        c = suite.counts()
        rows.append([suite.name, suite.status.value, str(c.passed), str(c.failed),
                     str(c.skipped + c.xfail), str(c.crashed)])  # fmt: skip
    return rows


def _module_metrics(metrics: list[Metric], suite: str) -> dict[str, dict[str, float | str]]:
    cases: dict[str, dict[str, float | str]] = defaultdict(dict)
    for m in metrics:
        if m.test_path and m.test_path[0] == suite and m.test not in INFO_CASES:
            cases[m.test].update(m.values)
    return cases


def _declared_tables(run: ArchRun, meta: RunMeta) -> list[str]:
    """One table per module read with the run definition's regular expressions."""
    out: list[str] = []
    for module in dict.fromkeys(d.module for d in meta.module_metrics or []):
        cases = _module_metrics(run.metrics, module)
        keys = list(dict.fromkeys(k for v in cases.values() for k in v))
        if not cases:
            continue
        rows = [[case, *(_fmt(v.get(k)) for k in keys)] for case, v in cases.items()]
        out += [f"{module} (read with the run definition's regular expressions):", ""]
        out += [markdown_table(["case", *keys], rows), ""]
    return out


def _arch_section(run: ArchRun) -> list[str]:
    out = [f"## {run.arch}: {run.status.value.upper()}", ""]
    accel = run.accelerator or "-"
    reason = run.boot.accel_reason if run.boot is not None else ""
    out.append(f"- kernel: {run.kernel}; accelerator: {accel} ({reason})")
    times = ", ".join(f"{k} {v:.1f} s" for k, v in run.durations.items())
    out.append(f"- {run.message}")
    if times:
        out.append(f"- times: {times}")
    if run.build is not None and run.build.image_sha256:
        out.append(f"- image sha256: {run.build.image_sha256}")
    if run.boot is not None:
        out += [f"- note: {note}" for note in run.boot.notes]
    out.append("")
    if rows := _suite_counts(run):
        out += [
            markdown_table(["suite", "status", "pass", "fail", "skip/xfail", "crash"], rows),
            "",
        ]
    for crash in run.crashes:
        where = f" in {crash.test}" if crash.test else ""
        out.append(f"- **{crash.kind}**{where}: `{crash.title}` ({crash.location})")
    if run.crashes:
        out.append("")
    stress = _module_metrics(run.metrics, "kbulk_stress")
    if stress:
        rows = [[case, *(_fmt(v.get(k)) for k in STRESS_COLUMNS)] for case, v in stress.items()]
        out += ["kbulk_stress (counts are per case; latencies in ns):", ""]
        out += [markdown_table(["case", *STRESS_COLUMNS], rows), ""]
    bench = _module_metrics(run.metrics, "kbulk_bench")
    if bench:
        rows = [[case, *(_fmt(v.get(k)) for k in BENCH_COLUMNS)] for case, v in bench.items()]
        out += ["kbulk_bench (under TCG compare ratios only, not absolute times):", ""]
        out += [markdown_table(["case", *BENCH_COLUMNS], rows), ""]
    lockhold = _module_metrics(run.metrics, "kbulk_lockhold")
    if lockhold:
        rows = [[case, *(_fmt(v.get(k)) for k in LOCKHOLD_COLUMNS)] for case, v in lockhold.items()]
        out += [
            "kbulk_lockhold (longest preempt/irqs-off stretch per call, tracer us as ns;"
            " under -icount shift=0 an instruction count):",
            "",
        ]
        out += [markdown_table(["case", *LOCKHOLD_COLUMNS], rows), ""]
    return out


def _code(text: str) -> str:
    """A Markdown code span that holds ``text`` verbatim, even with backticks in it."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render_summary(runs: list[ArchRun], meta: RunMeta) -> str:
    out = ["# kbulk run summary", ""]
    series = meta.series or SeriesMeta()
    out.append(f"- source: {meta.source.origin if meta.source else '?'}")
    out.append(f"- series: {series.dir or 'none'} ({len(series.patches)} patches, "
               f"sha256 {str(series.sha256 or '')[:12]})")  # fmt: skip
    out.append(f"- command: {_code(shlex.join(meta.command_line))}")
    out.append("")
    failed = [
        (run.arch, ".".join(path))
        for run in runs
        if run.ktap
        for path, node in run.ktap.root.walk()
        if node.is_leaf and node.status in (TestStatus.FAIL, TestStatus.CRASH)
    ]
    if failed:
        out += ["Failed or crashed tests:", ""] + [f"- {a}: {t}" for a, t in failed] + [""]
    for run in runs:
        out += _arch_section(run) + _declared_tables(run, meta)
    return "\n".join(out) + "\n"


def write_summary(path: Path, runs: list[ArchRun], meta: RunMeta) -> None:
    atomic_write_text(path, render_summary(runs, meta))
