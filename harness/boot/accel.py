"""Decide between KVM and TCG with a real probe boot.

"/dev/kvm opens" is not "KVM works": on hosts with broken nested
virtualisation a KVM guest hangs before the kernel prints anything. So KVM is
chosen only after the kernel under test, booted with KVM, reached the guest's
init within PROBE_TIMEOUT seconds. The verdict is cached per host, kernel
release, QEMU version and arch; `kbulk doctor --forget-kvm` forgets it.
"""

from __future__ import annotations

import json
import platform
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.boot.console import ExitReason, run_console
from harness.boot.guest.initramfs import build_initramfs
from harness.boot.guest.markers import INIT_START
from harness.boot.qemu import BootSpec, kvm_device_usable, qemu_command, qemu_version
from harness.fsutil import atomic_write_text
from harness.kernel.arch import Arch
from harness.progress import Reporter
from harness.record.status import Accel

PROBE_TIMEOUT = 30.0
_INIT_STARTED = re.compile(re.escape(INIT_START))


@dataclass(frozen=True)
class Verdict:
    accel: Accel
    reason: str


@dataclass
class ProbeCache:
    """Earlier KVM probe verdicts, per host, kernel release, arch and QEMU version."""

    path: Path
    verdicts: dict[str, Verdict] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ProbeCache:
        try:
            raw = json.loads(path.read_text())
            return cls(
                path, {k: Verdict(Accel(v["accel"]), str(v["reason"])) for k, v in raw.items()}
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return cls(path)

    @staticmethod
    def key(arch: Arch) -> str:
        uname = platform.uname()
        return "|".join([uname.node, uname.release, arch.name, qemu_version(arch.qemu_binary)])

    def get(self, arch: Arch) -> Verdict | None:
        return self.verdicts.get(self.key(arch))

    def put(self, arch: Arch, verdict: Verdict) -> None:
        self.verdicts[self.key(arch)] = verdict
        data = {k: {"accel": str(v.accel), "reason": v.reason} for k, v in self.verdicts.items()}
        atomic_write_text(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def probe_cache(cache: Path) -> ProbeCache:
    return ProbeCache.load(cache / "accel-probe.json")


def probe_kvm(arch: Arch, kernel: Path, cache: Path) -> Verdict:
    """Boot kernel under KVM with an empty plan; KVM works if init starts in time."""
    with tempfile.TemporaryDirectory(prefix="kbulk-probe-") as tmp:
        image = build_initramfs(arch, [], Path(tmp) / "probe.cpio", cache / "guest")
        boot = BootSpec(kernel, image.initramfs, ["panic=-1"], memory="512M", smp=1)
        command = qemu_command(arch, boot, Accel.KVM)
        started = time.monotonic()
        outcome = run_console(
            command.argv,
            Path(tmp) / "probe.log",
            overall_timeout=PROBE_TIMEOUT,
            inactivity_timeout=PROBE_TIMEOUT,
            stop_pattern=_INIT_STARTED,
        )
        took = time.monotonic() - started
    if outcome.reason == ExitReason.MARKER:
        return Verdict(Accel.KVM, f"KVM probe boot reached init in {took:.1f} s")
    if outcome.reason == ExitReason.QEMU_ERROR:  # say why: QEMU's own words
        said = " | ".join(outcome.qemu_stderr[:3]) or "no message on stderr"
        detail = f"QEMU failed ({outcome.qemu_exit}): {said}"
    elif not outcome.lines:
        detail = "no console output"
    else:
        detail = f"ended with {outcome.reason.value}"
    return Verdict(
        Accel.TCG, f"KVM probe boot failed ({detail} within {PROBE_TIMEOUT:.0f} s); using TCG"
    )


def choose(
    arch: Arch,
    requested: str,
    kernel: Path,
    cache: Path,
    reporter: Reporter,
    icount: int | None = None,
) -> Verdict:
    if icount is not None:  # instruction-counted time exists only in TCG
        if requested == Accel.KVM:
            reporter.warn("--accel kvm: the run definition asks for -icount; using TCG")
        return Verdict(
            Accel.TCG_ICOUNT,
            f"-icount shift={icount} (run definition): guest time counts instructions, TCG only",
        )
    if requested == Accel.TCG:
        return Verdict(Accel.TCG, "TCG requested (--accel tcg)")
    if not arch.kvm_possible_on_host():
        if requested == Accel.KVM:
            reporter.warn(f"--accel kvm: {arch.name} guests cannot use KVM on this host; using TCG")
        return Verdict(Accel.TCG, f"{arch.name} guest on a different host architecture: TCG")
    usable, why = kvm_device_usable()
    if not usable:
        if requested == Accel.KVM:
            reporter.warn(f"--accel kvm: {why}; using TCG")
        return Verdict(Accel.TCG, f"{why}: TCG")
    if requested == Accel.KVM:
        return Verdict(Accel.KVM, "KVM requested (--accel kvm), probe skipped")
    probes = probe_cache(cache)
    cached = probes.get(arch)
    if cached:
        return Verdict(cached.accel, cached.reason + " (cached verdict)")
    with reporter.step(f"KVM probe boot ({arch.name})") as step:
        verdict = probe_kvm(arch, kernel, cache)
        step.outcome = verdict.accel
    probes.put(arch, verdict)
    if verdict.accel == Accel.TCG:
        reporter.warn(verdict.reason)
    return verdict
