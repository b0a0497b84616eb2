"""Compiler warnings in a build log, and which of them a patch added to the files it touches."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*[mK]")
_GCC_WARNING = re.compile(r"^(?P<path>[^\s:]+):(?P<line>\d+):(?:\d+:)? warning: (?P<msg>.+)$")


@dataclass(frozen=True, order=True)
class CompilerWarning:
    path: str  # relative to the kernel tree
    line: int
    message: str  # including the [-Wflag]

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def normalize_path(raw: str, tree: Path, build_dir: Path) -> str | None:
    """A compiler's path (absolute, or relative to the build dir) -> relative to the tree."""
    path = Path(raw) if os.path.isabs(raw) else build_dir / raw
    path = Path(os.path.normpath(path))
    try:
        return path.relative_to(tree).as_posix()
    except ValueError:
        return None  # generated files in the build dir, system headers


def parse_warnings(lines: Iterable[str], tree: Path, build_dir: Path) -> list[CompilerWarning]:
    """Compiler warnings located in the tree, deduplicated, in first-seen order."""
    found: dict[CompilerWarning, None] = {}
    for raw in lines:
        m = _GCC_WARNING.match(_ANSI.sub("", raw).strip())
        if m is None:
            continue
        path = normalize_path(m.group("path"), tree, build_dir)
        if path is not None:
            found[CompilerWarning(path, int(m.group("line")), m.group("msg").strip())] = None
    return list(found)


def new_warnings(
    before: Iterable[CompilerWarning], after: Iterable[CompilerWarning]
) -> list[CompilerWarning]:
    """Warnings in `after` beyond those in `before`, compared per (path, message).

    Line numbers are ignored for matching (the patch shifts them); when a
    message occurs more often after, the occurrences at lines without that
    message before are reported first.
    """
    before_set, after_set = set(before), list(dict.fromkeys(after))
    counts = Counter((w.path, w.message) for w in before_set)
    old_lines: dict[tuple[str, str], set[int]] = {}
    for w in before_set:
        old_lines.setdefault((w.path, w.message), set()).add(w.line)
    groups: dict[tuple[str, str], list[CompilerWarning]] = {}
    for w in after_set:
        groups.setdefault((w.path, w.message), []).append(w)
    out: list[CompilerWarning] = []
    for key, items in groups.items():
        excess = len(items) - counts[key]
        if excess > 0:
            seen = old_lines.get(key, set())
            ranked = sorted(items, key=lambda w: (w.line in seen, w.line))
            out += ranked[:excess]
    return sorted(out)


def diff_warnings(
    before_lines: Iterable[str],
    after_lines: Iterable[str],
    files: Collection[str],
    tree: Path,
    build_dir: Path,
) -> list[CompilerWarning]:
    """New warnings in `files` between two build logs (lines of text)."""
    wanted = set(files)
    before = [w for w in parse_warnings(before_lines, tree, build_dir) if w.path in wanted]
    after = [w for w in parse_warnings(after_lines, tree, build_dir) if w.path in wanted]
    return new_warnings(before, after)
