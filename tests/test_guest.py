import shutil
import subprocess
from pathlib import Path

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


def test_cpio_is_deterministic() -> None:
    entries = [cpio.regular("a", b"1"), cpio.regular("b", b"22")]
    assert cpio.build_cpio(entries) == cpio.build_cpio(entries)


def test_plan_rendering(tmp_path: Path) -> None:
    ko = tmp_path / "kbulk-stress.ko"
    step = ModuleStep(ko, ["threads=2", "duration_ms=10"])
    assert step.name == "kbulk_stress"
    assert "insmod /kbulk/modules/kbulk-stress.ko threads=2 duration_ms=10" in render_plan([step])
    with pytest.raises(GuestBuildError, match="whitespace"):
        render_plan([ModuleStep(ko, ["a b"])])


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
