"""The boot stage's seam: a :class:`Booter` turns a built kernel and its test plan into a
console (ConsoleResult) plus a BootInfo record; :class:`QemuBooter` is the QEMU one.

The pipeline only ever calls ``Booter.boot``; a booter for real machines (over SSH,
say) implements the same protocol and is picked in ``pipeline.choose_booter``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from harness import doctor
from harness.boot import accel as accel_mod
from harness.boot.console import ConsoleResult, run_console
from harness.boot.guest.initramfs import ModuleStep, build_initramfs
from harness.boot.qemu import BootSpec, qemu_command
from harness.kernel.arch import HOST_PACKAGES, Arch
from harness.progress import Reporter
from harness.record.run import BootInfo

__all__ = ["BootRequest", "Booter", "HostChecked", "QemuBooter"]


@dataclass(frozen=True)
class BootRequest:
    """What to boot and how long to wait for it."""

    arch: Arch
    image: Path  # the kernel image
    build_dir: Path  # where the kernel was built (read only here: guest images are per boot)
    steps: list[ModuleStep] = field(default_factory=list)  # test modules, in order
    cmdline: list[str] = field(default_factory=list)  # without the console= the arch adds
    memory: str = "1G"
    smp: int = 2
    icount: int | None = None
    numa_nodes: int | None = None
    timeout: float = 1200.0
    inactivity_timeout: float = 300.0


class Booter(Protocol):
    """Boots a kernel, drives its console to the end and says how it went."""

    def boot(
        self,
        request: BootRequest,
        console_log: Path,
        reporter: Reporter,
        on_booted: Callable[[BootInfo], None] | None = None,
    ) -> tuple[BootInfo, ConsoleResult]:
        """Boot; ``on_booted`` gets the BootInfo as soon as the boot starts (so an
        interrupted run still records how it was booted)."""
        ...


def guest_image_for(console_log: Path) -> Path:
    """This boot's initramfs: console.log -> console.initramfs.cpio, in the result directory."""
    return console_log.with_name(console_log.name.removesuffix(".log") + ".initramfs.cpio")


@runtime_checkable
class HostChecked(Protocol):
    """A booter that can say, before anything is built, that this host cannot boot ``arch``
    (optional beside Booter: the pipeline asks only booters that have it)."""

    def host_problem(self, arch: Arch) -> str | None:
        """Why ``arch`` cannot be booted here (with how to fix it), or None."""
        ...


@dataclass(frozen=True)
class QemuBooter:
    """Boot under QEMU with the guest initramfs; KVM only when a probe proved it works."""

    accel: str  # "auto" | "kvm" | "tcg", as requested
    cache: Path

    def host_problem(self, arch: Arch) -> str | None:
        """QEMU for ``arch`` must be on PATH (checked before the source is fetched)."""
        if shutil.which(arch.qemu_binary) is not None:
            return None
        package = HOST_PACKAGES[arch.name][0]
        line = doctor.install_line([doctor.Check(arch.qemu_binary, False, package)])
        return f"{arch.qemu_binary} is not on PATH, so {arch.name} cannot boot; install it: {line}"

    def boot(
        self,
        request: BootRequest,
        console_log: Path,
        reporter: Reporter,
        on_booted: Callable[[BootInfo], None] | None = None,
    ) -> tuple[BootInfo, ConsoleResult]:
        arch = request.arch
        # The guest image is this boot's own, beside its console log in the result
        # directory: runs sharing a build directory never share a mutable file.
        image = build_initramfs(
            arch, request.steps, guest_image_for(console_log), self.cache / "guest"
        )
        spec = BootSpec(
            kernel=request.image,
            initramfs=image.initramfs,
            cmdline=request.cmdline,
            memory=request.memory,
            smp=request.smp,
            icount=request.icount,
            numa_nodes=request.numa_nodes,
        )
        verdict = accel_mod.choose(
            arch, self.accel, request.image, self.cache, reporter, icount=spec.icount
        )
        command = qemu_command(arch, spec, verdict.accel)
        info = BootInfo(
            accel=verdict.accel,
            accel_reason=verdict.reason,
            qemu_argv=list(command.argv),
            memory=spec.memory,
            smp=spec.smp,
            cmdline=command.kernel_cmdline,
            icount=spec.icount,
            numa_nodes=spec.numa_nodes,
        )
        if on_booted is not None:
            on_booted(info)
        with reporter.step(f"boot {arch.name} ({verdict.accel})") as step:
            outcome = run_console(
                command.argv,
                console_log,
                overall_timeout=request.timeout,
                inactivity_timeout=request.inactivity_timeout,
                on_line=step.activity,
            )
            step.outcome = outcome.reason.value
        info.exit_reason = outcome.reason
        info.qemu_exit_status = outcome.qemu_exit_status
        info.notes = list(outcome.notes)
        info.qemu_stderr = list(outcome.qemu_stderr)
        return info, outcome
