"""The files a patch touches, read from its diff headers."""

from __future__ import annotations

import re

_DIFF_GIT = re.compile(r"^diff --git a/(\S+) b/(\S+)$")
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def _header_path(rest: str) -> str | None:
    path = rest.split("\t", 1)[0].strip()
    if path == "/dev/null":
        return None
    return path[2:] if path.startswith(("a/", "b/")) else path


def touched_files(patch_text: str) -> list[str]:
    """Paths (-p1) a patch creates, changes, deletes or renames, in order.

    Hunk bodies are skipped by their line counts, so a removed line that
    happens to start with "-- " is not mistaken for a file header.
    """
    found: dict[str, None] = {}
    old_left = new_left = 0
    for line in patch_text.splitlines():
        if old_left > 0 or new_left > 0:
            tag = line[:1]
            if tag in (" ", ""):
                old_left, new_left = old_left - 1, new_left - 1
            elif tag == "-":
                old_left -= 1
            elif tag == "+":
                new_left -= 1
            continue
        if m := _HUNK.match(line):
            old_left, new_left = int(m.group(1) or 1), int(m.group(2) or 1)
        elif m := _DIFF_GIT.match(line):
            found.update(dict.fromkeys(m.groups()))
        elif line.startswith(("--- ", "+++ ")) and (path := _header_path(line[4:])):
            found[path] = None
    return list(found)
