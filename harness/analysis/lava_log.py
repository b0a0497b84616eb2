"""LAVA job logs (``lavacli jobs logs --raw ID``, the dispatcher's output.yaml):
one YAML flow mapping a line, ``- {"dt": ..., "lvl": ..., "msg": ...}``.

The device's console is the ``target`` records, one console line each; the
dispatcher's own records (``info``, ``debug``, ``results`` of LAVA's monitors,
...) are not console output. :func:`extract_console` streams the target lines
into a plain console file for the harness's own parser, so a LAVA run gives the
same results as a local boot of the same kernel: LAVA's monitor results are only
LAVA's view.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO

import yaml

__all__ = ["LavaLogError", "extract_console", "looks_like_lava"]

_PREFIX = b"- {"
_MAX_RECORD = 1 << 20
_DETECT_BYTES = 1 << 16  # a record longer than this is not a console line; skipped


class LavaLogError(ValueError):
    """Not a LAVA job log (the line is named)."""


def _record(line: bytes) -> dict[str, Any] | None:
    """The mapping of one log line, or None if the line is not a record."""
    text = line.strip()
    if not text.startswith(_PREFIX):
        return None
    body = text[2:].decode("utf-8", errors="replace")
    try:
        data = json.loads(body)  # LAVA writes the mapping as JSON
    except ValueError:
        try:
            data = yaml.safe_load(body)  # older dispatchers: YAML flow style
        except yaml.YAMLError:
            return None
    return data if isinstance(data, dict) and "lvl" in data and "msg" in data else None


def looks_like_lava(path: Path) -> bool:
    """The first non-empty line is a LAVA log record (only the file's first 64 KiB
    are read: an endless input such as /dev/zero is not a log to detect)."""
    with open(path, "rb") as fh:
        head = fh.read(_DETECT_BYTES)
    for line in head.splitlines():
        if line.strip():
            return _record(line) is not None
    return False


def extract_console(source: Path | BinaryIO, dest: Path, max_bytes: int) -> int:
    """Write the ``target`` lines of the LAVA log ``source`` (at most ``max_bytes``
    of it read) to ``dest``, one console line each; the number of console lines.

    Raises LavaLogError naming the first line that is neither a record nor empty.
    """
    count = 0
    read = 0
    fh = open(source, "rb") if isinstance(source, Path) else source  # noqa: SIM115
    try:
        with open(dest, "w", encoding="utf-8", newline="\n") as out:
            for number, line in enumerate(fh, start=1):
                read += len(line)
                if read > max_bytes:
                    break
                if not line.strip() or len(line) > _MAX_RECORD:
                    continue
                record = _record(line)
                if record is None:
                    snippet = line[:60].decode("utf-8", errors="replace").rstrip()
                    raise LavaLogError(
                        f"line {number}: not a LAVA log record ({snippet!r}); a raw serial "
                        "log is read with --format console"
                    )
                if record["lvl"] != "target" or not isinstance(record["msg"], str):
                    continue
                # a console line may carry its own CR/LF; one line it is
                out.write(record["msg"].rstrip("\r\n").replace("\n", " ") + "\n")
                count += 1
    finally:
        if isinstance(source, Path):
            fh.close()
    return count
