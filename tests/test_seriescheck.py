"""series-check: checkpatch parsing, touched files, warning diffs, reports, the work tree.

The work-tree tests use real patch(1) on a miniature tree; the e2e tests run
the real CLI on the real series (checkpatch only, then two real builds).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.kernel.patches import load_series
from harness.kernel.source import SourceTree
from harness.paths import REPO_ROOT
from harness.seriescheck import (
    EXIT_BUILD,
    EXIT_FINDINGS,
    EXIT_OK,
    REPORT_JSON,
    REPORT_MD,
    STATE_FILE,
    CheckpatchResult,
    CompilerWarning,
    PatchEntry,
    PrefixBuild,
    SeriesReport,
    WorkTree,
    create_result_dir,
    defined_symbols,
    diff_warnings,
    exit_code,
    new_warnings,
    normalize_path,
    parse_checkpatch,
    parse_warnings,
    render_markdown,
    render_table,
    table_rows,
    touch_unlinked,
    touched_files,
    write_reports,
)

SERIES = REPO_ROOT / "patches" / "v7.2"

# ------------------------------------------------------------------ checkpatch

STRICT_OUTPUT = """\
WARNING: Missing commit description - Add an appropriate one

CHECK: Alignment should match open parenthesis
#42: FILE: mm/page_alloc.c:5012:
+static unsigned long bulk_fill(struct zone *zone,
+	int order)

ERROR: trailing whitespace
#50: FILE: mm/page_alloc.c:5020:

total: 1 errors, 1 warnings, 1 checks, 364 lines checked

NOTE: For some of the reported defects, checkpatch may be able to
"""


def test_checkpatch_totals_strict() -> None:
    r = parse_checkpatch("0001-x.patch", STRICT_OUTPUT)
    assert (r.errors, r.warnings, r.checks) == (1, 1, 1)
    assert r.messages == [
        "WARNING: Missing commit description - Add an appropriate one",
        "CHECK: Alignment should match open parenthesis",
        "ERROR: trailing whitespace",
    ]
    assert not r.clean and r.label == "1/1/1"


def test_checkpatch_totals_clean_and_non_strict() -> None:
    clean = parse_checkpatch("a", "total: 0 errors, 0 warnings, 0 checks, 76 lines checked\n")
    assert clean.clean and clean.label == "0/0/0"
    # without --strict checkpatch prints no "checks" field
    plain = parse_checkpatch("b", "total: 2 errors, 0 warnings, 10 lines checked\n")
    assert (plain.errors, plain.warnings, plain.checks) == (2, 0, 0)


def test_checkpatch_without_total_is_a_problem_not_clean() -> None:
    r = parse_checkpatch("c", "Can't open perl script\n")
    assert r.problem and not r.clean and r.label == "n/a"


# --------------------------------------------------------------- touched files

GIT_PATCH = """\
From 1234 Mon Sep 17 00:00:00 2001
Subject: [PATCH] mm: things

Body mentions --- and +++ b/not/a/file.c in prose.
---
 mm/page_alloc.c | 3 ++-
 2 files changed

diff --git a/mm/page_alloc.c b/mm/page_alloc.c
index 1..2 100644
--- a/mm/page_alloc.c
+++ b/mm/page_alloc.c
@@ -1,3 +1,3 @@
 one
--- removed line that looks like a header
+++ added line that looks like a header
 three
diff --git a/mm/tests/new_test.c b/mm/tests/new_test.c
new file mode 100644
--- /dev/null
+++ b/mm/tests/new_test.c
@@ -0,0 +1 @@
+int x;
diff --git a/old/name.h b/new/name.h
similarity index 100%
rename from old/name.h
rename to new/name.h
diff --git a/gone.c b/gone.c
deleted file mode 100644
--- a/gone.c
+++ /dev/null
@@ -1 +0,0 @@
-int y;
--
2.43.0
"""


def test_touched_files_from_git_headers() -> None:
    assert touched_files(GIT_PATCH) == [
        "mm/page_alloc.c",
        "mm/tests/new_test.c",
        "old/name.h",
        "new/name.h",
        "gone.c",
    ]


def test_touched_files_plain_diff() -> None:
    text = "--- a/lib/x.c\t2020-01-01\n+++ b/lib/x.c\t2020-01-02\n@@ -1 +1 @@\n-a\n+b\n"
    assert touched_files(text) == ["lib/x.c"]


def test_touched_files_of_the_real_series() -> None:
    series = load_series(SERIES)
    kunit = touched_files(series.patches[5].read_text())  # patch 6: the KUnit suites
    assert kunit == [
        "MAINTAINERS",
        "mm/Kconfig",
        "mm/Makefile",
        "mm/tests/page_alloc_bulk_kunit.c",
    ]
    for patch in series.patches:
        files = touched_files(patch.read_text())
        assert files, patch.name
        assert all((not f.startswith(("a/", "b/"))) and " " not in f for f in files)


# -------------------------------------------------------------------- warnings

TREE = Path("/cache/work/seriescheck-abc/linux")
BDIR = Path("/cache/work/seriescheck-abc/build-x86_64-123")


def test_normalize_path_absolute_relative_and_outside() -> None:
    assert normalize_path(f"{TREE}/mm/a.c", TREE, BDIR) == "mm/a.c"
    assert normalize_path("../linux/mm/a.c", TREE, BDIR) == "mm/a.c"  # ccache BASEDIR form
    assert normalize_path("include/generated/x.h", TREE, BDIR) is None  # in the build dir
    assert normalize_path("/usr/include/stdio.h", TREE, BDIR) is None


def test_parse_warnings_strips_colour_and_deduplicates() -> None:
    lines = [
        "  CC      mm/page_alloc.o",
        "\x1b[01m\x1b[K../linux/mm/a.c:10:5:\x1b[m\x1b[K \x1b[01;35m\x1b[Kwarning: "
        "\x1b[m\x1b[Kunused variable 'x' [-Wunused-variable]",
        "../linux/include/linux/h.h:3:1: warning: bad thing [-Wfoo]",
        "../linux/include/linux/h.h:3:1: warning: bad thing [-Wfoo]",  # second includer
        "../linux/mm/a.c:11:2: note: declared here",
        "../linux/mm/a.c: In function 'f':",
    ]
    assert parse_warnings(lines, TREE, BDIR) == [
        CompilerWarning("mm/a.c", 10, "unused variable 'x' [-Wunused-variable]"),
        CompilerWarning("include/linux/h.h", 3, "bad thing [-Wfoo]"),
    ]


def test_diff_warnings_ignores_shifted_lines_and_untouched_files() -> None:
    before = [
        "../linux/mm/a.c:10:5: warning: unused variable 'x' [-Wunused-variable]",
        "../linux/mm/other.c:1:1: warning: old [-Wold]",
    ]
    after = [
        # same warning, moved by the patch: not new
        "../linux/mm/a.c:14:5: warning: unused variable 'x' [-Wunused-variable]",
        # genuinely new in a touched file
        "../linux/mm/a.c:30:9: warning: unused variable 'y' [-Wunused-variable]",
        # new, but in a file the patch does not touch: not this patch's business
        "../linux/mm/other.c:2:1: warning: new elsewhere [-Wnew]",
    ]
    new = diff_warnings(before, after, {"mm/a.c"}, TREE, BDIR)
    assert [str(w) for w in new] == ["mm/a.c:30: unused variable 'y' [-Wunused-variable]"]


def test_new_warnings_counts_repeats_of_the_same_message() -> None:
    msg = "comparison is always false [-Wtype-limits]"
    before = [CompilerWarning("mm/a.c", 5, msg)]
    after = [CompilerWarning("mm/a.c", 5, msg), CompilerWarning("mm/a.c", 40, msg)]
    assert new_warnings(before, after) == [CompilerWarning("mm/a.c", 40, msg)]
    assert new_warnings(after, before) == []  # fixed warnings are not reported
    assert new_warnings([], after) == after


# --------------------------------------------------------------------- reports


def sample_report(tmp_path: Path) -> SeriesReport:
    report = SeriesReport(
        "/repo/patches/v7.2", "ab" * 32, "debian:linux-source-7.2=7.2.13-1",
        ["x86_64", "arm64"], checkpatch_only=False,
    )  # fmt: skip
    report.baseline = {
        a: PrefixBuild(a, 0, "ok", duration=301.2, log=f"/b/{a}/0.log") for a in report.arches
    }
    clean = CheckpatchResult("0001-a.patch")
    p1 = PatchEntry(1, "0001-a.patch", ["mm/a.c"], clean)
    p1.builds = {
        "x86_64": PrefixBuild(
            "x86_64", 1, "ok", duration=12.0, new_warnings=["mm/a.c:30: w [-Wx]"]
        ),
        "arm64": PrefixBuild("arm64", 1, "ok", duration=15.0),
    }
    dirty = CheckpatchResult("0002-b.patch", 0, 1, 2, ["WARNING: foo", "CHECK: bar", "CHECK: baz"])
    p2 = PatchEntry(2, "0002-b.patch", ["mm/b.c"], dirty)
    p2.builds = {
        "x86_64": PrefixBuild(
            "x86_64", 2, "build_failure", duration=9.5, first_error="mm/b.c:3:1: error: x",
            log="/b/x86_64/2.log",
        ),
        "arm64": PrefixBuild("arm64", 2, "ok", duration=14.0, not_yet_present=["CONFIG_FOO"]),
    }  # fmt: skip
    report.patches = [p1, p2]
    return report


def test_exit_code_priorities(tmp_path: Path) -> None:
    report = sample_report(tmp_path)
    assert exit_code(report) == EXIT_BUILD
    report.patches[1].builds["x86_64"].status = "ok"
    assert exit_code(report) == EXIT_FINDINGS  # checkpatch findings + a new warning
    report.patches[1].checkpatch = CheckpatchResult("0002-b.patch")
    report.patches[0].builds["x86_64"].new_warnings = []
    assert exit_code(report) == EXIT_OK


def test_report_writers(tmp_path: Path) -> None:
    report = sample_report(tmp_path)
    out = create_result_dir(tmp_path / "results")
    assert re.fullmatch(r"\d{8}T\d{6}Z-seriescheck-[0-9a-f]{6}", out.name)
    write_reports(report, out)
    data = json.loads((out / REPORT_JSON).read_text())
    assert data["exit_code"] == EXIT_BUILD
    assert [p["name"] for p in data["patches"]] == ["0001-a.patch", "0002-b.patch"]
    x86 = data["patches"][1]["builds"]["x86_64"]
    assert x86["status"] == "build_failure" and x86["first_error"] == "mm/b.c:3:1: error: x"
    assert data["patches"][1]["checkpatch"]["checks"] == 2
    assert data["baseline"]["arm64"]["duration"] == 301.2

    md = (out / REPORT_MD).read_text()
    assert md.startswith("# Series check: FAIL (exit 5)")
    assert "| 1 | 0001-a.patch | 0/0/0 | ok 12s | ok 15s | 1 |" in md
    assert "| 2 | 0002-b.patch | 0/1/2 | FAIL 10s | ok 14s | 0 |" in md
    assert "  - `mm/a.c:30: w [-Wx]`" in md
    assert "  - CHECK: baz" in md
    assert "build_failure: mm/b.c:3:1: error: x (log: `/b/x86_64/2.log`)" in md
    assert "not yet present: CONFIG_FOO" in md

    table = render_table(report).splitlines()
    assert table[0].split() == ["#", "patch", "checkpatch", "E/W/C", "x86_64", "arm64", "new",
                                "warnings"]  # fmt: skip
    assert table[1].split() == ["0", "(baseline)", "ok", "301s", "ok", "301s"]
    assert table[3].split() == ["2", "0002-b.patch", "0/1/2", "FAIL", "10s", "ok", "14s", "0"]


def test_checkpatch_only_table_has_no_build_columns(tmp_path: Path) -> None:
    report = SeriesReport("/s", "0" * 64, "src", ["x86_64"], checkpatch_only=True)
    report.patches = [PatchEntry(1, "0001-a.patch", [], CheckpatchResult("0001-a.patch"))]
    assert render_table(report).splitlines() == [
        "#  patch         checkpatch E/W/C",
        "1  0001-a.patch  0/0/0",
    ]
    assert exit_code(report) == EXIT_OK
    assert "| 1 | 0001-a.patch | 0/0/0 |" in render_markdown(report)


# ------------------------------------------------------------------ work tree

needs_patch = pytest.mark.skipif(shutil.which("patch") is None, reason="patch(1) not installed")

P1 = "--- a/mm/a.c\n+++ b/mm/a.c\n@@ -1,2 +1,2 @@\n one\n-two\n+TWO\n"
P2 = "--- a/mm/b.h\n+++ b/mm/b.h\n@@ -1 +1 @@\n-old\n+new\n"


def mini_source(tmp_path: Path) -> SourceTree:
    tree = tmp_path / "src" / "linux"
    (tree / "mm").mkdir(parents=True)
    (tree / "mm" / "a.c").write_text("one\ntwo\n")
    (tree / "mm" / "b.h").write_text("old\n")
    (tree / "mm" / "Kconfig").write_text("config OLD_THING\n\tbool\nmenuconfig MENU_THING\n")
    old = time.time() - 86400  # pristine trees carry old mtimes
    for f in (tree / "mm").iterdir():
        os.utime(f, (old, old))
    return SourceTree(tree, "7.2.13", "test", "0" * 64)


def mini_series(tmp_path: Path) -> Path:
    d = tmp_path / "series"
    d.mkdir()
    (d / "0001-a.patch").write_text(P1)
    (d / "0002-b.patch").write_text(P2)
    (d / "series").write_text("0001-a.patch\n0002-b.patch\n")
    return d


@needs_patch
def test_work_tree_incremental_mtimes_and_restart(tmp_path: Path) -> None:
    source = mini_source(tmp_path)
    series = load_series(mini_series(tmp_path))
    work = WorkTree(tmp_path / "work" / "seriescheck-x", source, series)
    work.reset(lambda _: None)
    a, b = work.path / "mm" / "a.c", work.path / "mm" / "b.h"
    assert a.stat().st_ino == (source.path / "mm" / "a.c").stat().st_ino  # hard-linked
    pristine_mtime = b.stat().st_mtime

    work.apply(1)
    assert a.read_text() == "one\nTWO\n"
    assert a.stat().st_mtime > pristine_mtime  # make must rebuild what patch changed
    assert b.stat().st_mtime == pristine_mtime  # and nothing else
    assert json.loads(work.state_file.read_text())["applied"] == 1

    # touching for the "before" warnings must not reach the pristine tree
    work.touch(["mm/b.h", "mm/Kconfig", "mm/missing.c"])
    assert b.stat().st_mtime > pristine_mtime
    assert (source.path / "mm" / "b.h").stat().st_mtime == pristine_mtime
    assert (work.path / "mm" / "Kconfig").stat().st_mtime == pristine_mtime  # not compiled

    # a later run reverse-applies back to the pristine content, with fresh mtimes
    work.apply(2)
    (work.root / "build-x86_64-1").mkdir()
    work.reset(lambda _: None)
    assert a.read_text() == "one\ntwo\n" and b.read_text() == "old\n"
    assert a.stat().st_mtime > pristine_mtime
    assert (work.root / "build-x86_64-1").is_dir()  # kept: mtimes stay consistent
    assert (source.path / "mm" / "a.c").read_text() == "one\ntwo\n"


@needs_patch
def test_work_tree_interrupted_state_starts_from_scratch(tmp_path: Path) -> None:
    source = mini_source(tmp_path)
    series = load_series(mini_series(tmp_path))
    work = WorkTree(tmp_path / "work" / "seriescheck-x", source, series)
    work.reset(lambda _: None)
    work.apply(1)
    build = work.root / "build-arm64-1"
    build.mkdir()
    (work.path / "mm" / "junk.c").write_text("half-applied\n")
    state = json.loads((work.root / STATE_FILE).read_text())
    state["applied"] = None  # as left by an interrupted patch
    (work.root / STATE_FILE).write_text(json.dumps(state))
    work.reset(lambda _: None)
    assert not (work.path / "mm" / "junk.c").exists()
    assert (work.path / "mm" / "a.c").read_text() == "one\ntwo\n"
    # objects newer than the re-copied (old-mtime) sources would never be rebuilt
    assert not build.exists()
    assert json.loads(work.state_file.read_text())["applied"] == 0


def test_touch_unlinked_breaks_the_hard_link(tmp_path: Path) -> None:
    original = tmp_path / "orig.c"
    original.write_text("int x;\n")
    os.utime(original, (1000, 1000))
    link = tmp_path / "link.c"
    os.link(original, link)
    touch_unlinked(link)
    assert link.stat().st_ino != original.stat().st_ino
    assert original.stat().st_mtime == 1000 and link.stat().st_mtime > 1000
    assert link.read_text() == "int x;\n"


def test_defined_symbols(tmp_path: Path) -> None:
    source = mini_source(tmp_path)
    found = defined_symbols(source.path, ["CONFIG_OLD_THING", "CONFIG_MENU_THING", "CONFIG_NEW"])
    assert found == {"CONFIG_OLD_THING", "CONFIG_MENU_THING"}


# ------------------------------------------------------------------------- e2e


def kbulk_series_check(results: Path, *args: str, timeout: float) -> tuple[int, str, Path]:
    results.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "harness.cli", "series-check", "--results", str(results), *args]
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = proc.stdout + proc.stderr
    print(output)
    dirs = sorted(results.iterdir())
    assert len(dirs) == 1, output
    return proc.returncode, output, dirs[0]


@pytest.mark.e2e
def test_e2e_checkpatch_only_lists_every_patch(tmp_path: Path) -> None:
    rc, output, out = kbulk_series_check(tmp_path, "--checkpatch-only", timeout=600)
    data = json.loads((out / REPORT_JSON).read_text())
    names = [p.name for p in load_series(SERIES).patches]
    assert [p["name"] for p in data["patches"]] == names
    assert "0000-cover-letter.patch" not in output
    for entry in data["patches"]:
        cp = entry["checkpatch"]
        assert cp["problem"] == "", cp  # checkpatch really ran and printed its total
        assert entry["name"][:58] in output
    dirty = [p["name"] for p in data["patches"] if any(p["checkpatch"][k] for k in
             ("errors", "warnings", "checks"))]  # fmt: skip
    assert rc == (EXIT_FINDINGS if dirty else EXIT_OK), output
    assert data["exit_code"] == rc and data["baseline"] == {}
    md = (out / REPORT_MD).read_text()
    assert all(f"| {i} | {name} |" in md for i, name in enumerate(names, start=1))


@pytest.mark.e2e
def test_e2e_incremental_build_of_prefixes_from_patch_6(tmp_path: Path) -> None:
    rc, output, out = kbulk_series_check(
        tmp_path, "--from", "6", "--upto", "7", "--arch", "x86_64", timeout=5400
    )
    data = json.loads((out / REPORT_JSON).read_text())
    assert data["baseline"] == {} and data["first"] == 6
    # patches 1-4 (the callers' opt-outs) come before the base: listed, not built
    assert all("x86_64" not in p["builds"] for p in data["patches"][:4]), data["patches"][:4]
    p1, p2, p3 = (p["builds"]["x86_64"] for p in data["patches"][4:])
    assert [b["status"] for b in (p1, p2, p3)] == ["ok", "ok", "ok"], output
    # prefix 5 (the split into fast and slow helpers) is only the comparison base:
    # its warnings are not findings
    assert p1["base_only"] and p1["new_warnings"] == []
    assert not p2["base_only"] and not p3["base_only"]
    # the KUnit symbol of the series' fragment only exists from patch 6 on
    assert p1["not_yet_present"] == ["CONFIG_PAGE_ALLOC_BULK_KUNIT_TEST"]
    assert p2["not_yet_present"] == [] and p2["config_mismatches"] == []
    assert "  CC      mm/tests/page_alloc_bulk_kunit.o" in Path(p2["log"]).read_text()
    # incremental: patch 7 (the semantics change) recompiles its files, not the kernel
    log3 = Path(p3["log"]).read_text()
    assert "  CC      mm/page_alloc.o" in log3
    assert "  CC      init/main.o" not in log3
    md = (out / REPORT_MD).read_text()
    assert "builds from patch 6 on" in md and "| 1 | 0001-" in md and "base " in md
    # findings: new warnings, or checkpatch's (patch 1's Fixes: id, which the
    # release tarball cannot resolve, is one)
    dirty = [p["name"] for p in data["patches"] if any(p["checkpatch"][k] for k in
             ("errors", "warnings", "checks"))]  # fmt: skip
    findings = dirty or p2["new_warnings"] or p3["new_warnings"]
    assert rc == data["exit_code"] == (EXIT_FINDINGS if findings else EXIT_OK)


def test_base_only_prefix_is_not_counted_as_checked() -> None:
    report = SeriesReport("/s", "0" * 64, "src", ["x86_64"], checkpatch_only=False, first=2)
    base = PatchEntry(1, "0001-a.patch", ["mm/a.c"], CheckpatchResult("0001-a.patch"))
    base.builds = {"x86_64": PrefixBuild("x86_64", 1, "ok", duration=800.0, base_only=True)}
    checked = PatchEntry(2, "0002-b.patch", ["mm/b.c"], CheckpatchResult("0002-b.patch"))
    checked.builds = {"x86_64": PrefixBuild("x86_64", 2, "ok", duration=20.0)}
    report.patches = [base, checked]
    rows = table_rows(report)
    assert rows[2][-2:] == ["base 800s", "-"]
    assert rows[3][-2:] == ["ok 20s", "0"]
    assert "builds from patch 2 on" in render_markdown(report)
