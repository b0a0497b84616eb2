"""Configure and build a kernel out of tree, and build out-of-tree modules.

The build directory is keyed by (source, series, arch, config) and sits next
to the source tree (``<work>/<key>/build-<arch>-<config>`` beside
``<work>/<key>/linux``) so every build sees the source at the same relative
path: with CCACHE_BASEDIR that lets ccache share objects between the
baseline and the patched tree, and reruns with nothing changed do no work.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.kernel.arch import Arch
from harness.kernel.kconfig import ConfigRequest, Mismatch, verify
from harness.kernel.patches import PatchedTree
from harness.record.status import RunStatus

_WARNING = re.compile(r"(?:^|\s)(?:[^\s:]+:\d+:\d+: )?warning: ")
_ERROR = re.compile(
    r"(?:^[^\s:]+:\d+:\d+: (?:fatal )?error: |^make\[\d+\]: \*\*\* |^ld: .*error|Error \d+$"
    r"|^ERROR: modpost: )"
)
# The tool's own message (the compiler's, or modpost's "undefined!" for a symbol the
# kernel does not export): the cause, which beats make's "Error 1" summary.
_COMPILER_ERROR = re.compile(r"^(?:\S+:\d+:\d+: (?:fatal )?error: |ERROR: modpost: )")
_STORAGE = re.compile(r"No space left on device|Read-only file system|Disk quota exceeded")
# A tool make ran is missing ("/bin/sh: 1: flex: not found"): the cause, not make's summary.
_TOOL_MISSING = re.compile(r"^(?:/bin/(?:ba)?sh: (?:line )?\d+: )?\S+: (?:command )?not found$")


class BuildError(HarnessError):
    """A make step while configuring failed (make tinyconfig, merge_config.sh, olddefconfig):
    a build failure (the tools or the tree's Kconfig do not build), not a config error,
    which is a requested symbol that did not survive (config_mismatches)."""

    status = RunStatus.BUILD_FAILURE

    def __init__(self, message: str, storage_error: str = "") -> None:
        super().__init__(message)
        self.storage_error = storage_error  # the disk failed under make (see LogScan)


class BuildStage(enum.StrEnum):
    CONFIG = "config"  # configuring (defconfig, merge_config.sh, olddefconfig, verification)
    BUILD = "build"  # make of the image, vmlinux and modules


@dataclass
class BuildResult:
    arch: str
    ok: bool
    build_dir: Path
    log: Path
    duration: float
    warnings: int = 0
    errors: int = 0
    first_error: str = ""
    image: Path | None = None
    vmlinux: Path | None = None
    config_mismatches: list[Mismatch] = field(default_factory=list)
    make_argv: list[str] = field(default_factory=list)  # the kernel build, targets included
    stage: BuildStage = BuildStage.BUILD  # what failed
    storage_error: str = ""  # make's line saying the disk was full or read-only: the host's fault

    @property
    def reproducer(self) -> str:
        return shlex.join(self.make_argv)

    @property
    def summary(self) -> str:
        if self.ok:
            return f"built in {self.duration:.0f} s, {self.warnings} warnings"
        if self.config_mismatches:
            return "requested config symbols did not survive olddefconfig: " + "; ".join(
                str(m) for m in self.config_mismatches
            )
        if self.stage is BuildStage.CONFIG:  # a make step while configuring: its own words
            return self.first_error
        return f"{self.errors} errors; first: {self.first_error}"


@dataclass
class LogScan:
    warnings: int = 0
    errors: int = 0
    first_error: str = ""
    storage_error: str = ""  # first "No space left on device" / "Read-only file system" line
    _context: list[str] = field(default_factory=list)

    def feed(self, line: str) -> None:
        if not self.storage_error and _STORAGE.search(line):
            self.storage_error = line.strip()
        if _WARNING.search(line):
            self.warnings += 1
        if _TOOL_MISSING.match(line.strip()):
            self.errors += 1
            if not _COMPILER_ERROR.match(self.first_error) and not _TOOL_MISSING.match(
                self.first_error
            ):
                self.first_error = line.strip()
            return
        if _ERROR.search(line):
            self.errors += 1
            # the compiler's own message beats make's "Error 1" summary
            if not self.first_error or (
                _COMPILER_ERROR.match(line)
                and not _COMPILER_ERROR.match(self.first_error)
                and not _TOOL_MISSING.match(self.first_error)
            ):
                self.first_error = line.strip()


def build_env(cache: Path, work_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "CCACHE_DIR": str(cache / "ccache"),
            "CCACHE_BASEDIR": str(work_root),
            "CCACHE_NOHASHDIR": "1",
            "CCACHE_MAXSIZE": env.get("CCACHE_MAXSIZE", "8G"),
            # reproducible: the same tree builds the same image
            "KBUILD_BUILD_TIMESTAMP": "1970-01-01",
            "KBUILD_BUILD_USER": "kbulk",
            "KBUILD_BUILD_HOST": "kbulk",
            "LC_ALL": "C",
        }
    )
    return env


@dataclass
class KernelBuilder:
    tree: PatchedTree
    arch: Arch
    request: ConfigRequest
    cache: Path
    work_root: Path
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    use_ccache: bool = True

    @property
    def build_dir(self) -> Path:
        parent = self.tree.path.parent
        if not parent.is_relative_to(self.work_root):  # a developer's local tree
            digest = hashlib.sha256(str(self.tree.path).encode()).hexdigest()[:12]
            parent = self.work_root / f"local-{digest}"
        return parent / f"build-{self.arch.name}-{self.request.digest[:12]}"

    def make_args(self, *targets: str) -> list[str]:
        args = ["make", "-C", str(self.tree.path), f"O={self.build_dir}", *self.arch.make_vars()]
        if self.use_ccache and shutil.which("ccache"):
            args.append(f"CC=ccache {self.arch.cross_prefix_for_host()}gcc")
        return [*args, f"-j{self.jobs}", *targets]

    def run_make(
        self, targets: list[str], log: Path, on_line: Callable[[str], None] | None = None
    ) -> tuple[int, LogScan]:
        """`make <targets>` in this build directory, appended to log, output scanned."""
        return self._run(self.make_args(*targets), log, on_line)

    def kernel_targets(self) -> list[str]:
        """The image, vmlinux, and the in-tree modules when the .config enables modules."""
        targets = [self.arch.image_target, "vmlinux"]
        dotconfig = self.build_dir / ".config"
        if dotconfig.is_file() and "CONFIG_MODULES=y" in dotconfig.read_text():
            targets.append("modules")
        return targets

    def _run(
        self, args: list[str], log: Path, on_line: Callable[[str], None] | None = None
    ) -> tuple[int, LogScan]:
        scan = LogScan()
        env = build_env(self.cache, self.work_root)
        with log.open("a") as out:
            out.write(f"$ {shlex.join(args)}\n")
            out.flush()
            proc = subprocess.Popen(
                args,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                text=True,
                errors="replace",
                start_new_session=True,  # its own process group: killable as a whole
            )
            assert proc.stdout is not None
            try:
                for line in proc.stdout:
                    out.write(line)
                    scan.feed(line)
                    if on_line:
                        on_line(line.rstrip())
            except BaseException:
                # Ctrl-C or SIGTERM: stop make and every compiler it started
                # instead of waiting for the build to finish.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
                raise
            rc = proc.wait()
        return rc, scan

    def configure(self, log: Path, force: bool = False) -> list[Mismatch]:
        """Write .config from the base target and fragments; return surviving-symbol problems.

        force: configure again even if the marker says this config is in place
        (the tree's Kconfig changed under the same build directory).
        """
        bdir = self.build_dir
        marker = bdir / ".kbulk-config"
        dotconfig = bdir / ".config"
        if (
            not force
            and marker.is_file()
            and marker.read_text().strip() == self.request.digest
            and dotconfig.exists()
        ):
            return verify(self.request, dotconfig.read_text())
        marker.unlink(missing_ok=True)  # until this configuration is verified
        bdir.mkdir(parents=True, exist_ok=True)
        fragment = bdir / "kbulk.fragment"
        fragment.write_text(self.request.fragment_text())
        steps = [
            self.make_args(self.request.base_target),
            [
                str(self.tree.path / "scripts/kconfig/merge_config.sh"),
                "-m",
                "-O",
                str(bdir),
                str(dotconfig),
                str(fragment),
            ],
            self.make_args("olddefconfig"),
        ]
        for args in steps:
            rc, scan = self._run(args, log)
            if rc != 0:
                first = scan.first_error or f"exit status {rc}"
                raise BuildError(
                    f"configuring failed at `{shlex.join(args)}`: {first}", scan.storage_error
                )
        problems = verify(self.request, dotconfig.read_text())
        if not problems:
            marker.write_text(self.request.digest + "\n")
        return problems

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the build directory: two kbulk processes (a CI job
        and a developer's run) building the same key would corrupt it."""
        lock_path = self.build_dir.with_name(self.build_dir.name + ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"waiting for another kbulk build in {self.build_dir}", file=sys.stderr)
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def build(self, on_line: Callable[[str], None] | None = None) -> BuildResult:
        with self.locked():
            return self._build(on_line)

    def _build(self, on_line: Callable[[str], None] | None = None) -> BuildResult:
        start = time.monotonic()
        bdir = self.build_dir
        bdir.mkdir(parents=True, exist_ok=True)
        log = bdir / "build.log"
        log.write_text("")
        result = BuildResult(self.arch.name, False, bdir, log, 0.0)
        try:
            mismatches = self.configure(log)
        except BuildError as e:
            result.stage, result.first_error = BuildStage.CONFIG, str(e)
            result.storage_error = e.storage_error
            result.duration = time.monotonic() - start
            return result
        if mismatches:
            result.stage = BuildStage.CONFIG
            result.config_mismatches = mismatches
            result.duration = time.monotonic() - start
            return result
        # Only now is .config there to say whether `modules` is a target, and the
        # reproducer is the make line that really runs.
        result.make_argv = self.make_args(*self.kernel_targets())
        rc, scan = self._run(result.make_argv, log, on_line)
        result.duration = time.monotonic() - start
        result.warnings, result.errors, result.first_error = (
            scan.warnings,
            scan.errors,
            scan.first_error,
        )
        result.storage_error = scan.storage_error
        image = bdir / self.arch.image
        if rc == 0 and image.is_file():
            result.ok = True
            result.image = image
            result.vmlinux = bdir / "vmlinux"
        elif rc == 0:
            result.first_error = f"make succeeded but {self.arch.image} is missing"
        elif not result.first_error:
            result.first_error = f"make exited with {rc}"
        return result

    def build_external_modules(
        self,
        source_dir: Path,
        log: Path,
        on_line: Callable[[str], None] | None = None,
        *,
        dest_name: str = "kbulk-modules",
        files: list[str] | None = None,
    ) -> tuple[list[Path], LogScan, int]:
        with self.locked():
            return self._build_external_modules(source_dir, log, on_line, dest_name, files)

    def _build_external_modules(
        self,
        source_dir: Path,
        log: Path,
        on_line: Callable[[str], None] | None = None,
        dest_name: str = "kbulk-modules",
        files: list[str] | None = None,
    ) -> tuple[list[Path], LogScan, int]:
        """Build the out-of-tree modules in source_dir against this kernel.

        The sources are copied into the build directory first (``dest_name`` in it):
        kbuild writes its objects next to the sources, and the source stays clean.
        ``files``: copy only these, and write a Kbuild building each named .c/.S as its
        own module (an in-tree test module of the kernel source, built out of tree);
        None: the directory's own Makefile/Kbuild and its sources.
        """
        dest = self.build_dir / dest_name
        dest.mkdir(parents=True, exist_ok=True)
        if files is None:
            copied = _copy_sources(source_dir, dest)
        else:
            copied = {name: source_dir / name for name in files}
            kbuild = generated_kbuild(files)
            copied["Kbuild"] = Path()  # written below, not copied
            target = dest / "Kbuild"
            if not target.is_file() or target.read_text() != kbuild:
                target.write_text(kbuild)
            for name in files:
                _copy_if_changed(source_dir / name, dest / name)
        # A file gone from the source (or from ``files``) must not build on from here.
        for stale in dest.rglob("*"):
            rel = stale.relative_to(dest).as_posix()
            if stale.is_file() and _is_source(stale) and rel not in copied:
                stale.unlink()
        args = ["make", "-C", str(self.build_dir), f"M={dest}", *self.arch.make_vars()]
        if self.use_ccache and shutil.which("ccache"):
            args.append(f"CC=ccache {self.arch.cross_prefix_for_host()}gcc")
        args += [f"-j{self.jobs}", "modules"]
        rc, scan = self._run(args, log, on_line)
        return sorted(dest.glob("*.ko")), scan, rc


_SOURCE_SUFFIXES = frozenset({".c", ".h", ".S"})
_BUILD_FILES = frozenset({"Makefile", "Kbuild"})


def _is_source(path: Path) -> bool:
    if path.name.endswith(".mod.c"):  # kbuild's own, generated beside the objects
        return False
    return path.suffix in _SOURCE_SUFFIXES or path.name in _BUILD_FILES


def _copy_if_changed(source: Path, target: Path) -> None:
    if not target.exists() or target.read_bytes() != source.read_bytes():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _copy_sources(source_dir: Path, dest: Path) -> dict[str, Path]:
    """Sources, headers and Makefile/Kbuild of a module directory (subdirectories too,
    hidden ones aside), copied when changed; relative name -> source file."""
    copied: dict[str, Path] = {}
    for f in sorted(source_dir.rglob("*")):
        rel = f.relative_to(source_dir)
        if any(part.startswith(".") for part in rel.parts) or not f.is_file():
            continue
        if _is_source(f):
            _copy_if_changed(f, dest / rel)
            copied[rel.as_posix()] = f
    return copied


def generated_kbuild(files: list[str]) -> str:
    """A Kbuild making one module of each .c/.S file (headers are only copied)."""
    objects = [Path(f).with_suffix(".o").name for f in files if f.endswith((".c", ".S"))]
    return "# written by kbulk: in-tree sources built as out-of-tree modules\n" + "".join(
        f"obj-m += {o}\n" for o in objects
    )
