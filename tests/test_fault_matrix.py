"""The fault matrix (issue 11): each fault a hostile but fair user can cause gets its
status, a clear message and a kept record, never a traceback.

Fast cases run the real CLI in a subprocess before anything is built (missing QEMU,
bad input, compare); cases that need a booted kernel are marked e2e and reuse the
main job's cached x86_64 build. Pathological long lines and bad timeouts are
covered in tests/test_reliability_parse.py and tests/test_reliability_spec.py
(referenced here so the matrix is complete in one place).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.paths import REPO_ROOT

PYTHON = sys.executable


@dataclass
class Cli:
    returncode: int
    output: str
    result_dir: Path | None

    @property
    def results(self) -> dict:
        assert self.result_dir is not None, self.output
        return json.loads((self.result_dir / "results.json").read_text())


def kbulk(
    *args: str,
    results: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    stdin: str | None = None,
) -> Cli:
    cmd = [PYTHON, "-m", "harness.cli", *args]
    before: set[Path] = set()
    if results is not None:
        results.mkdir(parents=True, exist_ok=True)
        before = set(results.iterdir())
        cmd += ["--results", str(results)]
    proc = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        check=False,
    )
    output = proc.stdout + proc.stderr
    print(output)
    created = sorted(set(results.iterdir()) - before) if results is not None else []
    return Cli(proc.returncode, output, created[-1] if created else None)


def path_without(tmp_path: Path, *prefixes: str) -> str:
    """A real PATH: symlinks to every tool on this host's PATH except those named prefix*."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            if entry.name.startswith(prefixes) or (bin_dir / entry.name).exists():
                continue
            if entry.is_file() and os.access(entry.path, os.X_OK):
                (bin_dir / entry.name).symlink_to(entry.path)
    assert shutil.which("make", path=str(bin_dir))
    return str(bin_dir)


def assert_no_traceback(cli: Cli) -> None:
    assert "Traceback" not in cli.output, cli.output


# --- 1. QEMU missing -----------------------------------------------------------------


def test_qemu_missing_for_every_arch_is_infra_error_before_the_source(tmp_path: Path) -> None:
    """No qemu-system-* on PATH: each arch infra_error with the install line, and the
    source is never looked at (a --source that does not exist is not what is reported)."""
    path = path_without(tmp_path, "qemu-system-")
    cli = kbulk(
        "run", "--arch", "x86_64", "--arch", "arm64", "--source", str(tmp_path / "no-such-tree"),
        results=tmp_path / "results", env={"PATH": path},
    )  # fmt: skip
    assert cli.returncode == 8
    assert_no_traceback(cli)
    runs = {r["arch"]: r for r in cli.results["runs"]}
    assert set(runs) == {"x86_64", "arm64"}
    for arch, package in (("x86_64", "qemu-system-x86"), ("arm64", "qemu-system-arm")):
        assert runs[arch]["status"] == "infra_error"
        assert "qemu-system-" in runs[arch]["message"]
        assert f"apt-get install -y {package}" in runs[arch]["message"]
        assert "no-such-tree" not in runs[arch]["message"]


def test_qemu_missing_for_one_arch_the_other_still_runs(tmp_path: Path) -> None:
    """qemu-system-aarch64 missing: arm64 infra_error (QEMU named); x86_64 goes on to the
    source stage (here a missing tree, so the run stops there, with its own message)."""
    path = path_without(tmp_path, "qemu-system-aarch64")
    cli = kbulk(
        "run", "--arch", "x86_64", "--arch", "arm64", "--source", str(tmp_path / "no-such-tree"),
        results=tmp_path / "results", env={"PATH": path},
    )  # fmt: skip
    assert_no_traceback(cli)
    runs = {r["arch"]: r for r in cli.results["runs"]}
    assert runs["arm64"]["status"] == "infra_error"
    assert "qemu-system-aarch64" in runs["arm64"]["message"]
    assert "no-such-tree" not in runs["arm64"]["message"]
    assert "qemu-system" not in runs["x86_64"]["message"]
    assert "no-such-tree" in runs["x86_64"]["message"]


# --- 2. QEMU failing at start-up -------------------------------------------------------


def test_qemu_start_up_failure_is_infra_error_with_qemu_message(tmp_path: Path) -> None:
    """The real QEMU, asked for an impossible memory size (as a run definition's
    boot.memory can): its stderr is kept apart from the guest console, the boot ends
    with qemu_error, and the analysis says infra_error with QEMU's own words."""
    from harness.analysis.analyze import analyze
    from harness.boot.console import ExitReason, run_console
    from harness.boot.qemu import BootSpec, qemu_command
    from harness.kernel.arch import get_arch

    arch = get_arch("x86_64")
    if shutil.which(arch.qemu_binary) is None:
        pytest.skip("no qemu-system-x86_64")
    kernel, initrd = tmp_path / "bzImage", tmp_path / "initramfs.cpio"
    kernel.write_bytes(b"\0" * 4096)
    initrd.write_bytes(b"\0" * 512)
    command = qemu_command(arch, BootSpec(kernel, initrd, [], memory="64T"), "tcg")
    console = tmp_path / "x86_64" / "console.log"
    outcome = run_console(command.argv, console, overall_timeout=60, inactivity_timeout=60)
    assert outcome.reason == ExitReason.QEMU_ERROR
    assert outcome.qemu_exit_status == 1
    assert console.read_text() == ""  # QEMU's complaint is not guest output
    stderr_log = console.parent / "console.qemu-stderr.log"
    assert "cannot set up guest memory" in stderr_log.read_text()
    found = analyze(
        outcome.lines,
        outcome.reason,
        [],
        qemu_stderr=outcome.qemu_stderr,
        qemu_exit=outcome.qemu_exit,
    )
    assert found.status.value == "infra_error"
    assert "cannot set up guest memory" in found.message
    assert "exit status 1" in found.message
