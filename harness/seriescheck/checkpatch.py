"""checkpatch.pl --strict on one patch, and its findings counted."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_TOTAL = re.compile(
    r"^total: (\d+) errors?, (\d+) warnings?, (?:(\d+) checks?, )?\d+ lines checked", re.M
)
_FINDING = re.compile(r"^(ERROR|WARNING|CHECK): ")


@dataclass
class CheckpatchResult:
    patch: str
    errors: int = 0
    warnings: int = 0
    checks: int = 0
    messages: list[str] = field(default_factory=list)  # "ERROR: ..." lines
    problem: str = ""  # checkpatch did not run or printed no total line

    @property
    def clean(self) -> bool:
        return not self.problem and self.errors == self.warnings == self.checks == 0

    @property
    def label(self) -> str:
        return "n/a" if self.problem else f"{self.errors}/{self.warnings}/{self.checks}"


def parse_checkpatch(patch: str, output: str) -> CheckpatchResult:
    """Counts from checkpatch's "total: N errors, M warnings, K checks, L lines checked"."""
    m = _TOTAL.search(output)
    if m is None:
        tail = output.strip().splitlines()[-3:]
        return CheckpatchResult(patch, problem="no total line: " + " | ".join(tail))
    messages = [line.strip() for line in output.splitlines() if _FINDING.match(line)]
    return CheckpatchResult(patch, int(m.group(1)), int(m.group(2)), int(m.group(3) or 0), messages)


def run_checkpatch(tree: Path, patch: Path) -> CheckpatchResult:
    script = tree / "scripts" / "checkpatch.pl"
    if not script.is_file():
        return CheckpatchResult(patch.name, problem=f"{script} does not exist")
    # cwd=tree: checkpatch finds the tree (MAINTAINERS, spelling.txt) from there
    cmd = ["perl", str(script), "--strict", "--color=never", str(patch)]
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, check=False)
    return parse_checkpatch(patch.name, proc.stdout + proc.stderr)
