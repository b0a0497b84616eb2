"""`kbulk series-check`: checkpatch every patch and build every prefix of a series.

Like ktest.pl's patchcheck: each patch must be checkpatch --strict clean, the
kernel must build after every patch (bisectability), and no patch may add
compiler warnings to the files it touches.

One incremental work tree
    ``<cache>/work/seriescheck-<series digest12>/linux`` is a hard-linked copy
    of the pristine tree (``cp -al``; patch(1) replaces the files it changes,
    so the pristine tree is never written through a link). Patches are applied
    one at a time and each prefix is rebuilt in the same out-of-tree build
    directory per arch (``.../build-<arch>-<config digest12>``, beside
    ``linux`` like normal builds, so CCACHE_BASEDIR gives the same relative
    paths and ccache hits). patch(1) gives the files it writes the current
    time, every other file keeps its mtime: make recompiles exactly what the
    patch changed (and, through kbuild's dependency files, every object that
    includes a changed header).

    ``seriescheck-state.json`` records how many patches the tree has; it says
    "busy" while the tree is being changed. A later run reverse-applies the
    recorded patches to get back to the pristine state (patch -R gives those
    files new mtimes, so make rebuilds them). If the state is unknown (an
    interrupted patch, a failed reverse) the tree is copied again and the build
    directories are deleted too: the re-copied files carry the pristine tree's
    old mtimes, older than objects compiled from patched sources, so make
    would otherwise keep stale objects.

New warnings in touched files
    An incremental build only recompiles what changed, so the build log of
    prefix k-1 normally lacks the warnings of files patch k is about to
    change. Before building prefix k-1, the C sources and headers that patch k
    touches get a fresh mtime (their hard link to the pristine tree is broken
    first, so no other tree sees the touch): the k-1 build then recompiles
    them, and every object including a touched header, and its log holds their
    "before" warnings. Patch k rewrites the same files, so the prefix-k log
    holds the "after" warnings. Recompiling unchanged sources is mostly ccache
    hits (ccache replays the compiler's warnings). Warnings are compared per
    (file, message) ignoring line numbers, which patches shift; a header's
    warning repeated by many includers counts once.

Config: the main job's request (spec fragments, series fragments, arch
symbols) plus any --config-fragment. Symbols the series itself introduces do
not exist before the patch that adds them: per prefix, a requested symbol
that did not survive olddefconfig and is defined in no Kconfig file of that
prefix is reported as "not yet present", not as a config error.
"""

from __future__ import annotations

import datetime as dt
import enum
import fcntl
import json
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, failure
from harness.fsutil import atomic_write_text, fresh_dir, hardlink_copy
from harness.kernel.arch import Arch, get_arch
from harness.kernel.build import BuildError, KernelBuilder
from harness.kernel.kconfig import ConfigRequest, Mismatch, verify
from harness.kernel.patches import PatchedTree, PatchError, Series, load_series, run_patch
from harness.kernel.source import Log, SourceTree, from_debian
from harness.pipeline import config_request
from harness.progress import Reporter
from harness.record.status import EXIT_CODES, RunStatus, worst
from harness.record.store import default_meta
from harness.spec import RunSpec
from harness.tables import compact_markdown, fixed_width

REPORT_JSON = "series-check.json"
REPORT_MD = "series-check.md"
STATE_FILE = "seriescheck-state.json"

# Exit codes, as for `kbulk run`: 5 build failure, 6 config error, 7 patch failure.
EXIT_OK = EXIT_CODES[RunStatus.PASS]
EXIT_FINDINGS = EXIT_CODES[RunStatus.TEST_FAILURE]  # checkpatch findings or new warnings
EXIT_BUILD = EXIT_CODES[RunStatus.BUILD_FAILURE]
EXIT_CONFIG = EXIT_CODES[RunStatus.CONFIG_ERROR]
EXIT_PATCH = EXIT_CODES[RunStatus.PATCH_FAILURE]


class SeriesCheckError(HarnessError):
    """The check could not run (no source named, work tree in use): infrastructure."""

    status = RunStatus.INFRA_ERROR


# ----------------------------------------------------------------------- checkpatch

_TOTAL = re.compile(
    r"^total: (\d+) errors?, (\d+) warnings?, (?:(\d+) checks?, )?\d+ lines checked", re.M
)
_FINDING = re.compile(r"^(ERROR|WARNING|CHECK): ")


@dataclass
class CheckpatchResult:
    patch: str
    errors: int = 0
    warnings: int = 0
    checks: int = 0
    messages: list[str] = field(default_factory=list)  # "ERROR: ..." lines
    problem: str = ""  # checkpatch did not run or printed no total line

    @property
    def clean(self) -> bool:
        return not self.problem and self.errors == self.warnings == self.checks == 0

    @property
    def label(self) -> str:
        return "n/a" if self.problem else f"{self.errors}/{self.warnings}/{self.checks}"


def parse_checkpatch(patch: str, output: str) -> CheckpatchResult:
    """Counts from checkpatch's "total: N errors, M warnings, K checks, L lines checked"."""
    m = _TOTAL.search(output)
    if m is None:
        tail = output.strip().splitlines()[-3:]
        return CheckpatchResult(patch, problem="no total line: " + " | ".join(tail))
    messages = [line.strip() for line in output.splitlines() if _FINDING.match(line)]
    return CheckpatchResult(patch, int(m.group(1)), int(m.group(2)), int(m.group(3) or 0), messages)


def run_checkpatch(tree: Path, patch: Path) -> CheckpatchResult:
    script = tree / "scripts" / "checkpatch.pl"
    if not script.is_file():
        return CheckpatchResult(patch.name, problem=f"{script} does not exist")
    # cwd=tree: checkpatch finds the tree (MAINTAINERS, spelling.txt) from there
    cmd = ["perl", str(script), "--strict", "--color=never", str(patch)]
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, check=False)
    return parse_checkpatch(patch.name, proc.stdout + proc.stderr)


# -------------------------------------------------------------------- touched files

_DIFF_GIT = re.compile(r"^diff --git a/(\S+) b/(\S+)$")
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def _header_path(rest: str) -> str | None:
    path = rest.split("\t", 1)[0].strip()
    if path == "/dev/null":
        return None
    return path[2:] if path.startswith(("a/", "b/")) else path


def touched_files(patch_text: str) -> list[str]:
    """Paths (-p1) a patch creates, changes, deletes or renames, in order.

    Hunk bodies are skipped by their line counts, so a removed line that
    happens to start with "-- " is not mistaken for a file header.
    """
    found: dict[str, None] = {}
    old_left = new_left = 0
    for line in patch_text.splitlines():
        if old_left > 0 or new_left > 0:
            tag = line[:1]
            if tag in (" ", ""):
                old_left, new_left = old_left - 1, new_left - 1
            elif tag == "-":
                old_left -= 1
            elif tag == "+":
                new_left -= 1
            continue
        if m := _HUNK.match(line):
            old_left, new_left = int(m.group(1) or 1), int(m.group(2) or 1)
        elif m := _DIFF_GIT.match(line):
            found.update(dict.fromkeys(m.groups()))
        elif line.startswith(("--- ", "+++ ")) and (path := _header_path(line[4:])):
            found[path] = None
    return list(found)


# ------------------------------------------------------------------------- warnings

_ANSI = re.compile(r"\x1b\[[0-9;]*[mK]")
_GCC_WARNING = re.compile(r"^(?P<path>[^\s:]+):(?P<line>\d+):(?:\d+:)? warning: (?P<msg>.+)$")


@dataclass(frozen=True, order=True)
class CompilerWarning:
    path: str  # relative to the kernel tree
    line: int
    message: str  # including the [-Wflag]

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def normalize_path(raw: str, tree: Path, build_dir: Path) -> str | None:
    """A compiler's path (absolute, or relative to the build dir) -> relative to the tree."""
    path = Path(raw) if os.path.isabs(raw) else build_dir / raw
    path = Path(os.path.normpath(path))
    try:
        return path.relative_to(tree).as_posix()
    except ValueError:
        return None  # generated files in the build dir, system headers


def parse_warnings(lines: Iterable[str], tree: Path, build_dir: Path) -> list[CompilerWarning]:
    """Compiler warnings located in the tree, deduplicated, in first-seen order."""
    found: dict[CompilerWarning, None] = {}
    for raw in lines:
        m = _GCC_WARNING.match(_ANSI.sub("", raw).strip())
        if m is None:
            continue
        path = normalize_path(m.group("path"), tree, build_dir)
        if path is not None:
            found[CompilerWarning(path, int(m.group("line")), m.group("msg").strip())] = None
    return list(found)


def new_warnings(
    before: Iterable[CompilerWarning], after: Iterable[CompilerWarning]
) -> list[CompilerWarning]:
    """Warnings in `after` beyond those in `before`, compared per (path, message).

    Line numbers are ignored for matching (the patch shifts them); when a
    message occurs more often after, the occurrences at lines without that
    message before are reported first.
    """
    before_set, after_set = set(before), list(dict.fromkeys(after))
    counts = Counter((w.path, w.message) for w in before_set)
    old_lines: dict[tuple[str, str], set[int]] = {}
    for w in before_set:
        old_lines.setdefault((w.path, w.message), set()).add(w.line)
    groups: dict[tuple[str, str], list[CompilerWarning]] = {}
    for w in after_set:
        groups.setdefault((w.path, w.message), []).append(w)
    out: list[CompilerWarning] = []
    for key, items in groups.items():
        excess = len(items) - counts[key]
        if excess > 0:
            seen = old_lines.get(key, set())
            ranked = sorted(items, key=lambda w: (w.line in seen, w.line))
            out += ranked[:excess]
    return sorted(out)


def diff_warnings(
    before_lines: Iterable[str],
    after_lines: Iterable[str],
    files: Collection[str],
    tree: Path,
    build_dir: Path,
) -> list[CompilerWarning]:
    """New warnings in `files` between two build logs (lines of text)."""
    wanted = set(files)
    before = [w for w in parse_warnings(before_lines, tree, build_dir) if w.path in wanted]
    after = [w for w in parse_warnings(after_lines, tree, build_dir) if w.path in wanted]
    return new_warnings(before, after)


# --------------------------------------------------------------------------- report


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
    meta: dict[str, Any] = field(default_factory=dict)

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


# ------------------------------------------------------------------------ work tree

_COMPILED = {".c", ".h", ".S"}


def touch_unlinked(path: Path) -> None:
    """Give path a fresh mtime without touching the pristine tree it is hard-linked to."""
    if path.stat().st_nlink > 1:
        tmp = path.with_name(f".{path.name}.kbulk-touch")
        shutil.copy2(path, tmp)
        os.replace(tmp, path)
    os.utime(path)


@dataclass
class WorkTree:
    """The incremental tree of one series and its progress marker."""

    root: Path  # <cache>/work/seriescheck-<digest12>
    source: SourceTree
    series: Series

    @property
    def path(self) -> Path:
        return self.root / "linux"

    @property
    def state_file(self) -> Path:
        return self.root / STATE_FILE

    def _state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def _record(self, applied: int | None) -> None:
        state = {"source": self.source.checksum, "series": self.series.digest, "applied": applied}
        atomic_write_text(self.state_file, json.dumps(state) + "\n")

    def reset(self, log: Log) -> None:
        """Bring the tree to the pristine state: reverse-apply, or copy afresh."""
        self.root.mkdir(parents=True, exist_ok=True)
        state = self._state()
        applied = state.get("applied")
        known = (
            state.get("source") == self.source.checksum
            and state.get("series") == self.series.digest
            and isinstance(applied, int)
            and self.path.is_dir()
        )
        if known:
            try:
                assert isinstance(applied, int)
                for k in range(applied, 0, -1):
                    self._record(None)
                    run_patch(self.path, self.series.patches[k - 1], reverse=True)
                    self._record(k - 1)
                if applied:
                    log(f"reverse-applied {applied} patches in {self.path}")
                return
            except PatchError as e:
                log(f"work tree in an unknown state ({e}); copying it again")
        self._record(None)
        for stale in [self.path, *self.root.glob("build-*")]:
            shutil.rmtree(stale, ignore_errors=True)
        log(f"copying {self.source.origin} into {self.path}")
        hardlink_copy(self.source.path, self.path)
        self._record(0)

    def apply(self, k: int) -> None:
        """Apply patch k (1-based); the tree must hold patches 1..k-1."""
        self._record(None)
        run_patch(self.path, self.series.patches[k - 1])
        self._record(k)

    def touch(self, files: Iterable[str]) -> None:
        for name in files:
            path = self.path / name
            if Path(name).suffix in _COMPILED and path.is_file():
                touch_unlinked(path)

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "lock").open("w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SeriesCheckError(f"another series-check is using {self.root}") from None
            yield


def defined_symbols(tree: Path, symbols: Collection[str]) -> set[str]:
    """Which of the CONFIG_ symbols some Kconfig file of the tree defines."""
    names = {s.removeprefix("CONFIG_") for s in symbols}
    if not names:
        return set()
    pattern = re.compile(r"^\s*(?:menu)?config\s+(" + "|".join(map(re.escape, names)) + r")\s*$")
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("Kconfig"):
                text = (Path(dirpath) / name).read_text(errors="replace")
                found.update(m.group(1) for m in map(pattern.match, text.splitlines()) if m)
    return {f"CONFIG_{n}" for n in found}


# ------------------------------------------------------------------------ the check


@dataclass
class SeriesCheckOptions:
    spec: RunSpec
    series_dir: Path
    results_root: Path
    cache: Path
    arches: list[str] = field(default_factory=list)
    config_fragments: list[Path] = field(default_factory=list)
    checkpatch_only: bool = False
    upto: int | None = None
    # First patch whose prefix is built; prefix first-1 is built as its
    # comparison base, earlier patches are only applied.  For configs too big
    # to rebuild after every early header change (configs/callers.config).
    first: int = 1
    jobs: int = 2
    argv: list[str] = field(default_factory=list)


@dataclass
class _ArchState:
    builder: KernelBuilder
    logs: Path
    previous: list[str] | None = None  # log lines of the last prefix built (None: none yet)
    previous_ok: bool = True


class SeriesCheck:
    def __init__(self, opts: SeriesCheckOptions, reporter: Reporter) -> None:
        self.opts = opts
        self.reporter = reporter

    def run(self) -> tuple[SeriesReport, Path]:
        opts = self.opts
        series = load_series(opts.series_dir)
        patches = series.patches[: opts.upto] if opts.upto is not None else series.patches
        if opts.spec.debian is None:
            raise SeriesCheckError(f"{opts.spec.path}: the run definition names no Debian source")
        with self.reporter.step("kernel source") as step:
            source = from_debian(opts.spec.debian, opts.cache, self.reporter.info)
            step.outcome = source.origin
        arches = opts.arches or opts.spec.arches
        report = SeriesReport(
            str(series.directory),
            series.digest,
            source.origin,
            arches,
            opts.checkpatch_only,
            opts.first,
            [str(f) for f in opts.config_fragments],
            meta=default_meta(opts.argv, source_sha256=source.checksum),
        )
        for i, patch in enumerate(patches, start=1):
            report.patches.append(PatchEntry(i, patch.name, touched_files(patch.read_text())))
        out = create_result_dir(opts.results_root)
        self.reporter.info(f"results: {out}")
        with self.reporter.step(f"checkpatch --strict ({len(patches)} patches)") as step:
            for entry, patch in zip(report.patches, patches, strict=True):
                entry.checkpatch = run_checkpatch(source.path, patch)
            dirty = sum(not e.checkpatch.clean for e in report.patches if e.checkpatch)
            step.outcome = f"{dirty} of {len(patches)} patches with findings"
        write_reports(report, out)
        if not opts.checkpatch_only:
            self._build_prefixes(report, source, series, [get_arch(a) for a in arches], out)
        report.meta["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        write_reports(report, out)
        return report, out

    def _request(self, arch: Arch, tree: PatchedTree) -> ConfigRequest:
        """The main job's config (series fragments included) plus --config-fragment files."""
        o = self.opts
        request = config_request(o.spec, arch, tree)
        for fragment in self.opts.config_fragments:
            request.add_fragment(fragment)
        return request

    def _build_prefixes(
        self,
        report: SeriesReport,
        source: SourceTree,
        series: Series,
        arches: list[Arch],
        out: Path,
    ) -> None:
        work_root = self.opts.cache / "work"
        work = WorkTree(work_root / f"seriescheck-{series.digest[:12]}", source, series)
        tree = PatchedTree(work.path, source, series, series.digest)
        with work.locked():
            with self.reporter.step("work tree") as step:
                work.reset(self.reporter.info)
                step.outcome = str(work.path)
            states = {}
            for arch in arches:
                builder = KernelBuilder(
                    tree, arch, self._request(arch, tree), self.opts.cache, work_root,
                    jobs=self.opts.jobs,
                )  # fmt: skip
                logs = builder.build_dir / "seriescheck-logs"
                logs.mkdir(parents=True, exist_ok=True)
                states[arch.name] = _ArchState(builder, logs)
            total = len(report.patches)
            base = max(self.opts.first - 1, 0)
            for k in range(total + 1):
                entry = report.patches[k - 1] if k else None
                if entry is not None:
                    try:
                        work.apply(k)
                    except PatchError as e:
                        found = failure(e)
                        self.reporter.error(found.message)
                        for arch in arches:
                            entry.builds[arch.name] = PrefixBuild(
                                arch.name,
                                k,
                                PrefixStatus.of(found.status),
                                first_error=found.message,
                            )
                        write_reports(report, out)
                        return
                if k < base:  # before --from: applied, not built
                    continue
                upcoming = report.patches[k].touched if k < total else []
                work.touch(upcoming)  # so this build logs their "before" warnings
                reconfigure = k == base or any(Path(f).name.startswith("Kconfig") for f in
                                            (entry.touched if entry else []))  # fmt: skip
                for arch in arches:
                    result = self._build_one(work, states[arch.name], k, total, entry, reconfigure)
                    if k == base and entry is not None:
                        result.base_only = True  # built to compare with, not checked
                    (report.baseline if entry is None else entry.builds)[arch.name] = result
                    if result.status is not PrefixStatus.OK:
                        dest = out / arch.name
                        dest.mkdir(exist_ok=True)
                        shutil.copy2(result.log, dest / Path(result.log).name)
                    write_reports(report, out)

    def _build_one(
        self,
        work: WorkTree,
        state: _ArchState,
        k: int,
        total: int,
        entry: PatchEntry | None,
        reconfigure: bool,
    ) -> PrefixBuild:
        builder = state.builder
        arch = builder.arch.name
        log = state.logs / f"prefix-{k:04d}.log"
        log.write_text("")
        result = PrefixBuild(arch, k, PrefixStatus.OK, log=str(log))
        title = f"[{k}/{total}] {arch} " + (entry.name[:50] if entry else "baseline")
        with self.reporter.step(title) as step:
            started = time.monotonic()
            try:
                problems = self._configure(builder, log, reconfigure, work.path, result)
            except BuildError as e:
                found = failure(e)
                result.status, result.first_error = PrefixStatus.of(found.status), found.message
                result.duration = round(time.monotonic() - started, 1)
                step.outcome = result.status.upper()
                state.previous, state.previous_ok = [], False
                return result
            rc, scan = builder.run_make(builder.kernel_targets(), log, step.activity)
            result.duration = round(time.monotonic() - started, 1)
            result.warnings_total = scan.warnings
            image_ok = (builder.build_dir / builder.arch.image).is_file()
            if rc != 0 or not image_ok:
                result.status = PrefixStatus.BUILD_FAILURE
                result.first_error = scan.first_error or f"make exited with {rc}"
            elif problems:
                result.status = PrefixStatus.CONFIG_ERROR
            lines = log.read_text(errors="replace").splitlines()
            if entry is not None and state.previous is not None:
                self._compare(state, entry, lines, work.path, result)
            state.previous, state.previous_ok = lines, result.status is PrefixStatus.OK
            new = f", {len(result.new_warnings)} new warnings" if result.new_warnings else ""
            ok = result.status is PrefixStatus.OK
            step.outcome = ("ok" if ok else result.status.upper()) + new
        return result

    def _configure(
        self, builder: KernelBuilder, log: Path, force: bool, tree: Path, result: PrefixBuild
    ) -> list[Mismatch]:
        """Configure when the Kconfig changed (or at the baseline); verify at every prefix.

        Without a Kconfig change the .config stays valid: make's own syncconfig
        covers it, and a full reconfiguration would only cost time.
        """
        dotconfig = builder.build_dir / ".config"
        if force or not dotconfig.is_file():
            mismatches = builder.configure(log, force=True)
        else:
            mismatches = verify(builder.request, dotconfig.read_text())
        if not mismatches:
            return []
        present = defined_symbols(tree, [m.requirement.symbol for m in mismatches])
        real = [m for m in mismatches if m.requirement.symbol in present]
        result.not_yet_present = [
            m.requirement.symbol for m in mismatches if m.requirement.symbol not in present
        ]
        result.config_mismatches = [str(m) for m in real]
        return real

    @staticmethod
    def _compare(
        state: _ArchState, entry: PatchEntry, lines: list[str], tree: Path, result: PrefixBuild
    ) -> None:
        bdir = state.builder.build_dir
        wanted = set(entry.touched)
        after = [w for w in parse_warnings(lines, tree, bdir) if w.path in wanted]
        result.warnings_in_touched = [str(w) for w in after]
        result.new_warnings = [
            str(w) for w in diff_warnings(state.previous or [], lines, wanted, tree, bdir)
        ]
        result.compared_with_failed_build = not state.previous_ok


def run(opts: SeriesCheckOptions, reporter: Reporter) -> int:
    report, out = SeriesCheck(opts, reporter).run()
    reporter.info("")
    for line in render_table(report).splitlines():
        reporter.info(line)
    code = exit_code(report)
    reporter.info(f"results: {out} ({REPORT_JSON}, {REPORT_MD}); exit {code}")
    return code
