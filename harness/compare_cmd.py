"""`kbulk compare` and `kbulk report`: load the two sides, compare them, write report.md,
report.html and compare.json, and turn the verdict into the exit code."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.fsutil import atomic_write_text
from harness.record.schema import ResultsFormatError
from harness.record.status import EXIT_CODES, EXIT_USAGE, RunStatus
from harness.report.compare import Comparison, Refused, compare, sides_from_dirs
from harness.report.compare_json import to_json
from harness.report.html import render_html
from harness.report.markdown import render_markdown
from harness.spec import SpecError, Tradeoff, tradeoffs_file

__all__ = ["EXIT_MALFORMED", "EXIT_REFUSED", "run_compare", "write_reports"]

EXIT_REFUSED = EXIT_CODES[RunStatus.INFRA_ERROR]  # the runs differ in more than the kernel
EXIT_MALFORMED = 10  # a results.json is not JSON or not the schema (file and field named)


def write_reports(cmp: Comparison, out_dir: str | Path) -> list[Path]:
    """Write report.md, report.html and compare.json atomically; return their paths."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "report.md": render_markdown(cmp),
        "report.html": render_html(cmp),
        "compare.json": json.dumps(to_json(cmp), indent=2, allow_nan=False, default=str) + "\n",
    }
    for name, text in files.items():
        atomic_write_text(directory / name, text)
    return [directory / name for name in files]


def run_compare(
    dirs: Sequence[Path],
    *,
    baseline_dirs: Sequence[Path] = (),
    patched_dirs: Sequence[Path] = (),
    baseline_label: str | None = None,
    patched_label: str | None = None,
    out: Path | None = None,
    force: bool = False,
    tradeoff_files: Sequence[Path] = (),
    argv: Sequence[str] = (),
    info: Callable[[str], None] = print,
    error: Callable[[str], None] = print,
) -> int:
    """The compare/report commands: 0 no regression, 1 regression, 2 usage, 8 refused,
    10 a results.json is malformed."""
    if len(dirs) > 2 or (len(dirs) == 2 and (baseline_dirs or patched_dirs)):
        error("give one A/B directory, two directories, or --baseline/--patched lists")
        return EXIT_USAGE
    base = [*dirs[:1], *baseline_dirs]
    patched = [*dirs[1:], *patched_dirs]
    if not base:
        error("no baseline directory given")
        return EXIT_USAGE
    tradeoffs: list[Tradeoff] | None = None
    if tradeoff_files:
        try:
            tradeoffs = [t for f in tradeoff_files for t in tradeoffs_file(f)]
        except SpecError as e:
            error(str(e))
            return EXIT_USAGE
    try:
        a, b = sides_from_dirs(
            base, patched, baseline_label=baseline_label, patched_label=patched_label
        )
        cmp = compare(a, b, force=force, command_line=argv, tradeoffs=tradeoffs)
    except Refused as e:
        error("refusing to compare: the runs differ in more than the kernel (--force to override)")
        for m in e.mismatches:
            error(f"  {m.text()}")
        return EXIT_REFUSED
    except ResultsFormatError as e:
        error(str(e))
        return EXIT_MALFORMED
    except (OSError, ValueError, KeyError) as e:
        error(str(e))
        return EXIT_USAGE
    target = out or (patched[0] if patched else base[0])
    for path in write_reports(cmp, target):
        info(f"wrote {path}")
    for line in cmp.regressions():
        info(f"regression: {line}")
    if cmp.forced and cmp.refused:
        info("warning: forced comparison of runs that differ in more than the kernel")
    return cmp.exit_code
