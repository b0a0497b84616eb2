"""Apply a quilt-format patch series to a work copy of a source tree.

The work copy is built in a temporary directory and renamed into place only
after every patch applied, so a failed series never leaves a half-patched tree
that a later run could pick up. Work copies share unchanged files with the
pristine tree through hard links (patch(1) replaces the files it changes
rather than writing through the link).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.fsutil import hardlink_copy
from harness.kernel.source import Log, SourceTree
from harness.record.status import RunStatus


class PatchError(HarnessError):
    """A patch did not apply; names the patch and the failing file/hunk."""

    status = RunStatus.PATCH_FAILURE

    def __init__(self, message: str, patch: str | None = None, details: str = "") -> None:
        super().__init__(message)
        self.patch = patch
        self.details = details


@dataclass(frozen=True)
class Series:
    directory: Path
    patches: list[Path]
    digest: str  # sha256 over the ordered patch names and contents, taken at load time

    def prefix(self, n: int) -> Series:
        """The first n patches: a series of its own (own digest, own work tree)."""
        if not 1 <= n <= len(self.patches):
            raise PatchError(
                f"{self.directory}: cannot take the first {n} patches of a series of "
                f"{len(self.patches)}"
            )
        patches = self.patches[:n]
        return Series(self.directory, patches, series_digest(patches))


def series_digest(patches: list[Path]) -> str:
    h = hashlib.sha256()
    for p in patches:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _has_diff(path: Path) -> bool:
    """True if the file has a unified diff hunk header, as anything patch(1) applies does."""
    with path.open(errors="replace") as f:
        return any(line.startswith("@@ ") for line in f)


def load_series(directory: Path) -> Series:
    """Read directory/series (quilt format: one patch per line, '#' comments, -pN ignored)."""
    directory = directory.resolve()
    series_file = directory / "series"
    if not series_file.is_file():
        raise PatchError(f"{series_file}: no series file (quilt format: one patch name per line)")
    patches = []
    for lineno, raw in enumerate(series_file.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name = line.split()[0]
        path = directory / name
        if not path.is_file():
            raise PatchError(
                f"{series_file}:{lineno}: patch {name!r} does not exist in {directory}"
            )
        if not _has_diff(path):
            raise PatchError(
                f"{series_file}:{lineno}: {name!r} contains no diff (a cover letter?); "
                "list only the patches"
            )
        patches.append(path)
    return Series(directory, patches, series_digest(patches))


@dataclass(frozen=True)
class PatchedTree:
    path: Path
    source: SourceTree
    series: Series | None
    series_digest: str  # "none" without a series

    @property
    def label(self) -> str:
        return "none" if self.series is None else self.series_digest[:12]


_FAILED_HUNK = re.compile(r"Hunk #(\d+) FAILED at (\d+)")
_FILE = re.compile(r"^(?:patching|checking) file (.+)$")


def summarise_failure(output: str) -> str:
    """Turn patch(1) output into "file: hunk #N at line L" lines."""
    current = "?"
    problems = []
    for line in output.splitlines():
        if m := _FILE.match(line):
            current = m.group(1).strip("'")
        elif m := _FAILED_HUNK.search(line):
            problems.append(f"{current}: hunk #{m.group(1)} FAILED at line {m.group(2)}")
        elif "can't find file" in line or "No such file" in line:
            problems.append(f"{current}: file to patch not found")
        elif "Reversed (or previously applied) patch detected" in line:
            problems.append(f"{current}: already applied (reversed patch detected)")
        elif "malformed patch" in line:
            problems.append(line.strip())
    return "\n".join(problems) or output.strip()[-1500:]


def apply_series(
    source: SourceTree, series: Series | None, work_root: Path, log: Log
) -> PatchedTree:
    """Return a tree with the series applied, reusing a complete earlier one."""
    if series is None and source.local:
        return PatchedTree(source.path, source, None, "none")
    if shutil.which("patch") is None:
        raise PatchError("patch(1) not found: apt-get install patch")
    # Even an unpatched tree gets a work copy: baseline and patched builds then
    # see the source at the same relative path and share ccache entries.
    digest = series.digest if series else "none"
    key = f"{source.kernel_version}-{source.checksum[:12]}-{digest[:12]}"
    final = work_root / key / "linux"
    marker = final / ".kbulk-series"
    if marker.is_file() and marker.read_text().strip() == digest:
        return PatchedTree(final, source, series, digest)
    if final.exists():  # incomplete leftover from an interrupted run
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="linux.", dir=final.parent))
    try:
        tree = tmp / "linux"
        log(f"copying {source.origin} into a work tree")
        hardlink_copy(source.path, tree)
        for patch in series.patches if series else []:
            run_patch(tree, patch)
        (tree / ".kbulk-series").write_text(digest + "\n")
        try:
            tree.rename(final)
        except OSError:
            # Another kbulk process published the same tree first: use theirs.
            if not (marker.is_file() and marker.read_text().strip() == digest):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if series:
        log(f"applied {len(series.patches)} patches from {series.directory}")
    return PatchedTree(final, source, series, digest)


def run_patch(tree: Path, patch: Path, reverse: bool = False) -> None:
    """patch(1) one patch into ``tree`` (no backups, no rejects); PatchError if it fails.

    patch(1) writes changed files anew, so a hard-linked tree never writes through
    to the pristine source."""
    cmd = ["patch", "-p1", "-N", "-f", "--no-backup-if-mismatch", "-r", "-", "-i", str(patch)]
    if reverse:
        cmd.insert(1, "-R")
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        verb = "does not reverse-apply" if reverse else "does not apply"
        raise PatchError(
            f"patch {patch.name} {verb}:\n{summarise_failure(output)}",
            patch=patch.name,
            details=output,
        )
