"""Progress for long steps (extract, build, boot): elapsed time, last activity.

On a terminal it shows a live rich status line; in CI logs it prints a line
when a step starts and when it ends, plus a heartbeat every minute so a slow
step is never mistaken for a hang.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console

HEARTBEAT_SECONDS = 60.0

# C0 controls but tab and newline, DEL, C1 controls: from a guest console (suite and
# test names, crash titles) they would drive the terminal (colours, titles, resets).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters shown as ``\\xNN``, safe to print to a terminal."""
    return _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@dataclass
class Reporter:
    console: Console = field(default_factory=lambda: Console(stderr=True, highlight=False))
    quiet: bool = False

    @property
    def interactive(self) -> bool:
        return self.console.is_terminal

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(printable(message), markup=False, soft_wrap=True)

    def warn(self, message: str) -> None:
        text = f"warning: {printable(message)}"
        self.console.print(text, style="yellow", markup=False, soft_wrap=True)

    def error(self, message: str) -> None:
        text = f"error: {printable(message)}"
        self.console.print(text, style="bold red", markup=False, soft_wrap=True)

    @contextmanager
    def step(self, title: str) -> Iterator[StepHandle]:
        handle = StepHandle(self, title)
        self.info(f"==> {title}")
        if self.interactive and not self.quiet:
            with self.console.status(title) as status:
                handle.status = status
                yield handle
        else:
            yield handle
        self.info(f"    {title}: {handle.outcome} in {handle.elapsed():.1f} s")


@dataclass
class StepHandle:
    reporter: Reporter
    title: str
    started: float = field(default_factory=time.monotonic)
    outcome: str = "done"
    status: object | None = None
    _last_beat: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def activity(self, text: str) -> None:
        """Called for each line of output of the step (cheap when not shown)."""
        now = time.monotonic()
        if self.status is not None:
            self.status.update(f"{self.title} [{self.elapsed():.0f} s] {printable(text[:80])}")  # type: ignore[attr-defined]
        elif now - self._last_beat >= HEARTBEAT_SECONDS:
            self._last_beat = now
            line = f"    ... {self.title}: {self.elapsed():.0f} s, {printable(text[:100])}"
            print(line, file=sys.stderr)
