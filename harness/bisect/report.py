"""The bisect's record (every prefix tested, with its verdict and evidence), its exit
code, and bisect.json / bisect.md / the terminal summary."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.fsutil import atomic_write_text
from harness.record.meta import RunMeta
from harness.record.status import EXIT_CODES, RunStatus

from .search import Outcome, SearchResult, Verdict

REPORT_JSON = "bisect.json"
REPORT_MD = "bisect.md"
EXIT_FOUND = 0
EXIT_AMBIGUOUS = 1  # skipped prefixes between the last good and the first bad one
EXIT_REFUSED = 11  # prefix 0 is not good or prefix N is not bad

_SUBJECT = re.compile(r"^Subject:\s*(.*)$")
_PREFIX = re.compile(r"^\[[^\]]*\]\s*")


def patch_subject(path: Path) -> str:
    """The patch's Subject: header (folded lines joined, "[PATCH n/m]" dropped), or its
    file name for a plain diff."""
    lines = path.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        if line == "" or line.startswith("---"):
            break
        if m := _SUBJECT.match(line):
            text = m.group(1)
            for cont in lines[i + 1 :]:
                if not cont.startswith((" ", "\t")):
                    break
                text += " " + cont.strip()
            return _PREFIX.sub("", text).strip()
    return path.name


@dataclass
class PrefixRecord:
    prefix: int  # patches applied; 0 is the source without the series
    patch: str | None  # the prefix's last patch (file name)
    verdict: Verdict
    text: str  # what was seen, one line
    evidence: dict[str, Any]
    run_status: str
    kernel: str
    result_dir: str  # relative to the bisect's directory
    build_status: str
    build_seconds: float
    seconds: float


@dataclass
class BisectReport:
    series_dir: str
    series_digest: str
    patches: list[str]
    subjects: list[str]
    arch: str
    condition: str
    spec: str
    meta: RunMeta = field(default_factory=RunMeta)
    source: str = ""
    prefixes: list[PrefixRecord] = field(default_factory=list)
    search: SearchResult | None = None
    aborted: RunStatus | None = None  # the bisect stopped: the host, a patch, a bad option
    message: str = ""
    seconds: float = 0.0

    def abort(self, status: RunStatus, message: str) -> None:
        self.aborted, self.message = status, message

    def record(self, prefix: int) -> PrefixRecord | None:
        return next((p for p in self.prefixes if p.prefix == prefix), None)

    def patch_of(self, prefix: int) -> dict[str, Any]:
        return {
            "prefix": prefix,
            "patch": self.patches[prefix - 1],
            "subject": self.subjects[prefix - 1],
        }

    @property
    def exit_code(self) -> int:
        if self.aborted is not None:
            return EXIT_CODES[self.aborted]
        if self.search is None:
            return EXIT_CODES[RunStatus.INFRA_ERROR]
        return {
            Outcome.FOUND: EXIT_FOUND,
            Outcome.AMBIGUOUS: EXIT_AMBIGUOUS,
            Outcome.REFUSED: EXIT_REFUSED,
        }[self.search.outcome]

    def headline(self) -> str:
        s = self.search
        if self.aborted is not None:
            return f"bisect stopped ({self.aborted}): {self.message}"
        if s is None:
            return "bisect did not run"
        if s.outcome is Outcome.REFUSED:
            end = self.prefixes[-1] if self.prefixes else None
            seen = f" ({end.text})" if end is not None else ""
            return f"refused: {s.refusal}{seen}"
        if s.outcome is Outcome.AMBIGUOUS:
            names = ", ".join(f"{k} {self.patches[k - 1]}" for k in s.candidates)
            return (
                f"the first bad patch is one of {len(s.candidates)} (prefixes between "
                f"them could not be tested): {names}"
            )
        assert s.first_bad is not None
        return f"first bad patch: {s.first_bad}/{s.total} {self.patches[s.first_bad - 1]}"

    def builds_text(self) -> str:
        s = self.search
        if s is None:
            return f"{len(self.prefixes)} prefixes built"
        linear = (
            f"a linear walk from prefix 0 to the first bad one: {s.linear_builds}; "
            if s.linear_builds is not None
            else ""
        )
        return (
            f"{s.builds} prefixes built and booted ({linear}every prefix, as "
            f"series-check builds: {s.total + 1})"
        )

    def summary_lines(self) -> list[str]:
        """The terminal summary: the answer, the evidence on both sides, the cost."""
        out = [self.headline()]
        s = self.search
        if s is not None and s.outcome is Outcome.FOUND and s.first_bad is not None:
            k = s.first_bad
            out.append(f"  subject: {self.subjects[k - 1]}")
            for j in (k, k - 1):
                rec = self.record(j)
                if rec is not None:
                    out.append(f"  prefix {j} ({rec.verdict}): {rec.text}")
        out.append(f"  builds: {self.builds_text()}")
        order = ", ".join(f"{p.prefix} {p.verdict}" for p in self.prefixes)
        out.append(f"  search order: {order or 'none'}")
        return out

    def to_json(self) -> dict[str, Any]:
        s = self.search
        data: dict[str, Any] = {
            "schema_version": 1,
            "meta": self.meta.to_json(),
            "series": {
                "dir": self.series_dir,
                "sha256": self.series_digest,
                "patches": self.patches,
                "subjects": self.subjects,
            },
            "source": self.source,
            "arch": self.arch,
            "spec": self.spec,
            "condition": self.condition,
            "outcome": str(s.outcome) if s and self.aborted is None else "aborted",
            "headline": self.headline(),
            "aborted": str(self.aborted) if self.aborted else None,
            "message": self.message,
            "exit_code": self.exit_code,
            "seconds": self.seconds,
            "builds": len(self.prefixes),
            "linear_builds": s.linear_builds if s else None,
            "series_check_builds": len(self.patches) + 1,
            "refusal": s.refusal if s else "",
            "first_bad": None,
            "last_good": s.last_good if s else None,
            "candidates": [self.patch_of(k) for k in s.candidates] if s else [],
            "evidence": None,
            "prefixes": [asdict(p) for p in self.prefixes],
            "search_order": [p.prefix for p in self.prefixes],
        }
        if s is not None and s.outcome is Outcome.FOUND and s.first_bad is not None:
            data["first_bad"] = self.patch_of(s.first_bad)
            data["evidence"] = self.evidence(s.first_bad)
        return data

    def evidence(self, first_bad: int) -> dict[str, Any]:
        """The verdicts at the first bad prefix and the prefix before it."""
        out: dict[str, Any] = {}
        for name, k in (("bad", first_bad), ("before", first_bad - 1)):
            rec = self.record(k)
            out[name] = (
                None
                if rec is None
                else {
                    "prefix": k,
                    "verdict": str(rec.verdict),
                    "text": rec.text,
                    "evidence": rec.evidence,
                    "result_dir": rec.result_dir,
                }
            )
        return out

    def markdown(self) -> str:
        s = self.search
        lines = [
            f"# Bisect: {self.headline()}",
            "",
            f"- condition (bad): {self.condition}",
            f"- series: `{self.series_dir}` (sha256 {self.series_digest[:12]}, "
            f"{len(self.patches)} patches)",
            f"- source: {self.source or '?'}; arch: {self.arch}; run definition: `{self.spec}`",
            f"- builds: {self.builds_text()}",
            f"- time: {self.seconds:.0f} s; exit {self.exit_code}",
        ]
        if s is not None and s.outcome is Outcome.FOUND and s.first_bad is not None:
            k = s.first_bad
            lines += [
                "",
                "## First bad patch",
                "",
                f"`{self.patches[k - 1]}`: {self.subjects[k - 1]}",
                "",
            ]
            for title, j in ((f"At prefix {k} (bad)", k), (f"At prefix {k - 1} (good)", k - 1)):
                rec = self.record(j)
                if rec is None:
                    continue
                lines += [
                    f"### {title}",
                    "",
                    f"{rec.text} (run {rec.run_status}, `{rec.result_dir}/`)",
                    "",
                ]
                lines += _evidence_lines(rec.evidence)
        lines += [
            "",
            "## Prefixes tested, in search order",
            "",
            "| prefix | last patch | verdict | what was seen | build | total |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for p in self.prefixes:
            text = p.text.replace("|", "\\|")
            lines.append(
                f"| {p.prefix} | {p.patch or '(none)'} | {p.verdict} | {text} | "
                f"{p.build_status} {p.build_seconds:.0f} s | {p.seconds:.0f} s |"
            )
        return "\n".join(lines) + "\n"

    def write(self, directory: Path) -> None:
        atomic_write_text(directory / REPORT_JSON, json.dumps(self.to_json(), indent=2) + "\n")
        atomic_write_text(directory / REPORT_MD, self.markdown())


def _evidence_lines(evidence: dict[str, Any]) -> list[str]:
    out = []
    for key, value in evidence.items():
        if isinstance(value, list):
            if not value:
                continue
            out.append(f"- {key}:")
            out += [f"  - `{v}`" for v in value]
        elif value is not None and value != "":
            out.append(f"- {key}: {value}")
    return [*out, ""] if out else out
