"""Capture a machine's serial console through the inventory's console command.

The command (a console server client, IPMI SOL, ``tail -F`` of a file) runs
without a shell in its own process group and is killed when capture ends.
Lines are appended to the log as they arrive. Capture ends at the guest
init's done marker, at the end of a kernel panic, after the console has been
silent too long, or at the overall deadline; lines are data, never run.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.boot.console import ConsoleResult, ExitReason
from harness.boot.guest.markers import INIT_DONE

_PANIC = re.compile(r"Kernel panic - not syncing")
_PANIC_END = re.compile(r"---\[ end Kernel panic")
_AFTER_PANIC_SECONDS = 15.0  # keep reading this long after a panic without its end line


class ConsoleCapture:
    """A running console command; lines are read by a thread into a queue."""

    def __init__(self, argv: Sequence[str], log_path: Path) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self._lines.put(raw.decode(errors="replace").rstrip("\r\n"))
        self._lines.put(None)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def capture(
        self,
        overall_timeout: float,
        inactivity_timeout: float,
        on_line: Callable[[str], None] | None = None,
    ) -> ConsoleResult:
        start = time.monotonic()
        deadline = start + overall_timeout
        lines: list[str] = []
        result = ConsoleResult(ExitReason.GUEST_EXIT, lines, 0.0)
        finish_by: float | None = None
        with self.log_path.open("a", encoding="utf-8", errors="replace") as log:
            while True:
                now = time.monotonic()
                limit = deadline if finish_by is None else min(deadline, finish_by)
                if now >= limit:
                    if finish_by is None:
                        result.reason = ExitReason.TIMEOUT
                    break
                try:
                    line = self._lines.get(timeout=min(inactivity_timeout, limit - now))
                except queue.Empty:
                    if finish_by is None and time.monotonic() < deadline:
                        result.reason = ExitReason.INACTIVITY
                    break
                if line is None:
                    result.notes.append(f"the console command exited ({self.argv[0]})")
                    if finish_by is None:
                        result.reason = ExitReason.QEMU_ERROR
                    break
                if result.first_output_after is None:
                    result.first_output_after = time.monotonic() - start
                lines.append(line)
                log.write(line + "\n")
                log.flush()
                if on_line:
                    on_line(line)
                if INIT_DONE in line:
                    result.saw_done = True
                    result.reason = ExitReason.COMPLETED
                    break
                if _PANIC_END.search(line):
                    break
                if _PANIC.search(line) and finish_by is None:
                    finish_by = time.monotonic() + _AFTER_PANIC_SECONDS
        result.duration = time.monotonic() - start
        return result
