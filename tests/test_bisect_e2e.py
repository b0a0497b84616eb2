"""End to end: `kbulk bisect` names a deliberately broken patch inserted in the
middle of a copy of the series, with real builds and boots (x86_64, KUnit only).

The copy is patches 1-4 of the series, then tests/data/bisect/0099-... (a real
kernel change: a single empty slot sets up a batch, which the documented
semantics of alloc_pages_bulk() rule out, so the KUnit case
bulk_one_slot_try_hard fails), then patch 5. Prefix 0 has no KUnit suite yet
(the case is absent, which is not a failure) and prefix 6 fails the case, so
the search runs: 0, 6, 3, 4, 5 - five builds where a linear walk from prefix 0
builds six. No header of the series changes before patch 6, so every build
after the first recompiles mm/ only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.paths import REPO_ROOT

pytestmark = pytest.mark.e2e

SERIES = REPO_ROOT / "patches" / "v7.2"
BROKEN = REPO_ROOT / "tests" / "data" / "bisect"
CASE = "page_alloc_bulk_semantics.bulk_one_slot_try_hard"


def series_copy(tmp: Path, broken: str) -> Path:
    """Patches 5-8 (the split, the KUnit suites, the semantics change, the lock
    bound), the broken patch, patch 9: a quilt series of 6. Patches 1-4 (the
    callers' opt-outs) touch no file the test builds."""
    d = tmp / "series"
    d.mkdir()
    order = [*sorted(SERIES.glob("000[5-8]-*.patch")), next(BROKEN.glob(f"{broken}-*.patch")),
             next(SERIES.glob("0009-*.patch"))]  # fmt: skip
    for patch in order:
        shutil.copy2(patch, d / patch.name)
    (d / "series").write_text("".join(f"{p.name}\n" for p in order))
    return d


def qemu_running(fragment: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if proc.name.isdigit() and "qemu-system" in cmdline and fragment in cmdline:
            pids.append(int(proc.name))
    return pids


def test_bisect_names_the_broken_patch_in_fewer_builds_than_a_linear_walk(
    tmp_path: Path,
) -> None:
    series = series_copy(tmp_path, "0099")
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "harness.cli", "bisect", "--series", str(series),
           "--arch", "x86_64", "--test", CASE, "--no-modules", "--suites", "page_alloc_bulk*",
           "--results", str(results)]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=5400,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}, check=False)  # fmt: skip
    output = proc.stdout + proc.stderr
    print(output)
    print(f"bisect took {time.monotonic() - started:.0f} s")
    (out,) = list(results.iterdir())
    data = json.loads((out / "bisect.json").read_text())
    assert proc.returncode == 0, output
    assert data["outcome"] == "found" and data["exit_code"] == 0
    broken = next(BROKEN.glob("0099-*.patch")).name
    assert data["first_bad"] == {
        "prefix": 5, "patch": broken,
        "subject": "mm/page_alloc: try the batch first for a single empty slot too",
    }  # fmt: skip
    assert data["builds"] < data["linear_builds"] == 6, data["search_order"]
    # the evidence: the case fails at prefix 5 with KUnit's expectation message, and
    # passes at prefix 4
    bad, before = data["evidence"]["bad"], data["evidence"]["before"]
    assert bad["evidence"]["status"] == "fail"
    assert any("fast_calls" in line for line in bad["evidence"]["diagnostics"]), bad
    assert before["prefix"] == 4 and before["evidence"]["status"] == "pass"
    # both ends were verified first: prefix 0 has no suite yet, prefix 6 fails
    assert data["search_order"][:2] == [0, 6]
    first = data["prefixes"][0]
    assert first["verdict"] == "good" and first["evidence"]["status"] == "absent"
    # every prefix tested is a normal result directory, named in the report (prefix 0
    # runs no test at all: no suite yet, no modules)
    statuses = {}
    for prefix in data["prefixes"]:
        runs = json.loads((out / prefix["result_dir"] / "results.json").read_text())["runs"]
        assert [r["arch"] for r in runs] == ["x86_64"]
        statuses[prefix["prefix"]] = runs[0]["status"]
    assert statuses == {0: "no_tests", 3: "pass", 4: "pass", 5: "fail", 6: "fail"}
    assert broken in (out / "bisect.md").read_text()
    assert broken in output
    assert not qemu_running(str(out)), "QEMU left running"
