"""Drive a QEMU guest's serial console with pexpect.

Every console line is appended to the log file as it arrives, so a harness
crash or a Ctrl-C never loses what the guest printed. Two clocks guard the
boot: an overall deadline and an inactivity timeout (a hung guest prints
nothing). QEMU is always gone when `run_console` returns or raises: it is
killed in a finally block, and PR_SET_PDEATHSIG kills it if the harness
itself is killed.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pexpect

from harness.analysis.crash import Evidence, crash_kind
from harness.boot.guest.markers import INIT_DONE
from harness.fsutil import naming
from harness.record.status import ExitReason

__all__ = ["ConsoleResult", "ExitReason", "run_console"]

_PR_SET_PDEATHSIG = 1
# After the guest said it is done (or panicked), QEMU should exit within this.
_EXIT_GRACE_SECONDS = 30.0


@dataclass
class ConsoleResult:
    reason: ExitReason
    lines: list[str]
    duration: float
    qemu_exit_status: int | None = None
    saw_done: bool = False
    first_output_after: float | None = None
    notes: list[str] = field(default_factory=list)
    qemu_stderr: list[str] = field(default_factory=list)  # QEMU's own messages, not the guest's
    qemu_exit_signal: int | None = None  # QEMU died of this signal (not one the harness sent)
    # Machines: what the machine's own kernel kept of this boot (pstore), read after it
    evidence: list[Evidence] = field(default_factory=list)
    watched: bool = True  # False: no console was read (a machine without a console command)

    @property
    def qemu_exit(self) -> str | None:
        """How QEMU ended by itself, in words ("exit status 1", "killed by SIGABRT")."""
        if self.qemu_exit_signal is not None:
            try:
                name = signal.Signals(self.qemu_exit_signal).name
            except ValueError:
                name = f"signal {self.qemu_exit_signal}"
            return f"killed by {name}"
        if self.qemu_exit_status is not None:
            return f"exit status {self.qemu_exit_status}"
        return None


_MAX_STDERR_KEPT = 20  # lines of QEMU's stderr carried in the result (the file has all)


def stderr_log_for(console_log: Path) -> Path:
    """Where QEMU's stderr goes: beside the console log (console.log -> console.qemu-stderr.log)."""
    return console_log.with_name(console_log.name.removesuffix(".log") + ".qemu-stderr.log")


def _stderr_to(path: Path) -> Callable[[], None]:
    def preexec() -> None:  # in the child, after the pty became fds 0-2, before exec
        _die_with_parent()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        os.dup2(fd, 2)  # dup2 clears O_CLOEXEC on fd 2
        os.close(fd)

    return preexec


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


def run_console(
    argv: list[str],
    log_path: Path,
    overall_timeout: float,
    inactivity_timeout: float,
    stop_pattern: re.Pattern[str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> ConsoleResult:
    start = time.monotonic()
    deadline = start + overall_timeout
    lines: list[str] = []
    result = ConsoleResult(ExitReason.GUEST_EXIT, lines, 0.0)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stderr_log = stderr_log_for(log_path)
    with log_path.open("w", encoding="utf-8", errors="replace") as log:
        # QEMU's stderr goes to its own file: its start-up errors are not guest output.
        child = pexpect.spawn(
            argv[0],
            argv[1:],
            encoding="utf-8",
            codec_errors="replace",
            echo=False,
            preexec_fn=_stderr_to(stderr_log),
            dimensions=(50, 250),
            maxread=1 << 16,  # fewer, larger reads: a long line is not 2000-byte slices
        )
        try:
            finish_by: float | None = None  # set once done/panic was seen
            while True:
                now = time.monotonic()
                limit = deadline if finish_by is None else min(deadline, finish_by)
                if now >= limit:
                    if finish_by is not None and now >= finish_by:
                        result.notes.append(
                            "QEMU did not exit after the guest finished; the harness killed it"
                        )
                        if not result.saw_done:  # a panic, then a halt
                            result.reason = ExitReason.HALTED
                        break
                    result.reason = ExitReason.TIMEOUT
                    break
                wait = min(inactivity_timeout, limit - now)
                # expect_exact: a plain-string search of the new data only; a regex
                # pattern makes pexpect copy and rescan the whole pending line on every
                # read, which is quadratic in the length of a long line.
                index = child.expect_exact(["\n", pexpect.EOF, pexpect.TIMEOUT], timeout=wait)
                if index == 0:
                    line = (child.before or "").rstrip("\r")
                    if result.first_output_after is None:
                        result.first_output_after = time.monotonic() - start
                    lines.append(line)
                    _write(log, line + "\n", log_path)
                    if on_line:
                        on_line(line)
                    if INIT_DONE in line:
                        result.saw_done = True
                        finish_by = time.monotonic() + _EXIT_GRACE_SECONDS
                    elif finish_by is None and crash_kind(line) == "panic":
                        finish_by = time.monotonic() + _EXIT_GRACE_SECONDS
                    if stop_pattern is not None and stop_pattern.search(line):
                        result.reason = ExitReason.MARKER
                        break
                elif index == 1:
                    tail = (child.before or "").rstrip("\r\n")
                    if tail:
                        lines.append(tail)
                        _write(log, tail + "\n", log_path)
                    break
                else:
                    if finish_by is None and time.monotonic() < deadline:
                        result.reason = ExitReason.INACTIVITY
                        break
        finally:
            if child.isalive():
                child.terminate(force=True)
            child.close(force=True)
        result.qemu_exit_status = child.exitstatus
        result.qemu_stderr = _read_stderr(stderr_log)
        if result.reason == ExitReason.GUEST_EXIT:
            # QEMU ended by itself: its exit status and stderr say whether it failed.
            result.qemu_exit_signal = child.signalstatus
            qemu_failed = child.exitstatus not in (0, None) or child.signalstatus is not None
            if result.saw_done:
                result.reason = ExitReason.COMPLETED
            elif qemu_failed:
                result.reason = ExitReason.QEMU_ERROR
        result.duration = time.monotonic() - start
    return result


def _write(log: TextIO, text: str, path: Path) -> None:
    """Append to the console log now (a full disk fails here, naming the log)."""
    try:
        log.write(text)
        log.flush()
    except OSError as e:
        raise naming(e, path) from e


def _read_stderr(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            kept = [line.rstrip("\n") for _, line in zip(range(_MAX_STDERR_KEPT), f, strict=False)]
    except OSError:
        return []
    return [line for line in kept if line.strip()]
