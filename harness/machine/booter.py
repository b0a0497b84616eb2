"""The boot stage for real machines: a :class:`~harness.boot.stage.Booter` that kexecs the
kernel under test on a machine over SSH instead of starting QEMU.

It boots what QemuBooter would boot (the same kernel image, the same guest
initramfs built from the request's steps, the same command line plus the
arguments that make the kernel come back by itself) and returns the same
ConsoleResult, so analysis and records are the pipeline's own. Its BootInfo has
accel ``machine`` and a MachineInfo (name, host-key fingerprint, power cycles...).

Faults of the machine (unreachable, refused host key, dead power-cycle, console
command gone) are raised as MachineError/TransportError, HarnessErrors whose
status is infra_error (harness.errors.failure maps them). A hang is a console
that ended by inactivity (timeout) and a panic is in the console (crash): the
analysis decides those, as for QEMU.

One booter serves a whole run (``kbulk run`` or ``kbulk ab``): its session keeps
the machine's state, so a machine found unusable (two failed power cycles, a
wrong host key) is not tried again for the rest of the run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from harness.boot.console import ConsoleResult, ExitReason
from harness.boot.guest.initramfs import build_initramfs
from harness.boot.stage import BootRequest, guest_image_for
from harness.machine.inventory import Machine
from harness.machine.remote import ConsoleLost, Limits, MachineError, MachineSession, kernel_cmdline
from harness.progress import Reporter
from harness.record.run import BootInfo
from harness.record.status import Accel

__all__ = ["MachineBooter"]


class MachineBooter:
    """Boot on ``machine`` by kexec over SSH; implements the Booter protocol."""

    def __init__(
        self,
        machine: Machine,
        cache: Path,
        limits: Limits | None = None,
        info: Callable[[str], None] = lambda _msg: None,
    ) -> None:
        self.machine = machine
        self.cache = cache
        self.session = MachineSession(machine, limits, info=info)

    def boot(
        self,
        request: BootRequest,
        console_log: Path,
        reporter: Reporter,
        on_booted: Callable[[BootInfo], None] | None = None,
    ) -> tuple[BootInfo, ConsoleResult]:
        arch, machine, session = request.arch, self.machine, self.session
        session.info = reporter.info  # power cycles and recoveries are reported
        record = session.new_record()
        args = kernel_cmdline(arch.name, request.cmdline)
        info = BootInfo(
            accel=Accel.MACHINE,
            accel_reason=f"--machine {machine.name} ({machine.source or machine.host})",
            cmdline=" ".join(args),
            machine=record,
        )
        # The record is filled in as the boot goes: what reaches the run record
        # when this raises (or is interrupted) is how far the machine got.
        if on_booted is not None:
            on_booted(info)
        if machine.arch != arch.name:
            raise MachineError(
                f"machine {machine.name} is {machine.arch}, the kernel is {arch.name}"
            )
        # This boot's own guest image, beside its console log (as QemuBooter does).
        image = build_initramfs(
            arch, request.steps, guest_image_for(console_log), self.cache / "guest"
        )
        session.limits = dataclasses.replace(
            session.limits, overall=request.timeout, inactivity=request.inactivity_timeout
        )
        run_id = "-".join(
            [console_log.parent.parent.name, console_log.parent.name, console_log.stem]
        )
        with reporter.step(f"boot {arch.name} on {machine.name}") as step:
            step.outcome = "infra error"
            outcome = session.boot(
                request.image, image.initramfs, args, console_log, run_id, record, step.activity
            )
            step.outcome = outcome.reason.value
        # the own command line's ramoops region went on the test kernel's too
        info.cmdline = " ".join([*args, *record.from_own_cmdline])
        info.exit_reason = outcome.reason
        info.notes = list(outcome.notes)
        if outcome.reason is ExitReason.QEMU_ERROR:
            raise ConsoleLost(
                f"{machine.name}: the console command ended: " + "; ".join(outcome.notes)
            )
        return info, outcome
