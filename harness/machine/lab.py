"""A QEMU guest that acts as a lab machine, for the harness's own tests.

Debian's stock kernel boots the lab initramfs (dropbear, kexec); ssh is
forwarded from a loopback port, the serial console goes to a file (read by
the inventory's console command, ``tail -F``) and the QEMU monitor's
system_reset is the power-cycle command. QEMU runs without -no-reboot and
with -kernel set to the stock kernel, so any reboot -- the kernel under test
rebooting when it is done, or panicking -- comes back to the stock kernel.
Both kernels keep 1 MiB of RAM off for ramoops (QEMU keeps RAM over a reset),
so a panic of the kernel under test is in the stock kernel's /sys/fs/pstore.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.kernel.arch import get_arch
from harness.machine.inventory import Machine
from harness.machine.labimage import LabImage

_PR_SET_PDEATHSIG = 1
RAMOOPS_SIZE = 1 << 20
RAMOOPS_RECORD = 128 << 10  # a kmsg dump of the whole boot log up to the panic


def _die_with_parent() -> None:  # between fork and exec
    with contextlib.suppress(OSError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass
class LabMachine:
    image: LabImage
    workdir: Path
    port: int
    name: str = ""
    memory: str = "1G"
    smp: int = 2
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.name = self.name or f"lab-{self.image.arch}"

    @property
    def console_log(self) -> Path:
        return self.workdir / "serial.log"

    @property
    def monitor_socket(self) -> Path:
        return self.workdir / "monitor.sock"

    def qemu_argv(self) -> list[str]:
        arch = get_arch(self.image.arch)
        return [
            arch.qemu_binary,
            *arch.qemu_machine_tcg,
            "-m", self.memory,
            "-smp", str(self.smp),
            "-display", "none",
            "-nodefaults",
            "-serial", f"file:{self.console_log}",
            "-monitor", f"unix:{self.monitor_socket},server,nowait",
            "-kernel", str(self.image.kernel),
            "-initrd", str(self.image.initramfs),
            "-append", " ".join(
                [f"console={arch.console}", *arch.qemu_guest_args, *self.ramoops_args()]
            ),
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{self.port}-:22",
            "-device", "virtio-net-pci,netdev=n0,romfile=",
            *arch.qemu_extra,
        ]  # fmt: skip

    def ramoops_args(self) -> list[str]:
        """The lab's own command line reserves a ramoops region (the harness copies
        these arguments to the kernel under test's); its init loads ramoops with them."""
        address, reserve = get_arch(self.image.arch).qemu_reserved_ram
        if self.memory != "1G" or not reserve:
            raise ValueError(f"the lab's ramoops region is laid out for 1G, not {self.memory}")
        return [
            *reserve,
            f"ramoops.mem_address={address:#x}",
            f"ramoops.mem_size={RAMOOPS_SIZE:#x}",
            f"ramoops.record_size={RAMOOPS_RECORD:#x}",
            "ramoops.ecc=1",
        ]

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.console_log.touch()
        self.process = subprocess.Popen(
            self.qemu_argv(),
            stdin=subprocess.DEVNULL,
            stdout=(self.workdir / "qemu.out").open("wb"),
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 10
        while not self.monitor_socket.exists():
            if self.process.poll() is not None:
                out = (self.workdir / "qemu.out").read_text(errors="replace")
                raise RuntimeError(f"lab QEMU exited {self.process.returncode}: {out}")
            if time.monotonic() > deadline:
                raise RuntimeError("lab QEMU did not open its monitor socket")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> LabMachine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def labctl(self, action: str) -> list[str]:
        return [sys.executable, "-m", "harness.machine.labctl", action, str(self.monitor_socket)]

    def machine(self) -> Machine:
        return Machine(
            name=self.name,
            arch=self.image.arch,
            host="127.0.0.1",
            port=self.port,
            user="root",
            key_file=self.image.client_key.private_path,
            host_key=" ".join(self.image.host_key.public_line.split()[:2]),
            console=("tail", "-n", "0", "-F", str(self.console_log)),
            power_cycle=tuple(self.labctl("reset")),
            power_off=tuple(self.labctl("off")),
        )

    def write_inventory(self, path: Path) -> Path:
        m = self.machine()
        entry = {
            "name": m.name,
            "arch": m.arch,
            "host": m.host,
            "port": m.port,
            "user": m.user,
            "key_file": str(m.key_file),
            "host_key": m.host_key,
            "boot": m.boot.value,
            "console": list(m.console),
            "power_cycle": list(m.power_cycle),
            "power_off": list(m.power_off),
        }
        path.write_text(yaml.safe_dump({"machines": [entry]}, sort_keys=False))
        return path
