"""run_console driven by `sh -c` instead of QEMU: both clocks, crashes mid-line, the
process dying, and the guarantee that the child is gone when run_console returns."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from harness.boot import console
from harness.boot.console import ExitReason, run_console
from harness.boot.guest.markers import INIT_DONE


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def gone(pid_file: Path) -> bool:
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_completed_run_keeps_every_line(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    result = run_console(sh(f"echo one; echo two; echo '{INIT_DONE}'"), log, 10, 5)
    assert result.reason is ExitReason.COMPLETED and result.saw_done
    assert result.lines == ["one", "two", INIT_DONE]
    assert log.read_text() == f"one\ntwo\n{INIT_DONE}\n"
    assert result.qemu_exit_status == 0 and result.first_output_after is not None


def test_overall_timeout_kills_a_chatty_child(tmp_path: Path) -> None:
    pid = tmp_path / "pid"
    script = f"echo $$ > {pid}; while :; do echo tick; sleep 0.05; done"
    started = time.monotonic()
    result = run_console(sh(script), tmp_path / "c.log", overall_timeout=0.5, inactivity_timeout=5)
    assert result.reason is ExitReason.TIMEOUT
    assert time.monotonic() - started < 4
    assert len(result.lines) > 3 and gone(pid)


def test_inactivity_timeout_fires_before_the_overall_one(tmp_path: Path) -> None:
    pid = tmp_path / "pid"
    script = f"echo $$ > {pid}; echo booting; exec sleep 60"
    result = run_console(sh(script), tmp_path / "c.log", overall_timeout=30, inactivity_timeout=0.3)
    assert result.reason is ExitReason.INACTIVITY
    assert result.duration < 5 and result.lines == ["booting"]
    assert gone(pid)


def test_a_crash_cut_mid_line_is_kept(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    result = run_console(sh("echo ok 1 a; printf 'Kernel panic - not syn'"), log, 10, 5)
    assert result.reason is ExitReason.GUEST_EXIT  # ended without init finishing
    assert result.lines[-1] == "Kernel panic - not syn"
    assert log.read_text().endswith("Kernel panic - not syn\n")


def test_child_dying_with_an_error_and_no_output_is_a_qemu_error(tmp_path: Path) -> None:
    result = run_console(sh("exit 3"), tmp_path / "c.log", 10, 5)
    assert result.reason is ExitReason.QEMU_ERROR and result.qemu_exit_status == 3


def test_child_exiting_after_output_is_a_guest_exit(tmp_path: Path) -> None:
    result = run_console(sh("echo 'kbulk-init: start'; exit 0"), tmp_path / "c.log", 10, 5)
    assert result.reason is ExitReason.GUEST_EXIT
    assert result.lines == ["kbulk-init: start"]


def test_child_killed_by_a_signal_after_output_is_a_qemu_error(tmp_path: Path) -> None:
    """QEMU aborting mid-boot (a KVM internal error, SIGABRT) is QEMU's failure, not the
    guest's: its message goes to the stderr file, not into the console."""
    script = "echo 'kbulk-init: start'; echo 'KVM internal error' >&2; kill -ABRT $$"
    result = run_console(sh(script), tmp_path / "c.log", 10, 5)
    assert result.reason is ExitReason.QEMU_ERROR
    assert result.qemu_exit_signal == 6
    assert result.lines == ["kbulk-init: start"]
    assert result.qemu_stderr == ["KVM internal error"]
    assert (tmp_path / "c.qemu-stderr.log").read_text() == "KVM internal error\n"


def test_child_that_does_not_exit_after_done_is_killed_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = tmp_path / "pid"
    monkeypatch.setattr(console, "_EXIT_GRACE_SECONDS", 0.2)
    script = f"echo $$ > {pid}; echo '{INIT_DONE}'; exec sleep 60"
    result = run_console(sh(script), tmp_path / "c.log", overall_timeout=20, inactivity_timeout=20)
    assert result.reason is ExitReason.COMPLETED
    assert result.notes == ["QEMU did not exit after the guest finished; the harness killed it"]
    assert result.duration < 5 and gone(pid)


def test_panic_then_halt_records_that_the_harness_killed_qemu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 item 15: a panic followed by a halt (QEMU never exits) is not a guest exit."""
    pid = tmp_path / "pid"
    monkeypatch.setattr(console, "_EXIT_GRACE_SECONDS", 0.2)
    script = f"echo $$ > {pid}; echo 'Kernel panic - not syncing: test'; exec sleep 60"
    result = run_console(sh(script), tmp_path / "c.log", overall_timeout=20, inactivity_timeout=20)
    assert result.reason is ExitReason.HALTED
    assert result.notes == ["QEMU did not exit after the guest finished; the harness killed it"]
    assert gone(pid)
