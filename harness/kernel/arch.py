"""Per-architecture facts, kept as data in one place.

Everything that differs between x86_64 and arm64 (make ARCH, cross compiler,
image path, QEMU binary and machine, console device, Kconfig needs) lives in
the ``ARCHES`` table below. The rest of the harness looks facts up here and
never branches on the architecture name.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field


class UnknownArchError(ValueError):
    pass


@dataclass(frozen=True)
class Arch:
    name: str  # the harness's name, also the result label
    make_arch: str  # ARCH= for kbuild
    cross_compile: str  # CROSS_COMPILE= prefix; "" when the host builds natively
    image: str  # boot image relative to the build directory
    image_target: str  # make target that produces it
    qemu_binary: str
    qemu_machine_tcg: list[str]  # -machine/-cpu for software emulation
    qemu_machine_kvm: list[str]  # -machine/-cpu when KVM was proven to work
    console: str  # kernel console device
    kconfig: dict[str, str]  # symbols the console/boot needs on this arch
    host_machines: tuple[str, ...]  # platform.machine() values that can run KVM guests
    user_cc: str  # C compiler for the static guest init
    # 1 MiB of a 1 GiB QEMU guest's RAM that every kernel booted there keeps off
    # (the lab machine's ramoops region): its address, and the arguments that
    # reserve it, on the lab's own command line and so on the kernel under test's.
    # QEMU's resets keep RAM, but reload kernel, initrd and firmware tables.
    qemu_reserved_ram: tuple[int, tuple[str, ...]] = (0, ())
    # extra arguments for a stock distribution kernel as a QEMU guest (the lab machine)
    qemu_guest_args: tuple[str, ...] = ()
    qemu_extra: list[str] = field(default_factory=list)
    # Symbols a NUMA guest (boot.numa) needs so the kernel reads QEMU's node layout.
    numa_kconfig: dict[str, str] = field(default_factory=dict)

    def cross_prefix_for_host(self) -> str:
        """Cross prefix, or "" when the host is this architecture."""
        return "" if platform.machine() in self.host_machines else self.cross_compile

    def user_cc_for_host(self) -> str:
        return "gcc" if platform.machine() in self.host_machines else self.user_cc

    def kvm_possible_on_host(self) -> bool:
        return platform.machine() in self.host_machines

    def make_vars(self) -> list[str]:
        """ARCH/CROSS_COMPILE arguments for make."""
        args = [f"ARCH={self.make_arch}"]
        prefix = self.cross_prefix_for_host()
        if prefix:
            args.append(f"CROSS_COMPILE={prefix}")
        return args


ARCHES: dict[str, Arch] = {
    "x86_64": Arch(
        name="x86_64",
        make_arch="x86_64",
        cross_compile="x86_64-linux-gnu-",
        image="arch/x86/boot/bzImage",
        image_target="bzImage",
        qemu_binary="qemu-system-x86_64",
        qemu_machine_tcg=["-machine", "pc,accel=tcg", "-cpu", "max"],
        qemu_machine_kvm=["-machine", "pc,accel=kvm", "-cpu", "host"],
        console="ttyS0",
        kconfig={
            "CONFIG_64BIT": "y",
            "CONFIG_SERIAL_8250": "y",
            "CONFIG_SERIAL_8250_CONSOLE": "y",
            # Without ACPI there is no HPET/PM-timer reference, TSC calibration
            # fails under TCG and the clock falls back to 4 ms jiffies: useless
            # for the latency figures of the stress and benchmark modules.
            "CONFIG_ACPI": "y",
        },
        host_machines=("x86_64", "amd64"),
        user_cc="x86_64-linux-gnu-gcc",
        # QEMU describes the nodes in the ACPI SRAT; x86 reads it only with
        # X86_64_ACPI_NUMA, which depends on PCI (tinyconfig has neither).
        numa_kconfig={"CONFIG_NUMA": "y", "CONFIG_PCI": "y", "CONFIG_X86_64_ACPI_NUMA": "y"},
        # memmap=$ marks it reserved in the e820 map (kexec's segments and KASLR
        # avoid it too). At 768 MiB, well below the top of RAM, where QEMU puts
        # the initrd again on every reset and SeaBIOS its tables.
        qemu_reserved_ram=(0x30000000, ("memmap=1M$0x30000000",)),
        # Under TCG on a loaded host the IO-APIC timer check can misfire ("MP-BIOS
        # bug: 8254 timer not connected to IO-APIC"); the lab's Debian kernel then
        # sat idle after starting init, with no timer interrupts (seen at load 20).
        qemu_guest_args=("no_timer_check",),
    ),
    "arm64": Arch(
        name="arm64",
        make_arch="arm64",
        cross_compile="aarch64-linux-gnu-",
        image="arch/arm64/boot/Image",
        image_target="Image",
        qemu_binary="qemu-system-aarch64",
        # pauth-impdef: the architected QARMA pointer-auth algorithm is very
        # slow to emulate; the impdef one boots several times faster.
        qemu_machine_tcg=["-machine", "virt,accel=tcg", "-cpu", "max,pauth-impdef=on"],
        qemu_machine_kvm=["-machine", "virt,accel=kvm", "-cpu", "host"],
        console="ttyAMA0",
        kconfig={
            "CONFIG_SERIAL_AMBA_PL011": "y",
            "CONFIG_SERIAL_AMBA_PL011_CONSOLE": "y",
        },
        host_machines=("aarch64", "arm64"),
        user_cc="aarch64-linux-gnu-gcc",
        # virt booted with -kernel describes the nodes in the device tree
        # (numa-node-id); NUMA selects OF_NUMA, no ACPI needed.
        numa_kconfig={"CONFIG_NUMA": "y", "CONFIG_OF_NUMA": "y"},
        # arm64 has no memmap=: mem= leaves the top 16 MiB of RAM (which starts
        # at 1 GiB on virt) out of every kernel's memory; QEMU loads kernel,
        # initrd and DTB at the bottom of RAM.
        qemu_reserved_ram=(0x7F000000, ("mem=1008M",)),
    ),
}

# Debian packages that provide each arch's tools on an x86_64 Debian host.
HOST_PACKAGES: dict[str, list[str]] = {
    "x86_64": ["qemu-system-x86", "gcc"],
    "arm64": ["qemu-system-arm", "gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"],
}


def get_arch(name: str) -> Arch:
    try:
        return ARCHES[name]
    except KeyError:
        known = ", ".join(sorted(ARCHES))
        raise UnknownArchError(f"unknown architecture {name!r}; known: {known}") from None
