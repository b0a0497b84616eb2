"""Turn a finished boot (console lines + how it ended) into a classified run.

Pure apart from the optional stack-trace decoding, so `kbulk parse` and the
live pipeline classify a console log the same way.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.analysis.crash import Evidence, find_crashes, running_test
from harness.analysis.ktap import (
    Counts,
    KtapDocument,
    Metric,
    TestStatus,
    metrics_from,
    parse_console,
)
from harness.analysis.module_metrics import MetricRule, regex_metrics
from harness.analysis.selftest_lines import parse_summaries
from harness.boot.guest.markers import INIT_START, STEP_BEGIN, STEP_END
from harness.record.run import CrashReport, status_from_tests
from harness.record.status import NON_FATAL_KINDS, ExitReason, RunStatus, worst


@dataclass
class Analysis:
    status: RunStatus
    message: str
    ktap: KtapDocument
    crashes: list[CrashReport]
    metrics: list[Metric]
    module_steps: dict[str, int | None] = field(default_factory=dict)  # name -> rc (None: no end)


def module_steps(lines: Iterable[str]) -> dict[str, int | None]:
    """Module name -> insmod rc. A module loaded by several steps (e.g. once per
    mempolicy) keeps its first failure: a later step that loads fine must not hide it."""
    steps: dict[str, int | None] = {}
    for line in lines:
        if m := STEP_BEGIN.search(line):
            if steps.get(m.group(1)) in (None, 0):
                steps[m.group(1)] = None
        elif (m := STEP_END.search(line)) and steps.get(m.group(1)) is None:
            steps[m.group(1)] = int(m.group(2))
    return steps


def analyze(
    lines: Collection[str],
    reason: ExitReason | None,
    expect_modules: list[str],
    qemu_stderr: list[str] | None = None,
    qemu_exit: str | None = None,
    *,
    rules: Mapping[str, Sequence[MetricRule]] | None = None,
    load_rc: Mapping[str, int] | None = None,
    evidence: Sequence[Evidence] = (),
    watched: bool = True,
) -> Analysis:
    """Classify a boot. ``reason`` None means a saved log of unknown ending (parse);
    ``qemu_stderr`` and ``qemu_exit`` (e.g. "exit status 1") are QEMU's own, never the guest's.
    ``rules``: module -> regular expressions turning its output into metrics (besides
    KTAP); ``load_rc``: module -> the load status that is not a failure (default 0).
    ``lines`` is only iterated (several passes), so a file-backed console
    (reader.ConsoleFile) is parsed without holding it in memory.

    ``evidence`` (a machine's pstore records) is searched for a crash only when
    the console shows none: a console that went silent, or a machine without a
    console command (``watched`` False: no console was read at all)."""
    doc = parse_console(lines)
    legacy = parse_summaries(lines)
    if legacy:  # self-tests without KTAP (test_vmalloc) count like KUnit suites
        doc.root.subtests.extend(legacy)
        doc.root.status = doc.root.counts().status()
    crashes = find_crashes(lines)
    metrics = metrics_from(doc) + regex_metrics(lines, rules or {})
    steps = module_steps(lines)
    fatal = [c for c in crashes if c.kind not in NON_FATAL_KINDS]
    if not fatal:
        for record in evidence:
            found = [c for c in find_crashes(record.lines) if c.kind not in NON_FATAL_KINDS]
            for crash in found:
                crash.source = record.source
            if found:
                crashes.extend(found)
                fatal = found
                break

    def done(status: RunStatus, message: str) -> Analysis:
        return Analysis(status, message, doc, crashes, metrics, steps)

    if reason == ExitReason.QEMU_ERROR:
        said = " | ".join((qemu_stderr or [])[:5]) or "no message on stderr"
        how = f" ({qemu_exit})" if qemu_exit else ""
        where = "before the guest printed anything" if not lines else "while the guest ran"
        return done(RunStatus.INFRA_ERROR, f"QEMU failed {where}{how}: {said}")
    if fatal:
        first = fatal[0]
        where = f" during {first.test}" if first.test else ""
        origin = f" (from {first.source})" if first.source else ""
        return done(RunStatus.CRASH, f"{first.kind}{where}: {first.title}{origin}")
    if not watched:
        if reason in (ExitReason.TIMEOUT, ExitReason.INACTIVITY):
            return done(
                RunStatus.TIMEOUT,
                "the machine did not come back from the kernel under test in time "
                "(no console: nothing is known of the boot itself)",
            )
        return done(
            RunStatus.NO_TESTS,
            "no console was read (the machine has no console command) and its pstore "
            "holds no crash of this boot: the kernel under test came back, its results "
            "are unknown",
        )
    if reason in (ExitReason.TIMEOUT, ExitReason.INACTIVITY):
        # Named as crash reports name it (step framing, KTAP position); the tree's
        # first crashed leaf only when the console says nothing about it.
        running = running_test(lines) or _running_test(doc)
        what = "no console output" if reason == ExitReason.INACTIVITY else "overall timeout"
        where = f" while {running} was running" if running else ""
        if not lines:
            where = " before the kernel printed anything (hang at boot)"
        return done(RunStatus.TIMEOUT, f"{what}{where}")
    saw_init = any(INIT_START in line for line in lines)
    if reason in (ExitReason.GUEST_EXIT, ExitReason.HALTED):
        where = "before init started" if not saw_init else "before init finished its plan"
        return done(RunStatus.CRASH, f"the guest stopped {where} (no crash report on the console)")
    expected = load_rc or {}
    failed_loads = [n for n, rc in steps.items() if rc not in (expected.get(n, 0), None)]
    missing = [m for m in expect_modules if m not in steps]
    status = status_from_tests(doc, crashes)
    messages = []
    if failed_loads:
        messages.append(
            "module load failed: "
            + ", ".join(
                f"{n} rc={steps[n]}" + (f" (expected {expected[n]})" if expected.get(n) else "")
                for n in failed_loads
            )
        )
        status = _worse(status, RunStatus.TEST_FAILURE)
    if missing and reason is not None:
        messages.append("modules never loaded: " + ", ".join(missing))
        status = _worse(status, RunStatus.INFRA_ERROR)
    warnings = [c for c in crashes if c.kind in NON_FATAL_KINDS]
    if warnings:
        first = warnings[0]
        where = f" during {first.test}" if first.test else ""
        messages.append(f"kernel {first.kind}{where}: {first.title}")
        status = _worse(status, RunStatus.TEST_FAILURE)
    counts = doc.root.counts()
    messages.insert(0, _counts_text(counts))
    return done(status, "; ".join(messages))


def _worse(a: RunStatus, b: RunStatus) -> RunStatus:
    return worst([a, b])


def _counts_text(counts: Counts) -> str:
    parts = [f"{counts.passed} passed", f"{counts.failed} failed"]
    for name in ("skipped", "xfail", "crashed"):
        value = getattr(counts, name, 0)
        if value:
            parts.append(f"{value} {name}")
    return ", ".join(parts)


def _running_test(doc: KtapDocument) -> str | None:
    for path, node in doc.root.walk():
        if node.status == TestStatus.CRASH and not node.subtests:
            return ".".join(path)
    return None


def decode_crashes(
    crashes: list[CrashReport], tree: Path, build_dir: Path, timeout: float = 120
) -> None:
    """Fill CrashReport.decoded with scripts/decode_stacktrace.sh output (best effort)."""
    script = tree / "scripts" / "decode_stacktrace.sh"
    vmlinux = build_dir / "vmlinux"
    if not script.is_file() or not vmlinux.is_file() or shutil.which("addr2line") is None:
        return
    for crash in crashes:
        if crash.kind in NON_FATAL_KINDS and len(crashes) > 5:
            continue
        try:
            proc = subprocess.run(
                [str(script), str(vmlinux), str(tree), str(build_dir)],
                input="\n".join(crash.excerpt) + "\n",
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            crash.decoded = ["decode_stacktrace.sh timed out"]
            continue
        if proc.returncode == 0 and proc.stdout.strip():
            crash.decoded = proc.stdout.splitlines()
