"""Read a console log for `kbulk parse` without holding it: a :class:`ConsoleFile` is
iterated straight from the file, once per analysis pass, in 1 MiB chunks (so SIGTERM
and Ctrl-C are honoured even on an endless input); each line is cut at
ktap.MAX_LINE_LENGTH as it is read (a 1 GB line never sits in memory) and at most
``max_bytes`` of the file is read. Standard input is first copied to a temporary
file (the same cap), so it can be read more than once.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from harness.analysis.ktap import MAX_LINE_LENGTH

__all__ = ["DEFAULT_MAX_BYTES", "ConsoleFile", "ConsoleInput", "read_console", "spool"]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # far above any real console (the main job's: ~100 KB)
MAX_READ_WARNINGS = 1000  # cut-line warnings kept (then one line says how many more)
_CHUNK = 1 << 20


@dataclass
class ConsoleInput:
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # lines cut at MAX_LINE_LENGTH
    cut_at: int | None = None  # bytes read when the size cap stopped the reading


@dataclass
class _State:
    warnings: list[str] = field(default_factory=list)
    cuts: int = 0
    cut_at: int | None = None


def _lines(stream: BinaryIO, max_bytes: int, line_limit: int, state: _State) -> Iterator[str]:
    pending = bytearray()  # the current line, at most line_limit bytes of it
    pending_length = 0  # its real length
    total = 0
    number = 0

    def text() -> str:
        nonlocal number
        number += 1
        if pending_length > line_limit:
            state.cuts += 1
            if len(state.warnings) < MAX_READ_WARNINGS:
                state.warnings.append(
                    f"line {number}: {pending_length} bytes, truncated to {line_limit}"
                )
        return pending.decode("utf-8", errors="replace").rstrip("\r")

    while True:
        chunk = stream.read(min(_CHUNK, max_bytes - total + 1))  # a Python-level loop:
        if not chunk:  # signal handlers run between reads
            break
        if total + len(chunk) > max_bytes:
            chunk = chunk[: max_bytes - total]
            state.cut_at = max_bytes
        total += len(chunk)
        start = 0
        while start < len(chunk):
            newline = chunk.find(b"\n", start)
            piece = chunk[start:] if newline < 0 else chunk[start:newline]
            room = line_limit - len(pending)
            if room > 0:
                pending += piece[:room]
            pending_length += len(piece)
            if newline < 0:
                break
            yield text()
            pending.clear()
            pending_length = 0
            start = newline + 1
        if state.cut_at is not None:
            break
    if pending_length:
        yield text()


def read_console(
    stream: BinaryIO, max_bytes: int = DEFAULT_MAX_BYTES, line_limit: int = MAX_LINE_LENGTH
) -> ConsoleInput:
    """The whole (capped) input as a list of lines, for callers that want one."""
    state = _State()
    lines = list(_lines(stream, max_bytes, line_limit, state))
    return ConsoleInput(lines, _warnings(state), state.cut_at)


def _warnings(state: _State) -> list[str]:
    more = state.cuts - len(state.warnings)
    return [*state.warnings, *([f"... {more} more lines truncated"] if more > 0 else [])]


class ConsoleFile(Collection[str]):
    """A console log on disk, read line by line on every iteration (never held)."""

    def __init__(
        self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES, line_limit: int = MAX_LINE_LENGTH
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.line_limit = line_limit
        state = _State()
        self._count = sum(1 for _ in self._read(state))  # one pass: count, cuts, the cap
        self.warnings = _warnings(state)
        self.cut_at = state.cut_at

    def _read(self, state: _State) -> Iterator[str]:
        with self.path.open("rb") as stream:
            yield from _lines(stream, self.max_bytes, self.line_limit, state)

    def __iter__(self) -> Iterator[str]:
        return self._read(_State())

    def __len__(self) -> int:
        return self._count

    def __contains__(self, item: object) -> bool:
        return any(line == item for line in self)


def spool(stream: BinaryIO, max_bytes: int) -> Path:
    """Copy at most ``max_bytes + 1`` bytes of ``stream`` to a temporary file (so a
    ConsoleFile over it sees whether the cap was hit); the caller removes it."""
    fd, name = tempfile.mkstemp(prefix="kbulk-parse-", suffix=".log")
    with os.fdopen(fd, "wb") as out:
        left = max_bytes + 1
        while left > 0:
            chunk = stream.read(min(_CHUNK, left))
            if not chunk:
                break
            out.write(chunk)
            left -= len(chunk)
    return Path(name)
