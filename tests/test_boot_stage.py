"""QemuBooter at its boundaries (initramfs, accelerator choice, console stubbed): what
reaches the BootInfo record, including the console driver's notes."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.boot import stage
from harness.boot.accel import Verdict
from harness.boot.console import ConsoleResult
from harness.boot.guest.initramfs import GuestImage
from harness.boot.stage import BootRequest, QemuBooter
from harness.kernel.arch import ARCHES
from harness.progress import Reporter
from harness.record.run import BootInfo
from harness.record.status import Accel, ExitReason


def test_boot_info_records_argv_cmdline_and_the_consoles_notes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def console(argv: list[str], log: Path, **kwargs: object) -> ConsoleResult:
        seen.append("console")
        return ConsoleResult(ExitReason.COMPLETED, ["done"], 1.5, 0, True, 0.1,
                             ["QEMU did not exit after the guest finished"])  # fmt: skip

    image = GuestImage(tmp_path / "i.cpio", tmp_path / "init", [])
    monkeypatch.setattr(stage, "build_initramfs", lambda *a: image)
    monkeypatch.setattr(stage.accel_mod, "choose", lambda *a, **k: Verdict(Accel.TCG, "asked"))
    monkeypatch.setattr(stage, "run_console", console)
    request = BootRequest(ARCHES["arm64"], tmp_path / "Image", tmp_path, cmdline=["panic=-1"],
                          memory="512M", smp=1)  # fmt: skip

    def booted(info: BootInfo) -> None:
        seen.append("booted")
        assert info.exit_reason is None  # told before the console runs

    info, outcome = QemuBooter("auto", tmp_path).boot(
        request, tmp_path / "c.log", Reporter(quiet=True), booted
    )
    assert seen == ["booted", "console"]
    assert (info.accel, info.accel_reason, info.memory, info.smp) == (Accel.TCG, "asked", "512M", 1)
    assert info.cmdline == "console=ttyAMA0 panic=-1"
    assert info.qemu_argv[0] == "qemu-system-aarch64"
    assert info.qemu_argv[info.qemu_argv.index("-append") + 1] == info.cmdline
    assert (info.exit_reason, info.qemu_exit_status) == (ExitReason.COMPLETED, 0)
    assert info.notes == ["QEMU did not exit after the guest finished"]
    assert outcome.lines == ["done"]
