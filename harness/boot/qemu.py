"""QEMU command lines: a BootSpec and an accelerator in, an argv list out (no shell).

Also the host facts the accelerator decision (accel.py) reads: the QEMU version,
whether /dev/kvm opens, and the cache of earlier KVM probe verdicts.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.boot import numa
from harness.kernel.arch import Arch
from harness.record.status import Accel


@dataclass(frozen=True)
class BootSpec:
    kernel: Path
    initramfs: Path
    cmdline: list[str]
    memory: str = "1G"
    smp: int = 2
    icount: int | None = None  # -icount shift, TCG only
    numa_nodes: int | None = None  # None: one node (QEMU's default)


@dataclass(frozen=True)
class QemuCommand:
    argv: list[str]
    accel: Accel
    kernel_cmdline: str  # the -append value

    def __str__(self) -> str:
        return shlex.join(self.argv)


def qemu_command(arch: Arch, boot: BootSpec, accel: str) -> QemuCommand:
    machine = arch.qemu_machine_kvm if accel == Accel.KVM else arch.qemu_machine_tcg
    cmdline = " ".join([f"console={arch.console}", *boot.cmdline])
    argv = [
        arch.qemu_binary,
        *machine,
        "-m", boot.memory,
        "-smp", str(boot.smp),
        "-nographic",
        "-no-reboot",  # the guest's reboot (and a panic with panic=-1) ends QEMU
        "-nodefaults",
        "-serial", "stdio",
        "-kernel", str(boot.kernel),
        "-initrd", str(boot.initramfs),
        "-append", cmdline,
        *arch.qemu_extra,
    ]  # fmt: skip
    if boot.numa_nodes is not None:
        # One socket per CPU: QEMU's default puts every CPU in one socket, i.e. one LLC
        # across nodes, and x86 WARNs that an LLC sibling is on another node.
        argv[argv.index("-smp") + 1] = f"{boot.smp},sockets={boot.smp},cores=1,threads=1"
        argv += numa.qemu_args(numa.layout(boot.numa_nodes, boot.memory, boot.smp))
    if accel == Accel.TCG_ICOUNT:
        if boot.icount is None:
            raise ValueError("tcg-icount needs BootSpec.icount")
        # sleep=off: idle guests jump to the next timer instead of waiting
        argv += ["-icount", f"shift={boot.icount},sleep=off"]
    return QemuCommand(argv, Accel(accel), cmdline)


def qemu_version(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        return "missing"
    proc = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.splitlines()[0] if proc.stdout else "unknown"


def kvm_device_usable() -> tuple[bool, str]:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return False, f"/dev/kvm: {e.strerror}"
    os.close(fd)
    return True, "/dev/kvm opens"
