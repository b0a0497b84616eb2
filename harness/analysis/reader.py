"""Read a console log for `kbulk parse`: in chunks (so SIGTERM and Ctrl-C are honoured
even on an endless input), each line cut at ktap.MAX_LINE_LENGTH as it is read (a
1 GB line never sits in memory), and the whole input capped at ``max_bytes`` (memory
is bounded by the cap, whatever the input's length).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO

from harness.analysis.ktap import MAX_LINE_LENGTH

__all__ = ["DEFAULT_MAX_BYTES", "ConsoleInput", "read_console"]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # far above any real console (the main job's: ~100 KB)
_CHUNK = 1 << 20


@dataclass
class ConsoleInput:
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # lines cut at MAX_LINE_LENGTH
    cut_at: int | None = None  # bytes read when the size cap stopped the reading


def read_console(
    stream: BinaryIO, max_bytes: int = DEFAULT_MAX_BYTES, line_limit: int = MAX_LINE_LENGTH
) -> ConsoleInput:
    result = ConsoleInput()
    pending = bytearray()  # the current line, at most line_limit bytes of it
    pending_length = 0  # its real length
    total = 0

    def end_line() -> None:
        nonlocal pending_length
        text = pending.decode("utf-8", errors="replace").rstrip("\r")
        if pending_length > line_limit:
            result.warnings.append(
                f"line {len(result.lines) + 1}: {pending_length} bytes, truncated to {line_limit}"
            )
        result.lines.append(text)
        pending.clear()
        pending_length = 0

    while True:
        chunk = stream.read(min(_CHUNK, max_bytes - total + 1))  # a Python-level loop:
        if not chunk:  # signal handlers run between reads
            break
        if total + len(chunk) > max_bytes:
            chunk = chunk[: max_bytes - total]
            result.cut_at = max_bytes
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
            end_line()
            start = newline + 1
        if result.cut_at is not None:
            break
    if pending_length:
        end_line()
    return result
