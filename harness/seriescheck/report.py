"""The series check's record (per patch and prefix build), its exit code, and its
series-check.json / series-check.md / terminal table."""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.fsutil import atomic_write_text, fresh_dir
from harness.record.meta import RunMeta
from harness.record.status import EXIT_CODES, RunStatus, worst
from harness.seriescheck.checkpatch import CheckpatchResult
from harness.tables import compact_markdown, fixed_width

REPORT_JSON = "series-check.json"
REPORT_MD = "series-check.md"
EXIT_OK = EXIT_CODES[RunStatus.PASS]
EXIT_FINDINGS = EXIT_CODES[RunStatus.TEST_FAILURE]  # checkpatch findings or new warnings
EXIT_BUILD = EXIT_CODES[RunStatus.BUILD_FAILURE]
EXIT_CONFIG = EXIT_CODES[RunStatus.CONFIG_ERROR]
EXIT_PATCH = EXIT_CODES[RunStatus.PATCH_FAILURE]


class PrefixStatus(enum.StrEnum):
    """How one prefix build went; failures name the run status they stand for."""

    OK = "ok"
    BUILD_FAILURE = "build_failure"
    CONFIG_ERROR = "config_error"
    PATCH_FAILURE = "patch_failure"
    INFRA_ERROR = "infra_error"
    SKIPPED = "skipped"

    @classmethod
    def of(cls, status: RunStatus) -> PrefixStatus:
        return cls(str(status)) if str(status) in cls._value2member_map_ else cls.INFRA_ERROR

    @property
    def run_status(self) -> RunStatus:
        if self in (PrefixStatus.OK, PrefixStatus.SKIPPED):
            return RunStatus.PASS
        return RunStatus(str(self))


@dataclass
class PrefixBuild:
    arch: str
    prefix: int  # patches applied; 0 is the pristine tree
    status: PrefixStatus
    duration: float = 0.0
    first_error: str = ""
    log: str = ""
    warnings_total: int = 0  # every warning in this (incremental) build's log
    warnings_in_touched: list[str] = field(default_factory=list)
    new_warnings: list[str] = field(default_factory=list)
    not_yet_present: list[str] = field(default_factory=list)  # requested symbols not in Kconfig
    config_mismatches: list[str] = field(default_factory=list)
    compared_with_failed_build: bool = False
    base_only: bool = False  # the prefix before --from: built as the comparison base

    def __post_init__(self) -> None:
        self.status = PrefixStatus(self.status)  # report.json readers pass plain strings

    @property
    def label(self) -> str:
        if self.status is PrefixStatus.SKIPPED:
            return "-"
        if self.base_only and self.status is PrefixStatus.OK:
            return f"base {self.duration:.0f}s"
        word = {PrefixStatus.OK: "ok", PrefixStatus.CONFIG_ERROR: "CFG"}.get(self.status, "FAIL")
        return f"{word} {self.duration:.0f}s"


@dataclass
class PatchEntry:
    index: int  # 1-based position in the series
    name: str
    touched: list[str]
    checkpatch: CheckpatchResult | None = None
    builds: dict[str, PrefixBuild] = field(default_factory=dict)

    @property
    def new_warning_count(self) -> int:
        return sum(len(b.new_warnings) for b in self.builds.values())


@dataclass
class SeriesReport:
    series_dir: str
    series_digest: str
    source: str
    arches: list[str]
    checkpatch_only: bool
    first: int = 1  # first patch checked by a build (--from)
    config_fragments: list[str] = field(default_factory=list)
    baseline: dict[str, PrefixBuild] = field(default_factory=dict)
    patches: list[PatchEntry] = field(default_factory=list)
    meta: RunMeta = field(default_factory=RunMeta)

    def all_builds(self) -> Iterator[PrefixBuild]:
        yield from self.baseline.values()
        for p in self.patches:
            yield from p.builds.values()


def exit_code(report: SeriesReport) -> int:
    status = worst(PrefixStatus(b.status).run_status for b in report.all_builds())
    if status is not RunStatus.PASS and status is not RunStatus.NO_TESTS:
        return EXIT_CODES[status]
    dirty = any(p.checkpatch is not None and not p.checkpatch.clean for p in report.patches)
    if dirty or any(p.new_warning_count for p in report.patches):
        return EXIT_FINDINGS
    return EXIT_OK


def report_dict(report: SeriesReport) -> dict[str, Any]:
    data = asdict(report)
    data["meta"] = report.meta.to_json()  # the JSON layout, not the dataclass's
    data["exit_code"] = exit_code(report)
    return data


def table_rows(report: SeriesReport, name_width: int = 58) -> list[list[str]]:
    """Header + one row per prefix (0 = the pristine tree); no build columns if none ran."""
    arches = [] if report.checkpatch_only else report.arches
    rows = [["#", "patch", "checkpatch E/W/C", *arches]]
    if arches:
        rows[0].append("new warnings")
        base = [report.baseline[a].label if a in report.baseline else "-" for a in arches]
        rows.append(["0", "(baseline)", "", *base, ""])
    for p in report.patches:
        row = [str(p.index), p.name[:name_width], p.checkpatch.label if p.checkpatch else "-"]
        if arches:
            row += [p.builds[a].label if a in p.builds else "-" for a in arches]
            checked = [b for b in p.builds.values() if not b.base_only]
            row.append(str(p.new_warning_count) if checked else "-")
        rows.append(row)
    return rows


def render_table(report: SeriesReport) -> str:
    """Plain fixed-width table for the terminal."""
    return fixed_width(table_rows(report))


def render_markdown(report: SeriesReport) -> str:
    code = exit_code(report)
    verdict = "PASS" if code == EXIT_OK else f"FAIL (exit {code})"
    lines = [
        f"# Series check: {verdict}",
        "",
        f"- series: `{report.series_dir}` (sha256 {report.series_digest[:12]})",
        f"- source: {report.source}",
        f"- architectures: {', '.join(report.arches)}"
        + (" (checkpatch only, no builds)" if report.checkpatch_only else ""),
    ]
    if report.first > 1 and not report.checkpatch_only:
        lines.append(
            f"- builds from patch {report.first} on; prefix {report.first - 1} built as the "
            "comparison base (base), earlier prefixes not built (-)"
        )
    if report.config_fragments:
        lines.append(f"- extra config fragments: {', '.join(report.config_fragments)}")
    rows = table_rows(report, name_width=200)
    lines += ["", compact_markdown(rows[0], rows[1:])]
    details = _markdown_details(report)
    if details:
        lines += ["", "## Findings", "", *details]
    return "\n".join(lines) + "\n"


def _markdown_details(report: SeriesReport) -> list[str]:
    out: list[str] = []
    for build in report.baseline.values():
        out += _build_details("baseline", build)
    for p in report.patches:
        if p.checkpatch is not None and not p.checkpatch.clean:
            out.append(f"- `{p.name}`: checkpatch {p.checkpatch.problem or p.checkpatch.label}")
            out += [f"  - {m}" for m in p.checkpatch.messages]
        for build in p.builds.values():
            out += _build_details(f"`{p.name}`", build)
    return out


def _build_details(what: str, b: PrefixBuild) -> list[str]:
    out = []
    if b.status not in (PrefixStatus.OK, PrefixStatus.SKIPPED):
        problem = "; ".join(b.config_mismatches) or b.first_error
        out.append(f"- {what} on {b.arch}: {b.status}: {problem} (log: `{b.log}`)")
    if b.new_warnings:
        note = " (compared with a failed build)" if b.compared_with_failed_build else ""
        out.append(f"- {what} on {b.arch}: {len(b.new_warnings)} new warnings{note}")
        out += [f"  - `{w}`" for w in b.new_warnings]
    if b.not_yet_present:
        out.append(f"- {what} on {b.arch}: not yet present: {', '.join(b.not_yet_present)}")
    return out


def create_result_dir(root: Path, now: dt.datetime | None = None) -> Path:
    """results/<UTC time>-seriescheck-<id>/, created with mkdir (never reused)."""
    return fresh_dir(root, tag="seriescheck", now=now)


def write_reports(report: SeriesReport, directory: Path) -> None:
    atomic_write_text(directory / REPORT_JSON, json.dumps(report_dict(report), indent=2) + "\n")
    atomic_write_text(directory / REPORT_MD, render_markdown(report))
