"""The incremental work tree: a hard-linked copy of the source that patches are applied
to one at a time, restartable after an interruption."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.fsutil import atomic_write_text, hardlink_copy
from harness.kernel.patches import PatchError, Series, run_patch
from harness.kernel.source import Log, SourceTree
from harness.seriescheck.errors import SeriesCheckError

STATE_FILE = "seriescheck-state.json"


_COMPILED = {".c", ".h", ".S"}


def touch_unlinked(path: Path) -> None:
    """Give path a fresh mtime without touching the pristine tree it is hard-linked to."""
    if path.stat().st_nlink > 1:
        tmp = path.with_name(f".{path.name}.kbulk-touch")
        shutil.copy2(path, tmp)
        os.replace(tmp, path)
    os.utime(path)


@dataclass
class WorkTree:
    """The incremental tree of one series and its progress marker."""

    root: Path  # <cache>/work/seriescheck-<digest12>
    source: SourceTree
    series: Series

    @property
    def path(self) -> Path:
        return self.root / "linux"

    @property
    def state_file(self) -> Path:
        return self.root / STATE_FILE

    def _state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def _record(self, applied: int | None) -> None:
        state = {"source": self.source.checksum, "series": self.series.digest, "applied": applied}
        atomic_write_text(self.state_file, json.dumps(state) + "\n")

    def reset(self, log: Log) -> None:
        """Bring the tree to the pristine state: reverse-apply, or copy afresh."""
        self.root.mkdir(parents=True, exist_ok=True)
        state = self._state()
        applied = state.get("applied")
        known = (
            state.get("source") == self.source.checksum
            and state.get("series") == self.series.digest
            and isinstance(applied, int)
            and self.path.is_dir()
        )
        if known:
            try:
                assert isinstance(applied, int)
                for k in range(applied, 0, -1):
                    self._record(None)
                    run_patch(self.path, self.series.patches[k - 1], reverse=True)
                    self._record(k - 1)
                if applied:
                    log(f"reverse-applied {applied} patches in {self.path}")
                return
            except PatchError as e:
                log(f"work tree in an unknown state ({e}); copying it again")
        self._record(None)
        for stale in [self.path, *self.root.glob("build-*")]:
            shutil.rmtree(stale, ignore_errors=True)
        log(f"copying {self.source.origin} into {self.path}")
        hardlink_copy(self.source.path, self.path)
        self._record(0)

    def apply(self, k: int) -> None:
        """Apply patch k (1-based); the tree must hold patches 1..k-1."""
        self._record(None)
        run_patch(self.path, self.series.patches[k - 1])
        self._record(k)

    @property
    def applied(self) -> int | None:
        """How many patches the tree holds (None: unknown, reset() first)."""
        applied = self._state().get("applied")
        return applied if isinstance(applied, int) else None

    def goto(self, k: int) -> None:
        """Bring the tree from its recorded prefix to prefix k, applying or reverse-applying
        one patch at a time (bisect visits prefixes out of order). Reverse-applied files
        get fresh mtimes too, so make rebuilds what changed either way."""
        current = self.applied
        if current is None:
            raise SeriesCheckError(f"{self.state_file}: unknown state, reset the work tree first")
        total = len(self.series.patches)
        if not 0 <= k <= total:
            raise SeriesCheckError(f"prefix {k} is outside the series (0..{total})")
        while current < k:
            current += 1
            self.apply(current)
        while current > k:
            self._record(None)
            run_patch(self.path, self.series.patches[current - 1], reverse=True)
            current -= 1
            self._record(current)

    def touch(self, files: Iterable[str]) -> None:
        for name in files:
            path = self.path / name
            if Path(name).suffix in _COMPILED and path.is_file():
                touch_unlinked(path)

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "lock").open("w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SeriesCheckError(
                    f"another series-check or bisect is using {self.root}"
                ) from None
            yield


def defined_symbols(tree: Path, symbols: Collection[str]) -> set[str]:
    """Which of the CONFIG_ symbols some Kconfig file of the tree defines."""
    names = {s.removeprefix("CONFIG_") for s in symbols}
    if not names:
        return set()
    pattern = re.compile(r"^\s*(?:menu)?config\s+(" + "|".join(map(re.escape, names)) + r")\s*$")
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("Kconfig"):
                text = (Path(dirpath) / name).read_text(errors="replace")
                found.update(m.group(1) for m in map(pattern.match, text.splitlines()) if m)
    return {f"CONFIG_{n}" for n in found}
