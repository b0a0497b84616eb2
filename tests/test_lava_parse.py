"""`kbulk parse` on a LAVA job log gives the local run's results.

tests/data/lava/ holds a real local run (`kbulk run --arch x86_64`, the main
job: KUnit and both test modules, 2026-11-29): its console log and its
results.json, and the same console recorded as the job log a LAVA dispatcher
writes (scripts/lava_log_from_console.py: every console line a `target`
record, between dispatcher records and the `results` records of the monitors
`kbulk plan --format lava` defines)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.paths import REPO_ROOT

DATA = Path(__file__).parent / "data" / "lava"
LAVA_LOG = DATA / "x86_64-main.lava.log"
CONSOLE = DATA / "x86_64-main.console.log"
LOCAL = DATA / "x86_64-main.results.json"


def parse(log: Path, out: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "parse", str(log), "--arch", "x86_64",
         "--json", str(out), *extra],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    data = json.loads(out.read_text())["runs"][0] if out.exists() else {}
    return proc.returncode, data, proc.stdout + proc.stderr


def results(run: dict[str, Any]) -> dict[str, Any]:
    """What a run found: status, KTAP tree, metrics, crashes (not how it was booted)."""
    return {k: run[k] for k in ("status", "ktap", "metrics", "crashes")}


def test_lava_log_gives_the_local_runs_results(tmp_path: Path) -> None:
    code, lava, output = parse(LAVA_LOG, tmp_path / "lava.json")
    assert "LAVA job log" in output
    (local,) = json.loads(LOCAL.read_text())["runs"]
    # The live run was recorded before the crash detector knew 7.2's WARNING
    # format ("WARNING: file:line at func, CPU#n"), so its status (pass) missed
    # the upstream scheduler warning at console line 346 (hrtimer_forward() on a
    # queued dl_server timer, during kbulk_stress). What a job log must give
    # back is the live run's KTAP tree and metrics; status and crashes are
    # checked against the console parsed by today's detector below.
    assert {k: lava[k] for k in ("ktap", "metrics")} == {k: local[k] for k in ("ktap", "metrics")}
    assert lava["ktap"]["counts"]["passed"] >= 100  # KUnit and both modules, not a stub
    assert {m["test_path"][0] for m in lava["metrics"]} == {"kbulk_stress", "kbulk_bench"}
    (warning,) = lava["crashes"]
    assert warning["kind"] == "warning" and "hrtimer_forward" in warning["title"], warning
    assert lava["status"] == "fail" and code == 1, output
    _, console, _ = parse(CONSOLE, tmp_path / "console.json")
    assert results(lava) == results(console)


def test_format_is_auto_detected_and_can_be_forced(tmp_path: Path) -> None:
    code, forced, _ = parse(LAVA_LOG, tmp_path / "f.json", "--format", "lava")
    assert code == 1 and forced["ktap"]["counts"]["passed"] >= 100  # the warning: see above
    code, raw, _ = parse(LAVA_LOG, tmp_path / "raw.json", "--format", "console")
    # read as a raw console the records are not KTAP: LAVA's format must be undone
    assert results(raw) != results(forced)


def test_a_changed_console_line_in_the_lava_log_changes_the_result(tmp_path: Path) -> None:
    """The comparison above can fail: one KUnit case reported failing in LAVA's log
    is a test failure, and the results differ from the local run's."""
    text = LAVA_LOG.read_text()
    line = next(x for x in text.splitlines() if '"lvl": "target"' in x and "ok 1 GFP_KERNEL" in x)
    broken = tmp_path / "broken.lava.log"
    broken.write_text(text.replace(line, line.replace("ok 1 GFP_KERNEL", "not ok 1 GFP_KERNEL")))
    code, run, _ = parse(broken, tmp_path / "b.json")
    assert code == 1 and run["status"] == "fail"
    (local,) = json.loads(LOCAL.read_text())["runs"]
    assert results(run) != results(local)


def test_a_line_that_is_not_a_record_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.lava.log"
    lines = LAVA_LOG.read_text().splitlines(keepends=True)
    bad.write_text("".join([*lines[:10], "[    1.0] not a record\n", *lines[10:]]))
    code, _, output = parse(bad, tmp_path / "x.json", "--format", "lava")
    assert code == 2
    assert "line 11: not a LAVA log record" in output and "--format console" in output


@pytest.mark.parametrize("levels", [("info", "debug", "results")])
def test_only_target_records_are_console(tmp_path: Path, levels: tuple[str, ...]) -> None:
    kept = [x for x in LAVA_LOG.read_text().splitlines(keepends=True)
            if any(f'"lvl": "{lvl}"' in x for lvl in levels)]  # fmt: skip
    log = tmp_path / "dispatcher-only.lava.log"
    log.write_text("".join(kept))
    code, run, _ = parse(log, tmp_path / "d.json")
    assert run["status"] == "no_tests" and code == 9
