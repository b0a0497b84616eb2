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

from harness.seriescheck.check import SeriesCheck, SeriesCheckOptions, run
from harness.seriescheck.checkpatch import CheckpatchResult, parse_checkpatch, run_checkpatch
from harness.seriescheck.errors import SeriesCheckError
from harness.seriescheck.report import (
    EXIT_BUILD,
    EXIT_CONFIG,
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_PATCH,
    REPORT_JSON,
    REPORT_MD,
    PatchEntry,
    PrefixBuild,
    PrefixStatus,
    SeriesReport,
    create_result_dir,
    exit_code,
    render_markdown,
    render_table,
    report_dict,
    table_rows,
    write_reports,
)
from harness.seriescheck.touched import touched_files
from harness.seriescheck.warnings import (
    CompilerWarning,
    diff_warnings,
    new_warnings,
    normalize_path,
    parse_warnings,
)
from harness.seriescheck.worktree import STATE_FILE, WorkTree, defined_symbols, touch_unlinked

__all__ = [
    "EXIT_BUILD", "EXIT_CONFIG", "EXIT_FINDINGS", "EXIT_OK", "EXIT_PATCH", "REPORT_JSON",
    "REPORT_MD", "STATE_FILE", "CheckpatchResult", "CompilerWarning", "PatchEntry",
    "PrefixBuild", "PrefixStatus", "SeriesCheck", "SeriesCheckError", "SeriesCheckOptions",
    "SeriesReport", "WorkTree", "create_result_dir", "defined_symbols", "diff_warnings",
    "exit_code", "new_warnings", "normalize_path", "parse_checkpatch", "parse_warnings",
    "render_markdown", "render_table", "report_dict", "run", "run_checkpatch", "table_rows",
    "touch_unlinked", "touched_files", "write_reports",
]  # fmt: skip
