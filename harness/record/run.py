"""The typed run record: one ArchRun per boot, assembled from the stages' own records
(BuildInfo from the build, BootInfo from the boot, the analysis of the console, the
A/B slot), so every fact has a field and nothing is parsed back out of a string."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.analysis.ktap import KtapDocument, Metric, TestStatus
from harness.record.status import (
    NON_FATAL_KINDS,
    Accel,
    CrashKind,
    ExitReason,
    RunStatus,
    Variant,
)

__all__ = [
    "AbSlot",
    "ArchRun",
    "BootInfo",
    "BuildInfo",
    "CrashReport",
    "MachineInfo",
    "status_from_tests",
]


@dataclass
class CrashReport:
    """One kernel crash found in a console log."""

    kind: CrashKind
    title: str  # the matching console line, e.g. "BUG: kernel NULL pointer dereference, ..."
    test: str | None  # dotted path (suite.case) of the KTAP test running then, if known
    line: int  # 1-based console line
    excerpt: list[str]  # console lines of the report ("cut here"/title .. end marker)
    decoded: list[str] | None = None  # decode_stacktrace.sh output if available
    # None: line and excerpt are the console log's; else the file they come from
    # (a machine's pstore record, relative to the console log's directory)
    source: str | None = None

    @property
    def location(self) -> str:
        """Where the report is: "console line 191", or the pstore record's line."""
        return f"{self.source or 'console'} line {self.line}"


@dataclass
class BuildInfo:
    """What the build stage made, and how to make it again."""

    dir: str
    log: str
    warnings: int = 0
    errors: int = 0
    config_digest: str | None = None  # sha256 of the config request (ConfigRequest.digest)
    image: str | None = None  # the bootable image, when the build succeeded
    image_sha256: str | None = None
    make_argv: list[str] = field(default_factory=list)  # the kernel build, targets included

    @property
    def reproducer(self) -> str:
        return shlex.join(self.make_argv) if self.make_argv else ""


@dataclass
class MachineInfo:
    """A boot on a real machine (kexec over SSH): which machine and what happened to it.

    Never a key, password or command output: the host key only as its fingerprint.
    """

    name: str
    host_key_fingerprint: str  # SHA256:... of the pinned host key
    boot_method: str = "kexec"
    own_kernel: str | None = None  # the release the machine runs when not under test
    mem_available_kb: int | None = None
    lockdown: str | None = None
    uploads: dict[str, str] = field(default_factory=dict)  # kernel/initramfs -> sha256
    upload_seconds: float | None = None
    power_cycles: int = 0  # during this boot
    returned_to: str | None = None  # the release it came back on after the test kernel
    interrupted: str | None = None  # what happened to the machine when kbulk was interrupted
    unusable: str | None = None  # why the machine is not used for the rest of the run
    # pstore: "ramoops" when the own kernel has a ramoops region and the pstore
    # filesystem, else why there is no panic evidence beyond the console
    pstore: str | None = None
    from_own_cmdline: list[str] = field(default_factory=list)  # copied to the test kernel's
    pstore_files: list[str] = field(default_factory=list)  # stored, relative to the console log
    one_shot: str | None = None  # one-shot boot entry: what was set and how it was checked


@dataclass
class BootInfo:
    """How the kernel was booted and how the boot ended."""

    accel: Accel | None  # None: not booted under QEMU (or not recorded)
    accel_reason: str = ""
    qemu_argv: list[str] = field(default_factory=list)
    memory: str | None = None  # QEMU -m, e.g. "1G"
    smp: int | None = None
    cmdline: str | None = None  # the kernel command line exactly as passed (-append)
    icount: int | None = None  # -icount shift, TCG only
    numa_nodes: int | None = None  # NUMA nodes QEMU was given (None: one, QEMU's default)
    exit_reason: ExitReason | None = None
    qemu_exit_status: int | None = None
    notes: list[str] = field(default_factory=list)  # the console driver's remarks
    machine: MachineInfo | None = None  # booted on a real machine (accel "machine")
    qemu_stderr: list[str] = field(default_factory=list)  # QEMU's own messages (first lines)

    @property
    def reproducer(self) -> str:
        return shlex.join(self.qemu_argv) if self.qemu_argv else ""


@dataclass(frozen=True)
class AbSlot:
    """Where a boot sits in an A/B run."""

    variant: Variant
    repetition: int


@dataclass
class ArchRun:
    """One boot of one kernel on one architecture."""

    arch: str
    kernel: str  # label, e.g. "v7.2.13+series-1fc5a8998240"
    status: RunStatus
    series: str | None = None  # label of the applied series (None: the unpatched kernel)
    ktap: KtapDocument | None = None
    crashes: list[CrashReport] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    console_log: str | None = None  # path relative to the run directory
    durations: dict[str, float] = field(default_factory=dict)  # build/boot/test seconds
    message: str = ""  # human explanation, e.g. first build error
    build: BuildInfo | None = None
    boot: BootInfo | None = None
    ab: AbSlot | None = None
    module_steps: dict[str, int | None] = field(default_factory=dict)  # name -> rc (None: no end)

    @property
    def accelerator(self) -> Accel | None:
        return self.boot.accel if self.boot is not None else None

    @property
    def patched(self) -> bool:
        """The patched side: the A/B slot says so, else a series was applied."""
        if self.ab is not None:
            return self.ab.variant is Variant.PATCHED
        return self.series is not None

    @property
    def repetition(self) -> int | None:
        return self.ab.repetition if self.ab is not None else None


def status_from_tests(doc: KtapDocument | None, crashes: Sequence[CrashReport] = ()) -> RunStatus:
    """RunStatus of a kernel that booted and ran to the end (timeouts are the caller's).

    Crash reports count unless their kind is in NON_FATAL_KINDS; a document that
    ended with tests still open (``complete`` False) means the kernel died.
    """
    if any(c.kind not in NON_FATAL_KINDS for c in crashes):
        return RunStatus.CRASH
    if doc is None:
        return RunStatus.NO_TESTS
    if doc.status is TestStatus.CRASH or not doc.complete:
        return RunStatus.CRASH
    if doc.status is TestStatus.FAIL:
        return RunStatus.TEST_FAILURE
    if doc.status is TestStatus.NO_TESTS:
        return RunStatus.NO_TESTS
    return RunStatus.PASS
