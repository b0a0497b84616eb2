"""Series application with real patch(1) on a miniature tree."""

import shutil
from pathlib import Path

import pytest

from harness.kernel.patches import PatchError, apply_series, load_series, summarise_failure
from harness.kernel.source import SourceTree

pytestmark = pytest.mark.skipif(shutil.which("patch") is None, reason="patch(1) not installed")

PATCH_OK = """\
--- a/mm/file.c
+++ b/mm/file.c
@@ -1,2 +1,2 @@
 one
-two
+TWO
"""
PATCH_BAD = """\
--- a/mm/file.c
+++ b/mm/file.c
@@ -1,2 +1,2 @@
 one
-three
+THREE
"""


def make_source(tmp_path: Path) -> SourceTree:
    tree = tmp_path / "src" / "linux"
    (tree / "mm").mkdir(parents=True)
    (tree / "mm" / "file.c").write_text("one\ntwo\n")
    (tree / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 13\n")
    return SourceTree(tree, "7.2.13", "test", "0" * 64)


def make_series(tmp_path: Path, *patches: tuple[str, str]) -> Path:
    d = tmp_path / "series-dir"
    d.mkdir(exist_ok=True)
    for name, text in patches:
        (d / name).write_text(text)
    (d / "series").write_text("# comment\n" + "\n".join(n for n, _ in patches) + "\n")
    return d


def test_applies_into_work_copy_and_keeps_pristine(tmp_path: Path) -> None:
    source = make_source(tmp_path)
    series = load_series(make_series(tmp_path, ("0001-a.patch", PATCH_OK)))
    tree = apply_series(source, series, tmp_path / "work", lambda _: None)
    assert (tree.path / "mm" / "file.c").read_text() == "one\nTWO\n"
    assert (source.path / "mm" / "file.c").read_text() == "one\ntwo\n"
    again = apply_series(source, series, tmp_path / "work", lambda _: None)
    assert again.path == tree.path and again.series_digest == series.digest


def test_failure_names_patch_and_hunk_and_leaves_nothing(tmp_path: Path) -> None:
    source = make_source(tmp_path)
    series = load_series(
        make_series(tmp_path, ("0001-a.patch", PATCH_OK), ("0002-b.patch", PATCH_BAD))
    )
    with pytest.raises(PatchError) as e:
        apply_series(source, series, tmp_path / "work", lambda _: None)
    assert e.value.patch == "0002-b.patch"
    assert "mm/file.c: hunk #1 FAILED at line 1" in str(e.value)
    leftovers = [p for p in (tmp_path / "work").rglob("file.c")]
    assert leftovers == []


def test_series_file_missing_patch(tmp_path: Path) -> None:
    d = tmp_path / "s"
    d.mkdir()
    (d / "series").write_text("0001-missing.patch\n")
    with pytest.raises(PatchError, match=r"series:1: patch '0001-missing.patch' does not exist"):
        load_series(d)


def test_series_listing_the_cover_letter_is_refused_by_line(tmp_path: Path) -> None:
    cover = "Subject: [PATCH 0/1] a cover letter\n\nwords, no diff\n"
    d = make_series(tmp_path, ("0001-ok.patch", PATCH_OK), ("0000-cover-letter.patch", cover))
    with pytest.raises(PatchError, match=r"series:3: '0000-cover-letter.patch' contains no diff"):
        load_series(d)


def test_digest_depends_on_content(tmp_path: Path) -> None:
    a = load_series(make_series(tmp_path, ("0001-a.patch", PATCH_OK)))
    (tmp_path / "series-dir" / "0001-a.patch").write_text(PATCH_OK + "\n")
    b = load_series(tmp_path / "series-dir")
    assert a.digest != b.digest


def test_summarise_failure_output() -> None:
    out = "patching file mm/a.c\nHunk #2 FAILED at 120.\n1 out of 2 hunks FAILED\n"
    assert summarise_failure(out) == "mm/a.c: hunk #2 FAILED at line 120"


def test_relative_series_directory_is_resolved(tmp_path: Path, monkeypatch) -> None:
    source = make_source(tmp_path)
    make_series(tmp_path, ("0001-a.patch", PATCH_OK))
    monkeypatch.chdir(tmp_path)
    series = load_series(Path("series-dir"))
    tree = apply_series(source, series, tmp_path / "work", lambda _: None)
    assert (tree.path / "mm" / "file.c").read_text() == "one\nTWO\n"


def test_series_prefix_has_its_own_digest() -> None:
    from harness.paths import REPO_ROOT

    series = load_series(REPO_ROOT / "patches" / "v7.2")
    two = series.prefix(2)
    assert [p.name for p in two.patches] == [p.name for p in series.patches[:2]]
    assert two.digest != series.digest
    assert series.prefix(len(series.patches)).digest == series.digest
    with pytest.raises(PatchError, match="first 99 patches"):
        series.prefix(99)
