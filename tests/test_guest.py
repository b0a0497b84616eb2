import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.boot.guest import cpio
from harness.boot.guest.initramfs import GuestBuildError, ModuleStep, build_initramfs, render_plan
from harness.kernel.arch import ARCHES


def test_cpio_is_readable_by_cpio_tool(tmp_path: Path) -> None:
    if shutil.which("cpio") is None:
        pytest.skip("cpio(1) not installed")
    archive = tmp_path / "a.cpio"
    cpio.write_cpio(
        archive,
        [cpio.directory("dev"), cpio.char_device("dev/console", 5, 1), cpio.regular("x", b"abc")],
    )
    listing = subprocess.run(
        ["cpio", "-itv"], input=archive.read_bytes(), capture_output=True, check=True
    ).stdout.decode()
    assert "dev/console" in listing and "5,   1" in listing
    assert len(archive.read_bytes()) % 512 == 0


ENTRIES_CODE = """
from harness.boot.guest import cpio
ENTRIES = [cpio.directory("dev"), cpio.char_device("dev/console", 5, 1),
           cpio.regular("init", b"#!/bin/sh\\n", 0o755), cpio.regular("b", b"22")]
"""
# sha256 of the archive above; it changes only if the format writer changes, which
# must then be a deliberate change (cached initramfs images would differ).
GOLDEN_SHA256 = "fd3b36e9bc6035476f12fa909b178da1932884a572bc0a3bd2ebdd1ff5bcde66"


def test_cpio_matches_its_golden_digest() -> None:
    scope: dict[str, Any] = {}
    exec(ENTRIES_CODE, scope)
    assert hashlib.sha256(cpio.build_cpio(scope["ENTRIES"])).hexdigest() == GOLDEN_SHA256


def test_cpio_does_not_depend_on_the_process(tmp_path: Path) -> None:
    """Another interpreter, hash seed, umask, time zone and clock give the same bytes."""
    code = ENTRIES_CODE + "import sys; sys.stdout.buffer.write(cpio.build_cpio(ENTRIES))"
    env = {**os.environ, "PYTHONHASHSEED": "12345", "TZ": "Pacific/Kiritimati"}
    out = subprocess.run(
        ["sh", "-c", 'umask 077; exec "$0" -c "$1"', sys.executable, code],
        capture_output=True, check=True, env=env, cwd=tmp_path,
    ).stdout  # fmt: skip
    assert hashlib.sha256(out).hexdigest() == GOLDEN_SHA256


def test_plan_rendering(tmp_path: Path) -> None:
    ko = tmp_path / "kbulk-stress.ko"
    step = ModuleStep(ko, ["threads=2", "duration_ms=10"])
    assert step.name == "kbulk_stress"
    assert "insmod /kbulk/modules/kbulk-stress.ko threads=2 duration_ms=10" in render_plan([step])
    with pytest.raises(GuestBuildError, match="whitespace"):
        render_plan([ModuleStep(ko, ["a b"])])


def test_plan_memcg_line_precedes_only_its_step(tmp_path: Path) -> None:
    ko = tmp_path / "kbulk_memcg.ko"
    plan = render_plan([ModuleStep(ko, ["order=0"], memcg_max=64 << 20), ModuleStep(ko)])
    lines = plan.splitlines()[1:]
    assert lines == [
        "memcg 67108864",
        "insmod /kbulk/modules/kbulk_memcg.ko order=0",
        "insmod /kbulk/modules/kbulk_memcg.ko",
    ]


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_initramfs_has_static_init_for_arch(arch: str, tmp_path: Path) -> None:
    a = ARCHES[arch]
    if shutil.which(a.user_cc_for_host()) is None:
        pytest.skip(f"{a.user_cc_for_host()} not installed")
    image = build_initramfs(a, [], tmp_path / "i.cpio", tmp_path / "cache")
    info = subprocess.run(["file", str(image.init_binary)], capture_output=True, text=True).stdout
    assert "statically linked" in info
    assert ("x86-64" if arch == "x86_64" else "aarch64") in info
    assert image.initramfs.stat().st_size > 100_000
