"""kbulk kcidb: a result directory as a KCIDB document, validated with kcidb-io."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import kcidb_io
import pytest
from runs import BASE, ktap_text, make_run, write_dir

from harness import cli
from harness.analysis.ktap import metrics_from, parse_ktap
from harness.export import kcidb
from harness.kernel.patches import PatchedTree, load_series
from harness.kernel.source import SourceTree
from harness.pipeline import series_meta
from harness.record.run import ArchRun, CrashReport
from harness.record.status import CrashKind, RunStatus

PATCH = """From: A <a@example.org>
Subject: [PATCH {n}/3] mm: change {n}

---
 mm/f{n}.c | 1 +
 1 file changed, 1 insertion(+)

--- a/mm/f{n}.c
+++ b/mm/f{n}.c
@@ -1 +1,2 @@
 a
+b{n}
"""
KUNIT = (
    "    KTAP version 1\n    # Subtest: page_alloc_bulk_smoke\n    1..2\n"
    "    ok 1 fills_array\n    ok 2 order3_block # SKIP no contiguous memory\n"
    "ok 3 page_alloc_bulk_smoke\n"
)


def series_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "patches"
    directory.mkdir()
    names = [f"000{n}-mm-change-{n}.patch" for n in (1, 2, 3)]
    for n, name in enumerate(names, start=1):
        (directory / name).write_text(PATCH.format(n=n))
    (directory / "series").write_text("\n".join(names) + "\n")
    return directory


def run_with_kunit(kernel: str, arch: str, *, nowait_ok: bool = True) -> ArchRun:
    """make_run's module output plus a KUnit suite, as one console's KTAP."""
    run = make_run(kernel, filled=1000, arch=arch, nowait_ok=nowait_ok)
    text = ktap_text(filled=1000, p50=1000, nowait_ok=nowait_ok).replace("1..2\n", "1..3\n", 1)
    run.ktap = parse_ktap(text + KUNIT)
    run.metrics = metrics_from(run.ktap)
    run.durations = {"build": 355.6, "boot_to_results": 13.3}
    run.console_log = f"{arch}/console.log"
    return run


def result_dir(tmp_path: Path, *, nowait_ok: bool = True) -> tuple[Path, Path]:
    """A main-job result directory written with the harness's own writers."""
    patches = series_dir(tmp_path)
    series = load_series(patches)
    source = SourceTree(tmp_path, "7.2.13", "debian:linux-source-7.2=7.2.13-1", "d" * 64)
    tree = PatchedTree(tmp_path / "work", source, series, series.digest)
    kernel = f"v7.2.13+series-{series.digest[:12]}"
    runs = [
        run_with_kunit(kernel, "x86_64", nowait_ok=nowait_ok),
        run_with_kunit(kernel, "arm64"),
    ]
    meta: dict[str, Any] = {
        "run_id": "20261129T094308Z-074998",
        "started": "2026-11-29T09:43:08+00:00",
        "source": {"origin": source.origin, "version": "7.2.13", "sha256": source.checksum},
        "series": series_meta(tree).to_json(),
        "kernel": kernel,
    }
    return write_dir(tmp_path / "results", runs, **meta), patches


def documented_patchset_hash(patches: Path) -> str:
    """The submitter guide's own recipe: sha256sum *.patch | cut -c-64 | sha256sum."""
    out = subprocess.run(
        "sha256sum *.patch | cut -c-64 | sha256sum | cut -c-64",
        shell=True, cwd=patches, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def by_path(doc: dict[str, Any], arch: str = "x86_64") -> dict[str, dict[str, Any]]:
    return {t["path"]: t for t in doc["tests"] if f".{arch}." in t["build_id"]}


def test_export_validates_and_carries_the_run(tmp_path: Path) -> None:
    results, patches = result_dir(tmp_path, nowait_ok=False)
    out = tmp_path / "kcidb.json"
    options = kcidb.ExportOptions(
        "kbulk_ci", logs_url="https://ci.example.org/r/1/", patches_url="https://x.org/p"
    )
    kcidb.export(results, out, options)
    doc = json.loads(out.read_text())
    kcidb_io.schema.V5_3.validate_exactly(doc)  # independently of the exporter's own check
    assert doc["version"] == {"major": 5, "minor": 3}

    (checkout,) = doc["checkouts"]
    assert checkout["patchset_hash"] == documented_patchset_hash(patches)
    assert [f["name"] for f in checkout["patchset_files"]] == [
        "0001-mm-change-1.patch", "0002-mm-change-2.patch", "0003-mm-change-3.patch",
    ]  # fmt: skip
    assert checkout["patchset_files"][0]["url"] == "https://x.org/p/0001-mm-change-1.patch"
    assert checkout["valid"] is True
    assert checkout["id"].startswith("kbulk_ci:20261129T094308Z-074998")

    assert sorted(b["architecture"] for b in doc["builds"]) == ["arm64", "x86_64"]
    assert {b["status"] for b in doc["builds"]} == {"PASS"}
    assert doc["builds"][0]["duration"] == 355.6
    assert all(b["checkout_id"] == checkout["id"] for b in doc["builds"])
    ids = [o["id"] for kind in ("checkouts", "builds", "tests") for o in doc[kind]]
    assert all(i.startswith("kbulk_ci:") for i in ids) and len(ids) == len(set(ids))

    tests = by_path(doc)
    assert tests[""]["status"] == "FAIL"  # the run: a test failed
    assert tests[""]["log_url"] == "https://ci.example.org/r/1/x86_64/console.log"
    assert tests["kunit.page_alloc_bulk_smoke.fills_array"]["status"] == "PASS"
    assert tests["kunit.page_alloc_bulk_smoke.order3_block"]["status"] == "SKIP"
    assert tests["kbulk_stress.gfp_kernel_order0"]["status"] == "PASS"
    assert tests["kbulk_stress.gfp_nowait_order0"]["status"] == "FAIL"
    assert "kunit.kbulk_stress" not in tests  # module cases are not KUnit's
    bench = tests["kbulk_bench.order0_batch8.ns_per_page"]
    assert bench["status"] == "DONE"
    assert bench["number"] == {"value": 60, "unit": "ns"}
    assert bench["misc"] == {"api": "bulk"}
    p50 = tests["kbulk_stress.gfp_kernel_order0.p50_ns"]
    assert p50["number"] == {"value": 1000, "unit": "ns"}
    assert tests["kbulk_stress.gfp_kernel_order0.filled"]["number"] == {"value": 1000}
    assert by_path(doc, "arm64")["kbulk_stress.gfp_nowait_order0"]["status"] == "PASS"


def test_without_urls_paths_stay_in_misc(tmp_path: Path) -> None:
    """log_url must be an absolute URI: without --logs-url the relative path is in misc."""
    results, _ = result_dir(tmp_path)
    doc = kcidb.export(results, None, kcidb.ExportOptions())
    root = by_path(doc)[""]
    assert "log_url" not in root and root["misc"]["log_path"] == "x86_64/console.log"
    assert "patchset_files" not in doc["checkouts"][0]
    assert root["status"] == "PASS" and root["id"].startswith("kbulk:")


def test_baseline_checkout_has_the_empty_patchset_hash(tmp_path: Path) -> None:
    write_dir(tmp_path / "r", [make_run(BASE, filled=1000)], run_id="base")
    doc = kcidb.export(tmp_path / "r", None, kcidb.ExportOptions())
    assert doc["checkouts"][0]["patchset_hash"] == ""


def test_old_results_hash_the_series_files_if_unchanged(tmp_path: Path) -> None:
    """results.json from before per-patch hashes: the files are re-read, but only if
    they still match the series digest the run recorded."""
    results, patches = result_dir(tmp_path)
    data = json.loads((results / "results.json").read_text())
    del data["meta"]["series"]["patch_sha256"]
    (results / "results.json").write_text(json.dumps(data))
    doc = kcidb.export(results, None, kcidb.ExportOptions())
    assert doc["checkouts"][0]["patchset_hash"] == documented_patchset_hash(patches)
    (patches / "0002-mm-change-2.patch").write_text(PATCH.format(n=9))
    with pytest.raises(kcidb.KcidbInputError, match="patchset_hash"):
        kcidb.export(results, None, kcidb.ExportOptions())


def test_an_invalid_document_is_refused_and_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(kcidb.KcidbError, match="invalid"):
        kcidb.validate({"version": {"major": 5, "minor": 3}, "tests": [{"id": "no_origin"}]})
    results, _ = result_dir(tmp_path)
    real = kcidb.build_document

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        doc = real(*args, **kwargs)
        doc["tests"][0]["status"] = "BROKEN"
        return doc

    monkeypatch.setattr(kcidb, "build_document", broken)
    out = tmp_path / "k.json"
    assert cli.main(["kcidb", str(results), "-o", str(out)]) == 8
    assert not out.exists()
    err = capsys.readouterr().err
    assert "invalid" in err and "Traceback" not in err


def test_missing_kcidb_io_is_said_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results, _ = result_dir(tmp_path)
    real = kcidb.importlib.import_module

    def no_kcidb(name: str) -> Any:
        if name == "kcidb_io":
            raise ImportError("No module named 'kcidb_io'")
        return real(name)

    monkeypatch.setattr(kcidb.importlib, "import_module", no_kcidb)
    with pytest.raises(kcidb.KcidbError, match=r"kcidb-io is not installed.*pip install"):
        kcidb.export(results, None, kcidb.ExportOptions())


@pytest.mark.parametrize(
    "args",
    [
        ["does-not-exist"],
        ["{dir}", "--origin", "Bad-Origin"],
        ["{dir}", "--logs-url", "results/x"],  # log_url must be an absolute URI
    ],
)
def test_bad_input_exits_2_without_traceback(
    tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    results, _ = result_dir(tmp_path)
    argv = [a.format(dir=results) for a in args]
    assert cli.main(["kcidb", *argv]) == 2
    err = capsys.readouterr().err
    assert "error" in err.lower() and "Traceback" not in err


def test_crashed_case_is_fail_and_unreached_cases_are_error(tmp_path: Path) -> None:
    """A kernel crash in the second case of three: that case (and its suite) FAIL, the
    third never ran (ERROR: its outcome is unknown), the first passed."""
    text = (
        "KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: page_alloc_bulk_order\n"
        "    1..3\n    ok 1 order0\n"
    )
    run = make_run(BASE, filled=1000)
    run.ktap = parse_ktap(text)
    run.metrics = []
    run.status = RunStatus.CRASH
    run.crashes = [CrashReport(CrashKind.OOPS, "Oops: 0000", "page_alloc_bulk_order.#2", 9, [])]
    write_dir(tmp_path / "r", [run], run_id="crash")
    tests = by_path(kcidb.export(tmp_path / "r", None, kcidb.ExportOptions()))
    assert tests[""]["status"] == "FAIL"
    assert tests[""]["misc"]["crashes"] == ["oops: Oops: 0000"]
    statuses = {p: t["status"] for p, t in tests.items() if p.startswith("kunit.")}
    assert statuses == {
        "kunit.page_alloc_bulk_order": "FAIL",
        "kunit.page_alloc_bulk_order.order0": "PASS",
        "kunit.page_alloc_bulk_order._2": "FAIL",
        "kunit.page_alloc_bulk_order._3": "ERROR",
    }


def test_a_series_that_did_not_apply_is_an_invalid_checkout(tmp_path: Path) -> None:
    """The pipeline records a patch failure as kernel "unknown" (nothing built)."""
    runs = [
        ArchRun(arch, "unknown", RunStatus.PATCH_FAILURE, message="0002-x.patch: hunk #1 FAILED")
        for arch in ("x86_64", "arm64")
    ]
    write_dir(tmp_path / "r", runs, run_id="patchfail")
    doc = kcidb.export(tmp_path / "r", None, kcidb.ExportOptions())
    (checkout,) = doc["checkouts"]
    assert checkout["valid"] is False and "patchset_hash" not in checkout
    assert "hunk #1 FAILED" in checkout["comment"]
    assert doc["builds"] == [] and doc["tests"] == []


def test_ab_directory_has_both_checkouts_and_every_boot(tmp_path: Path) -> None:
    results, patches = result_dir(tmp_path)
    meta = json.loads((results / "results.json").read_text())["meta"]
    kernel = meta["kernel"]
    runs = [make_run(k, filled=1000, rep=r) for k in (BASE, kernel) for r in (0, 1)]
    write_dir(tmp_path / "ab", runs, **{**meta, "mode": "ab", "repetitions": 2})
    doc = kcidb.export(tmp_path / "ab", None, kcidb.ExportOptions())
    hashes = sorted(c["patchset_hash"] for c in doc["checkouts"])
    assert hashes == ["", documented_patchset_hash(patches)]
    assert len(doc["builds"]) == 2  # one per kernel, shared by its boots
    roots = sorted(t["id"].rsplit(":", 2)[1] for t in doc["tests"] if t["path"] == "")
    assert roots == ["baseline-r0", "baseline-r1", "patched-r0", "patched-r1"]
