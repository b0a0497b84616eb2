"""The run status taxonomy: statuses, their exit codes and severity, and the small enums
(crash kind, accelerator, console exit reason, A/B variant) that a run record carries."""

from __future__ import annotations

import enum
from collections.abc import Iterable

__all__ = [
    "CRASH_KINDS",
    "EXIT_CODES",
    "NON_FATAL_KINDS",
    "SEVERITY",
    "Accel",
    "CrashKind",
    "ExitReason",
    "RunStatus",
    "Variant",
    "exit_code",
    "worst",
]


class RunStatus(enum.StrEnum):
    """Outcome of one (arch, kernel) run, KernelCI-like."""

    PASS = "pass"  # all tests passed (skips ok)
    TEST_FAILURE = "fail"  # kernel ran, some test failed
    CRASH = "crash"  # kernel oops/panic/BUG/KASAN during the run
    TIMEOUT = "timeout"  # hang: overall or inactivity timeout
    BUILD_FAILURE = "build_failure"
    CONFIG_ERROR = "config_error"  # requested Kconfig symbols did not survive
    PATCH_FAILURE = "patch_failure"
    INFRA_ERROR = "infra_error"  # harness/host problem (missing tool, qemu failed to start)
    NO_TESTS = "no_tests"


# Distinct process exit codes; 2 is left to argparse usage errors. The one table:
# run, ab, parse and series-check all exit through it.
EXIT_CODES: dict[RunStatus, int] = {
    RunStatus.PASS: 0,
    RunStatus.TEST_FAILURE: 1,
    RunStatus.CRASH: 3,
    RunStatus.TIMEOUT: 4,
    RunStatus.BUILD_FAILURE: 5,
    RunStatus.CONFIG_ERROR: 6,
    RunStatus.PATCH_FAILURE: 7,
    RunStatus.INFRA_ERROR: 8,
    RunStatus.NO_TESTS: 9,
}
EXIT_USAGE = 2  # argparse's own code, also used for bad option values

# Least to most severe. A definite finding about the kernel outranks "unknown"
# (INFRA_ERROR), and a failure at an earlier stage outranks a later one because it
# prevented everything after it (patch < build < config < boot/crash < hang < tests).
SEVERITY: tuple[RunStatus, ...] = (
    RunStatus.PASS,
    RunStatus.NO_TESTS,
    RunStatus.INFRA_ERROR,
    RunStatus.TEST_FAILURE,
    RunStatus.TIMEOUT,
    RunStatus.CRASH,
    RunStatus.CONFIG_ERROR,
    RunStatus.BUILD_FAILURE,
    RunStatus.PATCH_FAILURE,
)


def worst(statuses: Iterable[RunStatus]) -> RunStatus:
    """Most severe status (see SEVERITY); NO_TESTS when nothing ran at all."""
    rank = {status: i for i, status in enumerate(SEVERITY)}
    return max((RunStatus(s) for s in statuses), key=rank.__getitem__, default=RunStatus.NO_TESTS)


def exit_code(statuses: Iterable[RunStatus]) -> int:
    """Process exit code for a set of statuses."""
    return EXIT_CODES[worst(statuses)]


class CrashKind(enum.StrEnum):
    """Kinds of kernel report the crash finder knows, most severe first (crash.py's order)."""

    PANIC = "panic"
    KASAN = "kasan"
    KFENCE = "kfence"
    SOFT_LOCKUP = "soft_lockup"
    HARD_LOCKUP = "hard_lockup"
    HUNG_TASK = "hung_task"
    RCU_STALL = "rcu_stall"
    BUG = "bug"
    OOPS = "oops"
    UBSAN = "ubsan"
    WARNING = "warning"


CRASH_KINDS: tuple[str, ...] = tuple(CrashKind)
# Reports after which the kernel keeps running normally; alone they do not make
# a run CRASH (they are still listed in ArchRun.crashes and in JUnit output).
NON_FATAL_KINDS = frozenset({CrashKind.WARNING, CrashKind.UBSAN})


class Accel(enum.StrEnum):
    """How the kernel ran: under QEMU (kvm, tcg, tcg-icount) or on a real machine."""

    KVM = "kvm"
    TCG = "tcg"
    # TCG with -icount: deterministic virtual time counted in instructions
    TCG_ICOUNT = "tcg-icount"
    MACHINE = "machine"  # kexec'd on a real machine over SSH (BootInfo.machine says which)


class ExitReason(enum.StrEnum):
    """Why the console session ended."""

    COMPLETED = "completed"  # init ran its plan and rebooted
    GUEST_EXIT = "guest_exit"  # QEMU ended without init finishing (panic, reboot)
    TIMEOUT = "timeout"  # overall deadline passed
    INACTIVITY = "inactivity"  # the guest printed nothing for too long
    QEMU_ERROR = "qemu_error"  # QEMU failed to start or exited with an error
    HALTED = "halted"  # the guest panicked and stopped, QEMU did not exit: the harness killed it
    MARKER = "marker"  # the caller's stop pattern was seen (probe boots)
    UNWATCHED = "unwatched"  # a machine without a console came back by itself


class Variant(enum.StrEnum):
    """The side of an A/B run a kernel is on."""

    BASELINE = "baseline"
    PATCHED = "patched"
