"""The orchestration: checkpatch every patch, then build every prefix per arch and
compare each build's warnings with the previous prefix's."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.errors import failure
from harness.kernel.arch import Arch, get_arch
from harness.kernel.build import KernelBuilder
from harness.kernel.kconfig import ConfigRequest
from harness.kernel.patches import PatchedTree, PatchError, Series, load_series
from harness.kernel.source import SourceTree, from_debian
from harness.pipeline import config_request
from harness.progress import Reporter
from harness.record.store import default_meta
from harness.seriescheck.checkpatch import run_checkpatch
from harness.seriescheck.errors import SeriesCheckError
from harness.seriescheck.prefix import build_prefix
from harness.seriescheck.report import (
    REPORT_JSON,
    REPORT_MD,
    PatchEntry,
    PrefixBuild,
    PrefixStatus,
    SeriesReport,
    create_result_dir,
    exit_code,
    render_table,
    write_reports,
)
from harness.seriescheck.touched import touched_files
from harness.seriescheck.warnings import diff_warnings, parse_warnings
from harness.seriescheck.worktree import WorkTree
from harness.spec import RunSpec


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
            meta=replace(default_meta(opts.argv), source_sha256=source.checksum),
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
        report.meta.finished = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
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
        title = f"[{k}/{total}] {arch} " + (entry.name[:50] if entry else "baseline")
        with self.reporter.step(title) as step:
            result, made = build_prefix(builder, work.path, k, log, reconfigure, step.activity)
            if not made:
                step.outcome = result.status.upper()
                state.previous, state.previous_ok = [], False
                return result
            lines = log.read_text(errors="replace").splitlines()
            if entry is not None and state.previous is not None:
                self._compare(state, entry, lines, work.path, result)
            state.previous, state.previous_ok = lines, result.status is PrefixStatus.OK
            new = f", {len(result.new_warnings)} new warnings" if result.new_warnings else ""
            ok = result.status is PrefixStatus.OK
            step.outcome = ("ok" if ok else result.status.upper()) + new
        return result

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
