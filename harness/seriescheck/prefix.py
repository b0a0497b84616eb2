"""Build one prefix of a series in the incremental work tree: configure when needed
(requested symbols the prefix does not define yet are "not yet present", not a config
error), make, and classify. Shared by series-check (every prefix in order) and bisect
(prefixes in search order)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from harness.errors import failure
from harness.kernel.build import BuildError, KernelBuilder
from harness.kernel.kconfig import Mismatch, verify
from harness.kernel.patches import Series
from harness.seriescheck.report import PrefixBuild, PrefixStatus
from harness.seriescheck.touched import touched_files
from harness.seriescheck.worktree import defined_symbols


def touches_kconfig(series: Series, a: int, b: int) -> bool:
    """Whether a patch between prefixes a and b (either order) changes a Kconfig file:
    moving the tree across it needs a fresh configuration."""
    lo, hi = sorted((a, b))
    for patch in series.patches[lo:hi]:
        if any(Path(f).name.startswith("Kconfig") for f in touched_files(patch.read_text())):
            return True
    return False


def build_prefix(
    builder: KernelBuilder,
    tree: Path,
    k: int,
    log: Path,
    reconfigure: bool,
    on_line: Callable[[str], None] | None = None,
) -> tuple[PrefixBuild, bool]:
    """Build the tree as it stands (prefix k) into the builder's directory.

    Returns the record and whether make ran (False: configuring failed, the log
    holds no compiler output)."""
    log.write_text("")
    result = PrefixBuild(builder.arch.name, k, PrefixStatus.OK, log=str(log))
    started = time.monotonic()
    try:
        problems = configure_prefix(builder, log, reconfigure, tree, result)
    except BuildError as e:
        found = failure(e)
        result.status, result.first_error = PrefixStatus.of(found.status), found.message
        result.duration = round(time.monotonic() - started, 1)
        return result, False
    rc, scan = builder.run_make(builder.kernel_targets(), log, on_line)
    result.duration = round(time.monotonic() - started, 1)
    result.warnings_total = scan.warnings
    image_ok = (builder.build_dir / builder.arch.image).is_file()
    if rc != 0 or not image_ok:
        result.status = PrefixStatus.BUILD_FAILURE
        result.first_error = scan.first_error or f"make exited with {rc}"
    elif problems:
        result.status = PrefixStatus.CONFIG_ERROR
    return result, True


def configure_prefix(
    builder: KernelBuilder, log: Path, force: bool, tree: Path, result: PrefixBuild
) -> list[Mismatch]:
    """Configure when the Kconfig changed (or at the first build); verify at every prefix.

    Without a Kconfig change the .config stays valid: make's own syncconfig
    covers it, and a full reconfiguration would only cost time.
    """
    dotconfig = builder.build_dir / ".config"
    if force or not dotconfig.is_file():
        mismatches = builder.configure(log, force=True)
    else:
        mismatches = verify(builder.request, dotconfig.read_text())
    if not mismatches:
        return []
    present = defined_symbols(tree, [m.requirement.symbol for m in mismatches])
    real = [m for m in mismatches if m.requirement.symbol in present]
    result.not_yet_present = [
        m.requirement.symbol for m in mismatches if m.requirement.symbol not in present
    ]
    result.config_mismatches = [str(m) for m in real]
    return real
