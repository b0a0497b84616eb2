"""Boot a kernel under test on a real machine with kexec, and get the machine back.

One boot:
 1. wait until the machine answers (banner + login + a command), power-cycling
    it at most twice; if it still does not answer it is unusable for the run;
 2. check its health on its own kernel (uname, free memory, kexec, lockdown,
    pstore) and note pstore's entries;
 3. upload the kernel and initramfs into <workdir>/<run id> (sha256-checked);
 4. ``kexec -l`` them with a command line that makes the kernel under test
    return by itself (init reboots when done; a panic, oops, soft lockup or
    hung task reboots) and places the ramoops region as the own kernel does,
    start the console command, then ``kexec -e``;
 5. read the console until init's done marker, a panic, silence or the
    deadline; a silent (hung) machine is power-cycled. Without a console
    command, wait for the own kernel to answer from a new boot instead;
 6. wait until it answers again on its own kernel, remove the run directory,
    and read back, store and remove the pstore entries this boot left.

The machine's boot configuration is never changed; the only thing written on
it is the run directory (and pstore's entries of our boots are removed).
Interrupting kbulk power-cycles the machine if the kernel under test is
running and says whether it came back.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.analysis.crash import Evidence
from harness.boot.console import ConsoleResult, ExitReason
from harness.errors import HarnessError
from harness.kernel.arch import get_arch
from harness.machine import oneshot, pstore
from harness.machine.console import ConsoleCapture
from harness.machine.inventory import BootMethod, Machine
from harness.machine.transport import (
    Connection,
    HostKeyRefused,
    TransportError,
    connect_when_ready,
    host_key_fingerprint,
)
from harness.record.run import MachineInfo
from harness.record.status import RunStatus

# Appended to the kernel under test's command line: it must come back by itself.
RETURN_ARGS = ["oops=panic", "softlockup_panic=1", "hung_task_panic=1"]
DEFAULT_PANIC = "panic=10"
MIN_FREE_KB = 256 * 1024
MAX_POWER_CYCLES = 2
BOOT_ID = "/proc/sys/kernel/random/boot_id"  # differs on every boot


class MachineError(HarnessError):
    """The machine could not be used for this boot: infra_error (the class status).

    A hang of the kernel under test is no MachineError (its console ends by
    inactivity: timeout), nor is a panic (the analysis finds it: crash)."""

    status = RunStatus.INFRA_ERROR


class MachineUnusable(MachineError):
    """Unreachable after two power cycles, or a refused host key: not used again this run."""


class ConsoleLost(MachineError):
    """The console command ended while the kernel under test ran."""


@dataclass
class Limits:
    ready: float = 180.0  # seconds for ssh to answer after a (re)boot
    overall: float = 1200.0  # kernel under test: whole boot
    inactivity: float = 300.0  # kernel under test: silent console = hung
    command: float = 60.0
    upload: float = 300.0
    power: float = 60.0  # a power-cycle command


@dataclass
class Health:
    release: str
    mem_available_kb: int
    lockdown: str
    pstore: str = "not checked"
    region_args: list[str] = field(default_factory=list)  # the own cmdline's ramoops region


def kernel_cmdline(arch: str, cmdline: list[str]) -> list[str]:
    args = [f"console={get_arch(arch).console}", *cmdline, *RETURN_ARGS]
    if not any(a.startswith("panic=") for a in args):
        args.append(DEFAULT_PANIC)
    return args


def _lockdown_mode(text: str) -> str:
    m = re.search(r"\[(\w+)\]", text)
    return m.group(1) if m else "unknown"


class MachineSession:
    """A machine used for the boots of one kbulk run."""

    def __init__(
        self,
        machine: Machine,
        limits: Limits | None = None,
        info: Callable[[str], None] = lambda _msg: None,
    ) -> None:
        self.machine = machine
        self.limits = limits or Limits()
        self.info = info
        self.unusable: str | None = None
        self.health: Health | None = None
        self.fingerprint = host_key_fingerprint(machine)

    def new_record(self) -> MachineInfo:
        """The machine's part of a boot's record, filled in as the boot goes."""
        return MachineInfo(
            name=self.machine.name,
            host_key_fingerprint=self.fingerprint,
            boot_method=self.machine.boot.value,
            unusable=self.unusable,
        )

    # -- power and readiness ------------------------------------------------

    def power_cycle(self) -> str | None:
        """Run the power-cycle command; None when it worked, else why not."""
        argv = list(self.machine.power_cycle)
        if not argv:
            return "the inventory has no power_cycle command"
        self.info(f"{self.machine.name}: power-cycling ({shlex.join(argv)})")
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=self.limits.power,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"power-cycle command {shlex.join(argv)} failed: {e}"
        if proc.returncode != 0:
            return (
                f"power-cycle command {shlex.join(argv)} exited {proc.returncode}: "
                f"{proc.stderr.strip()[-300:]}"
            )
        return None

    def reach(self, record: MachineInfo, own_kernel: bool = True) -> Connection:
        """Connect, power-cycling at most twice; mark the machine unusable if that fails."""
        if self.unusable:
            record.unusable = self.unusable
            raise MachineUnusable(f"{self.machine.name} is unusable for this run: {self.unusable}")
        problems = []
        cycles = 0
        while True:
            try:
                conn = connect_when_ready(self.machine, self.limits.ready, ["uname", "-r"])
                if own_kernel and self.health is not None:
                    release = conn.check(["uname", "-r"], self.limits.command).strip()
                    if release != self.health.release:
                        conn.close()
                        raise TransportError(
                            f"running {release}, not its own kernel {self.health.release}"
                        )
                return conn
            except HostKeyRefused as e:
                self.unusable = record.unusable = str(e)
                raise MachineUnusable(str(e)) from None
            except TransportError as e:
                problems.append(str(e))
            if cycles >= MAX_POWER_CYCLES:
                break
            cycles += 1
            record.power_cycles += 1
            failed = self.power_cycle()
            if failed:
                problems.append(failed)
        self.unusable = record.unusable = f"unreachable after {cycles} power cycles: {problems[-1]}"
        raise MachineUnusable(f"{self.machine.name}: {self.unusable}")

    def check_health(self, conn: Connection) -> Health:
        release = conn.check(["uname", "-r"], self.limits.command).strip()
        meminfo = conn.check(["cat", "/proc/meminfo"], self.limits.command)
        m = re.search(r"^MemAvailable:\s+(\d+)", meminfo, re.MULTILINE)
        available = int(m.group(1)) if m else 0
        if available < MIN_FREE_KB:
            raise MachineError(f"{self.machine.name}: only {available} kB available memory")
        kexec = self.machine.boot is BootMethod.KEXEC  # a one-shot entry needs no kexec
        if kexec and not conn.run(["kexec", "--version"], self.limits.command).ok:
            raise MachineError(f"{self.machine.name}: no usable kexec (kexec-tools) on the machine")
        if (
            kexec
            and not conn.run(["test", "-e", "/sys/kernel/kexec_loaded"], self.limits.command).ok
        ):
            raise MachineError(f"{self.machine.name}: its kernel {release} has no kexec support")
        lock = conn.run(["cat", "/sys/kernel/security/lockdown"], self.limits.command)
        lockdown = _lockdown_mode(lock.stdout) if lock.ok else "unknown"
        if kexec and lockdown in ("integrity", "confidentiality"):
            raise MachineError(
                f"{self.machine.name}: kernel lockdown is {lockdown}: kexec of an unsigned "
                f"kernel is refused (Secure Boot?)"
            )
        cmdline = conn.check(["cat", "/proc/cmdline"], self.limits.command)
        region = pstore.region_args(cmdline)
        if self._pstore_entries(conn) is None:
            state = f"no pstore filesystem mounted at {pstore.PSTORE_DIR}"
        elif pstore.has_ramoops_region(region):
            state = "ramoops"
        elif conn.run(["test", "-d", "/sys/module/ramoops"], self.limits.command).ok:
            state = "ramoops, not set on the command line (found only if the device tree has it)"
        else:
            state = "no ramoops region on the command line (ramoops.mem_address/mem_size)"
        return Health(release, available, lockdown, state, region)

    # -- one boot -------------------------------------------------------------

    def boot(
        self,
        kernel: Path,
        initramfs: Path,
        args: list[str],
        console_log: Path,
        run_id: str,
        record: MachineInfo,
        on_line: Callable[[str], None] | None = None,
    ) -> ConsoleResult:
        """Boot ``kernel`` with the full command line ``args`` (see kernel_cmdline),
        plus what the own command line says about the pstore region
        (``record.from_own_cmdline``).

        Returns the console when the machine is back on its own kernel, with the
        pstore records of this boot as evidence (stored beside the console log);
        raises a MachineError or TransportError (infra_error) when the boot says
        nothing about the kernel under test. ``record`` is filled in as the boot
        goes, so it is complete also when this raises or is interrupted.
        """
        machine = self.machine
        console_log.parent.mkdir(parents=True, exist_ok=True)
        console_log.write_text("")
        one_shot = machine.boot is BootMethod.ONE_SHOT
        rundir = oneshot.BOOT_DIR if one_shot else f"{machine.workdir}/{run_id}"
        grub: tuple[oneshot.GrubFacts, dict[str, str]] | None = None
        conn = self.reach(record, own_kernel=self.health is not None)
        with conn:
            self.health = self.health or self.check_health(conn)
            health = self.health
            record.own_kernel = health.release
            record.mem_available_kb = health.mem_available_kb
            record.lockdown = health.lockdown
            record.pstore = health.pstore
            record.from_own_cmdline = [a for a in health.region_args if a not in args]
            full_args = [*args, *record.from_own_cmdline]
            before = self._pstore_entries(conn)
            boot_id = conn.check(["cat", BOOT_ID], self.limits.command).strip()
            facts = self._grub_facts(conn) if one_shot else None
            if facts is not None:
                refused = oneshot.refusal(facts)
                if refused:
                    raise MachineError(f"{machine.name}: one-shot boot refused: {refused}")
            conn.check(["mkdir", "-p", rundir], self.limits.command)
            remote_kernel, remote_initrd = f"{rundir}/kernel", f"{rundir}/initramfs"
            started = time.monotonic()
            try:
                record.uploads = {
                    "kernel": conn.upload(kernel, remote_kernel, self.limits.upload),
                    "initramfs": conn.upload(initramfs, remote_initrd, self.limits.upload),
                }
            except BaseException:
                if one_shot:  # /boot is small and not ours: leave nothing there
                    conn.run(["rm", "-rf", rundir], self.limits.command)
                raise
            record.upload_seconds = round(time.monotonic() - started, 1)
            if facts is not None:
                self._set_one_shot(conn, facts, full_args, run_id, console_log, record)
                grub = (facts, facts.grubenv)
                switch = ["reboot"]
            else:
                conn.check(
                    [
                        # --kexec-syscall: kexec-tools 2.0.32 tries kexec_file_load
                        # first, and its fallback for a non-relocatable kernel
                        # (tinyconfig) fails to place the setup code.
                        "kexec", "--kexec-syscall", "-l", remote_kernel,
                        f"--initrd={remote_initrd}", f"--command-line={' '.join(full_args)}",
                    ],
                    self.limits.command,
                )  # fmt: skip
                switch = ["kexec", "-e"]
            capture = ConsoleCapture(machine.console, console_log) if machine.console else None
            if capture is not None:
                time.sleep(0.5)  # let the console command attach before the switch
            try:
                conn.start(switch)
            except TransportError:
                if capture is not None:
                    capture.stop()
                raise
        if capture is not None:
            console = self._watch(capture, record, on_line)
        else:
            console = self._await_return(record, boot_id)
        with self.reach(record) as conn:
            if grub is not None:
                self._clear_one_shot(conn, *grub, record, console)
            conn.run(["rm", "-rf", rundir], self.limits.command)
            record.returned_to = health.release
            if before is not None:
                console.evidence = self._collect_pstore(conn, before, console_log, record, console)
        return console

    def _watch(
        self,
        capture: ConsoleCapture,
        record: MachineInfo,
        on_line: Callable[[str], None] | None,
    ) -> ConsoleResult:
        """Read the console of the kernel under test; power-cycle a silent machine."""
        try:
            try:
                console = capture.capture(self.limits.overall, self.limits.inactivity, on_line)
            finally:
                capture.stop()
        except BaseException:
            # interrupted while the kernel under test runs: bring the machine home
            record.interrupted = self._recover_after_interrupt()
            raise
        if console.reason in (ExitReason.INACTIVITY, ExitReason.TIMEOUT, ExitReason.QEMU_ERROR):
            record.power_cycles += 1
            failed = self.power_cycle()
            if failed:
                console.notes.append(failed)
        return console

    def _await_return(self, record: MachineInfo, boot_id: str) -> ConsoleResult:
        """No console: wait (up to the overall limit) for the own kernel to answer from
        a new boot (boot_id changed); power-cycle the machine if it does not."""
        started = time.monotonic()
        deadline = started + self.limits.overall
        console = ConsoleResult(ExitReason.UNWATCHED, [], 0.0, watched=False)
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    with connect_when_ready(
                        self.machine, min(remaining, self.limits.ready), ["cat", BOOT_ID]
                    ) as conn:
                        now = conn.check(["cat", BOOT_ID], self.limits.command).strip()
                except HostKeyRefused:
                    raise
                except TransportError:
                    continue
                if now != boot_id:
                    console.duration = time.monotonic() - started
                    return console
                time.sleep(2.0)  # still the own kernel, before kexec -e took effect
        except BaseException:
            record.interrupted = self._recover_after_interrupt()
            raise
        console.reason = ExitReason.TIMEOUT
        console.duration = time.monotonic() - started
        console.notes.append(
            f"{self.machine.name} did not come back within {self.limits.overall:.0f} s"
        )
        record.power_cycles += 1
        failed = self.power_cycle()
        if failed:
            console.notes.append(failed)
        return console

    # -- one-shot boot entry (GRUB) -------------------------------------------

    def _grub_facts(self, conn: Connection) -> oneshot.GrubFacts:
        """Everything the one-shot decision needs, read without changing anything."""
        limit = self.limits.command
        facts = oneshot.parse_facts(conn.check(oneshot.facts_command(), limit))
        if facts.grub_dir and facts.editenv and facts.probe:
            grub_dir = facts.grub_dir
            facts.grub_cfg = conn.check(["cat", f"{grub_dir}/grub.cfg"], limit)
            listed = conn.run([facts.editenv, f"{grub_dir}/grubenv", "list"], limit)
            facts.grubenv = oneshot.parse_env(listed.stdout) if listed.ok else {}
            facts.env_fs = conn.run([facts.probe, "--target=fs", grub_dir], limit).stdout.strip()
            facts.env_abstraction = conn.run(
                [facts.probe, "--target=abstraction", grub_dir], limit
            ).stdout.strip()
            first = conn.run(["head", "-n", "1", f"{grub_dir}/custom.cfg"], limit)
            facts.custom_cfg_first_line = first.stdout.rstrip("\n") if first.ok else None
        return facts

    def _set_one_shot(
        self,
        conn: Connection,
        facts: oneshot.GrubFacts,
        args: list[str],
        run_id: str,
        console_log: Path,
        record: MachineInfo,
    ) -> None:
        """Write the entry (custom.cfg) and set next_entry; undo both if that fails."""
        assert facts.grub_dir and facts.editenv and facts.probe and facts.mkrelpath
        limit, boot_dir = self.limits.command, oneshot.BOOT_DIR
        env_file, custom = f"{facts.grub_dir}/grubenv", f"{facts.grub_dir}/custom.cfg"
        try:
            location = oneshot.Location(
                fs_uuid=conn.check([facts.probe, "--target=fs_uuid", boot_dir], limit).strip(),
                relpath=conn.check([facts.mkrelpath, boot_dir], limit).strip(),
                modules=(
                    *(
                        f"part_{p}"
                        for p in conn.check(
                            [facts.probe, "--target=partmap", boot_dir], limit
                        ).split()
                    ),
                    conn.check([facts.probe, "--target=fs", boot_dir], limit).strip(),
                ),
            )
            # a copy of the entry stays with the results
            local = console_log.with_name(console_log.name.removesuffix(".log") + ".custom.cfg")
            local.write_text(oneshot.render_entry(location, args, run_id))
            conn.upload(local, custom, self.limits.upload)
            conn.check([facts.editenv, env_file, "set", f"next_entry={oneshot.ENTRY_ID}"], limit)
            listed = oneshot.parse_env(conn.check([facts.editenv, env_file, "list"], limit))
            if listed.get("next_entry") != oneshot.ENTRY_ID:
                raise MachineError(f"{self.machine.name}: next_entry did not stick in {env_file}")
        except BaseException:
            self._undo_one_shot(conn, facts)
            raise
        default = oneshot.default_entry(facts.grub_cfg, facts.grubenv)
        record.one_shot = (
            f"next_entry={oneshot.ENTRY_ID} set in {env_file} (entry in {custom}); "
            f"default entry {default!r} untouched"
        )

    def _undo_one_shot(self, conn: Connection, facts: oneshot.GrubFacts) -> list[str]:
        """Unset our next_entry, remove our custom.cfg and /boot/kbulk; what failed."""
        assert facts.grub_dir and facts.editenv
        limit, failed = self.limits.command, []
        env_file, custom = f"{facts.grub_dir}/grubenv", f"{facts.grub_dir}/custom.cfg"
        listed = conn.run([facts.editenv, env_file, "list"], limit)
        ours = oneshot.parse_env(listed.stdout).get("next_entry") == oneshot.ENTRY_ID
        if ours and not conn.run([facts.editenv, env_file, "unset", "next_entry"], limit).ok:
            failed.append(f"next_entry could not be unset in {env_file}")
        first = conn.run(["head", "-n", "1", custom], limit)
        mine = first.ok and first.stdout.startswith(oneshot.MARK)
        if mine and not conn.run(["rm", "-f", custom], limit).ok:
            failed.append(f"{custom} could not be removed")
        if not conn.run(["rm", "-rf", oneshot.BOOT_DIR], limit).ok:
            failed.append(f"{oneshot.BOOT_DIR} could not be removed")
        return failed

    def _clear_one_shot(
        self,
        conn: Connection,
        facts: oneshot.GrubFacts,
        env_before: dict[str, str],
        record: MachineInfo,
        console: ConsoleResult,
    ) -> None:
        """Back on the own kernel: GRUB must have cleared next_entry; remove our entry.
        If it did not, the machine is not used again this run (it would loop)."""
        assert facts.grub_dir and facts.editenv
        env_file = f"{facts.grub_dir}/grubenv"
        listed = conn.run([facts.editenv, env_file, "list"], self.limits.command)
        problems = oneshot.check_after(env_before, oneshot.parse_env(listed.stdout))
        problems += self._undo_one_shot(conn, facts)
        if problems:
            self.unusable = record.unusable = "one-shot boot entry: " + "; ".join(problems)
            console.notes.append(self.unusable)
            record.one_shot = f"{record.one_shot}; after the boot: {'; '.join(problems)}"
        else:
            record.one_shot = (
                f"{record.one_shot}; after the boot: next_entry cleared by GRUB, saved_entry "
                f"unchanged, entry and {oneshot.BOOT_DIR} removed"
            )

    # -- pstore ---------------------------------------------------------------

    def _pstore_entries(self, conn: Connection) -> dict[str, str] | None:
        """pstore's entries and their sha256; None without a pstore filesystem."""
        listing = conn.run(pstore.list_command(), self.limits.command)
        return pstore.parse_listing(listing.stdout) if listing.ok else None

    def _collect_pstore(
        self,
        conn: Connection,
        before: dict[str, str],
        console_log: Path,
        record: MachineInfo,
        console: ConsoleResult,
    ) -> list[Evidence]:
        """Store the entries this boot left in pstore beside the console log, remove
        them from the machine, and return its kmsg dumps, most telling first."""
        after = self._pstore_entries(conn) or {}
        ours = pstore.new_entries(before, after)
        if not ours:
            return []
        folder = console_log.with_name(console_log.name.removesuffix(".log") + ".pstore")
        folder.mkdir(exist_ok=True)
        texts: dict[str, str] = {}
        for name in ours:
            path = f"{pstore.PSTORE_DIR}/{name}"
            read = conn.run(["cat", path], self.limits.command)
            if not read.ok:
                console.notes.append(f"pstore {name}: could not be read: {read.stderr.strip()}")
                continue
            (folder / name).write_text(read.stdout)
            texts[name] = read.stdout
            record.pstore_files.append(f"{folder.name}/{name}")
            conn.run(["rm", "-f", path], self.limits.command)
        left = sorted(set(ours) & set(self._pstore_entries(conn) or {}))
        if left:
            console.notes.append(f"pstore entries could not be removed: {', '.join(left)}")
        return [
            Evidence(", ".join(f"{folder.name}/{f}" for f in dump.files), dump.lines)
            for dump in pstore.dumps(texts)
        ]

    def _recover_after_interrupt(self) -> str:
        failed = self.power_cycle()
        if failed:
            message = f"{self.machine.name} may still run the kernel under test: {failed}"
        else:
            try:
                # the whole readiness limit: a server's firmware alone can take minutes,
                # and the lab took over 60 s at load 21
                connect_when_ready(self.machine, self.limits.ready).close()
                message = f"{self.machine.name} was power-cycled and is back on its own kernel"
            except TransportError as e:
                message = f"{self.machine.name} was power-cycled but did not come back: {e}"
        self.info(message)
        return message
