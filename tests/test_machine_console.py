"""Console capture through a real console command, and the machine command line."""

from __future__ import annotations

import os
import time
from pathlib import Path

from harness.boot.console import ExitReason
from harness.machine.console import ConsoleCapture
from harness.machine.remote import kernel_cmdline


def capture(argv: list[str], log: Path, inactivity: float = 5.0, overall: float = 10.0):
    console = ConsoleCapture(argv, log)
    try:
        return console, console.capture(overall, inactivity)
    finally:
        console.stop()


def test_stops_at_the_done_marker_and_kills_the_command(tmp_path: Path) -> None:
    script = "echo one; echo 'kbulk-init: done'; echo after; sleep 30"
    console, result = capture(["sh", "-c", script], tmp_path / "c.log")
    assert result.reason == ExitReason.COMPLETED and result.saw_done
    assert result.lines == ["one", "kbulk-init: done"]
    assert (tmp_path / "c.log").read_text() == "one\nkbulk-init: done\n"
    assert console.process.poll() is not None, "console command left running"


def test_silence_is_inactivity(tmp_path: Path) -> None:
    started = time.monotonic()
    console, result = capture(["sh", "-c", "echo boot; sleep 30"], tmp_path / "c.log", 0.5)
    assert result.reason == ExitReason.INACTIVITY
    assert result.lines == ["boot"]
    assert time.monotonic() - started < 5
    # the whole process group is gone, the sleep included
    assert console.process.poll() is not None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(console.process.pid, 0)  # zombies answer until init reaps them
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the console command's process group survived")


def test_panic_end_stops_capture(tmp_path: Path) -> None:
    script = (
        "echo 'Kernel panic - not syncing: Fatal exception'; echo 'Call Trace:'; "
        "echo '---[ end Kernel panic - not syncing: Fatal exception ]---'; sleep 30"
    )
    _, result = capture(["sh", "-c", script], tmp_path / "c.log")
    assert result.reason == ExitReason.GUEST_EXIT
    assert result.lines[-1].startswith("---[ end Kernel panic")


def test_console_command_that_ends_is_reported(tmp_path: Path) -> None:
    _, result = capture(["sh", "-c", "echo x"], tmp_path / "c.log")
    assert result.reason == ExitReason.QEMU_ERROR
    assert any("console command exited" in note for note in result.notes)


def test_lines_are_data_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    line = f"$(touch {marker}) `touch {marker}`; touch {marker}"
    _, result = capture(["printf", "%s\\nkbulk-init: done\\n", line], tmp_path / "c.log")
    assert result.lines[0] == line
    assert not marker.exists()


def test_machine_cmdline_makes_the_kernel_return() -> None:
    args = kernel_cmdline("x86_64", ["kunit.filter_glob=x"])
    assert args[0] == "console=ttyS0"
    assert {"oops=panic", "softlockup_panic=1", "hung_task_panic=1", "panic=10"} <= set(args)
    # the run's own panic= wins, none is added
    assert kernel_cmdline("arm64", ["panic=-1"]).count("panic=-1") == 1
    assert "panic=10" not in kernel_cmdline("arm64", ["panic=-1"])
    assert kernel_cmdline("arm64", [])[0] == "console=ttyAMA0"
