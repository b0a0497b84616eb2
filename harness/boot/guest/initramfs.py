"""Build the guest's initramfs: static init, the plan, and the test modules."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from harness.boot.guest import cpio
from harness.boot.guest.mempolicy import RESET_LINE, MemPolicy
from harness.errors import HarnessError
from harness.kernel.arch import Arch
from harness.record.status import RunStatus

INIT_SOURCE = Path(__file__).with_name("init.c")


class GuestBuildError(HarnessError):
    """The guest's init or initramfs could not be built (host compiler missing or failing)."""

    status = RunStatus.INFRA_ERROR


@dataclass(frozen=True)
class ModuleStep:
    """Load one module (then unload it) with the given parameters."""

    path: Path  # the built .ko on the host
    params: list[str] = field(default_factory=list)
    mempolicy: MemPolicy | None = None  # the task policy the module's init runs under
    memcg_max: int | None = None  # bytes: run in a child memory cgroup with this memory.max

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(".ko").replace("-", "_")


@dataclass(frozen=True)
class GuestImage:
    initramfs: Path
    init_binary: Path
    modules: list[str]


def compile_init(arch: Arch, cache_dir: Path) -> Path:
    """Compile init.c statically for arch; cached by source and compiler."""
    cc = arch.user_cc_for_host()
    if shutil.which(cc) is None:
        raise GuestBuildError(
            f"C compiler {cc!r} for the {arch.name} guest init not found; run `kbulk doctor`"
        )
    source = INIT_SOURCE.read_bytes()
    key = hashlib.sha256(source + cc.encode()).hexdigest()[:16]
    binary = cache_dir / f"init-{arch.name}-{key}"
    if binary.exists():
        return binary
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = binary.with_suffix(".tmp")
    cmd = [cc, "-static", "-Os", "-Wall", "-Wextra", "-o", str(tmp), str(INIT_SOURCE)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise GuestBuildError(
            f"compiling the guest init failed ({' '.join(cmd)}):\n{proc.stderr.strip()}\n"
            f"static linking needs the libc dev package for {arch.name}; run `kbulk doctor`"
        )
    tmp.replace(binary)
    return binary


def render_plan(steps: list[ModuleStep]) -> str:
    lines = ["# written by the kbulk harness; read by /init"]
    for step in steps:
        for param in step.params:
            if any(c.isspace() for c in param) or "\n" in param:
                raise GuestBuildError(f"module parameter {param!r} must not contain whitespace")
        # The policy is set on init itself just for this step and reset after it, so a
        # step that forks (e.g. into a cgroup) inherits it and later steps are unaffected.
        if step.mempolicy is not None:
            lines.append(step.mempolicy.plan_line())
        if step.memcg_max is not None:
            # Applies to the next insmod only (init.c): the step runs in a child cgroup.
            lines.append(f"memcg {int(step.memcg_max)}")
        lines.append(" ".join(["insmod", f"/kbulk/modules/{step.path.name}", *step.params]))
        if step.mempolicy is not None:
            lines.append(RESET_LINE)
    return "\n".join(lines) + "\n"


def build_initramfs(arch: Arch, steps: list[ModuleStep], out: Path, cache_dir: Path) -> GuestImage:
    init = compile_init(arch, cache_dir)
    entries = [
        cpio.directory("dev"),
        cpio.char_device("dev/console", 5, 1),
        cpio.char_device("dev/kmsg", 1, 11),
        cpio.directory("proc"),
        cpio.directory("sys"),
        cpio.directory("tmp", 0o1777),
        cpio.directory("kbulk"),
        cpio.directory("kbulk/modules"),
        cpio.regular("init", init.read_bytes(), 0o755),
        cpio.regular("kbulk/plan", render_plan(steps).encode()),
    ]
    for step in steps:
        if not step.path.is_file():
            raise GuestBuildError(f"module {step.path} was not built")
        entries.append(cpio.regular(f"kbulk/modules/{step.path.name}", step.path.read_bytes()))
    out.parent.mkdir(parents=True, exist_ok=True)
    cpio.write_cpio(out, entries)
    return GuestImage(initramfs=out, init_binary=init, modules=[s.name for s in steps])
