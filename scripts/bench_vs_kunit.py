#!/usr/bin/env python3
"""Benchmark: kbulk against kunit_tool on the same kernel config and KUnit suites.

For each architecture, in one run on one machine:
  1. cold build + boot + test (fresh build directories, compiler cache disabled for both),
  2. rerun with nothing changed,
  3. rerun after touching mm/page_alloc.c,
and boot-to-results time. Prints a table and writes JSON; figures, not assertions.

Both tools build the same patched tree with the same final .config (kbulk's
.config is handed to kunit.py as its --kunitconfig) and run the same suites.

kunit.py always passes `-accel kvm -accel hvf -accel tcg` to QEMU; on hosts
where /dev/kvm opens but KVM guests hang, it would hang, so with --hide-kvm
(default on such hosts: when kbulk's probe chose TCG) kunit.py runs in a
private mount namespace where /dev/kvm is /dev/null, and QEMU falls back to TCG.

usage: scripts/bench_vs_kunit.py [--arch x86_64] [--arch arm64] [--jobs 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.kernel.arch import get_arch  # noqa: E402
from harness.paths import cache_root  # noqa: E402

SUITES = "page_alloc_bulk*"
_KUNIT_ELAPSED = re.compile(
    r"Elapsed time: ([\d.]+)s total, ([\d.]+)s configuring, ([\d.]+)s building, ([\d.]+)s running"
)


def timed(argv: list[str], env: dict[str, str], log: Path) -> tuple[float, int, str]:
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    took = time.monotonic() - started
    output = proc.stdout + proc.stderr
    with log.open("a") as f:
        f.write(f"$ {' '.join(argv)}\n{output}\n")
    return took, proc.returncode, output


def newest_result(root: Path) -> dict:
    latest = sorted(p for p in root.iterdir() if (p / "results.json").exists())[-1]
    return json.loads((latest / "results.json").read_text())


def bench_arch(arch_name: str, bench: Path, jobs: int, hide_kvm: bool, log: Path) -> dict:
    arch = get_arch(arch_name)
    env = {**os.environ, "CCACHE_DISABLE": "1", "KBULK_CACHE": str(bench / "kbulk-cache")}
    results_root = bench / "results"
    kbulk = [sys.executable, "-m", "harness.cli", "run", "--arch", arch_name, "--no-modules",
             "--suites", SUITES, "--results", str(results_root), "-j", str(jobs),
             "--quiet"]  # fmt: skip
    figures: dict[str, dict[str, float | int | str]] = {"kbulk": {}, "kunit_tool": {}}

    def run_kbulk(step: str) -> dict:
        took, _, _ = timed(kbulk, {**env, "PYTHONPATH": str(REPO)}, log)
        run = newest_result(results_root)["runs"][0]
        figures["kbulk"][step] = round(took, 1)
        figures["kbulk"][f"{step}_status"] = run["status"]
        figures["kbulk"][f"{step}_boot_to_results"] = run["durations"].get("boot_to_results", -1)
        figures["kbulk"]["accelerator"] = run["accelerator"]
        return run

    run = run_kbulk("cold")
    build_dir = Path(run["details"]["build"]["dir"])
    tree = build_dir.parent / "linux"
    kunitconfig = bench / f"{arch_name}.kunitconfig"
    shutil.copy(build_dir / ".config", kunitconfig)
    kunit_build = bench / f"kunit-{arch_name}"
    kunit = [sys.executable, str(tree / "tools/testing/kunit/kunit.py"), "run",
             f"--arch={arch_name}", f"--build_dir={kunit_build}", f"--kunitconfig={kunitconfig}",
             f"--jobs={jobs}", "--timeout=600", SUITES]  # fmt: skip
    # kunit.py's own arm64 QEMU config asks for the PL010 UART, which a
    # tinyconfig-based arm64 .config cannot have; use the same machine
    # without it (PL011 is what QEMU's virt board has).
    qemu_config = bench / f"{arch_name}_qemu_config.py"
    # kunit.py adds its own -accel options; drop ours from -machine.
    machine = [a.replace(",accel=tcg", "") for a in arch.qemu_machine_tcg]
    qemu_config.write_text(
        "from ..qemu_config import QemuArchParams\n"
        f"QEMU_ARCH = QemuArchParams(linux_arch={arch.make_arch!r}, kconfig='',\n"
        f"    qemu_arch={arch.qemu_binary.removeprefix('qemu-system-')!r},\n"
        f"    kernel_path={arch.image!r}, kernel_command_line='console={arch.console}',\n"
        f"    extra_qemu_params={machine!r})\n"
    )
    kunit.append(f"--qemu_config={qemu_config}")
    if arch.cross_prefix_for_host():
        kunit.insert(3, f"--cross_compile={arch.cross_prefix_for_host()}")
    if hide_kvm:
        # /dev/kvm opens here but KVM guests hang; kunit.py always asks for KVM first.
        kunit = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                 'mount --bind /dev/null /dev/kvm && exec "$0" "$@"', *kunit]  # fmt: skip

    def run_kunit(step: str) -> None:
        took, rc, output = timed(kunit, env, log)
        figures["kunit_tool"][step] = round(took, 1)
        figures["kunit_tool"][f"{step}_status"] = "pass" if rc == 0 else f"rc={rc}"
        if m := _KUNIT_ELAPSED.search(output):
            figures["kunit_tool"][f"{step}_boot_to_results"] = float(m.group(4))

    run_kunit("cold")
    run_kbulk("rerun")
    run_kunit("rerun")
    (tree / "mm/page_alloc.c").touch()
    run_kbulk("touched")
    (tree / "mm/page_alloc.c").touch()
    run_kunit("touched")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", action="append", dest="arches")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("bench-vs-kunit.json"))
    parser.add_argument("--bench-dir", type=Path, default=cache_root() / "bench")
    parser.add_argument("--no-hide-kvm", action="store_true")
    args = parser.parse_args()
    arches = args.arches or ["x86_64", "arm64"]
    if args.bench_dir.exists():
        shutil.rmtree(args.bench_dir)
    (args.bench_dir / "kbulk-cache").mkdir(parents=True)
    # Share the downloaded and extracted source, not builds or verdicts.
    (args.bench_dir / "kbulk-cache" / "sources").symlink_to(cache_root() / "sources")
    (args.bench_dir / "kbulk-cache" / "apt").symlink_to(cache_root() / "apt")
    if (cache_root() / "accel-probe.json").exists():
        shutil.copy(cache_root() / "accel-probe.json", args.bench_dir / "kbulk-cache")
    log = args.bench_dir / "bench.log"
    report = {}
    for arch in arches:
        report[arch] = bench_arch(arch, args.bench_dir, args.jobs, not args.no_hide_kvm, log)
        print(json.dumps({arch: report[arch]}, indent=2), flush=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'arch':8} {'step':8} {'kbulk s':>9} {'kunit s':>9} {'ratio':>6}")
    for arch, figs in report.items():
        for step in ("cold", "rerun", "touched"):
            a, b = figs["kbulk"][step], figs["kunit_tool"][step]
            sa, sb = figs["kbulk"][f"{step}_status"], figs["kunit_tool"][f"{step}_status"]
            print(f"{arch:8} {step:8} {a:9.1f} {b:9.1f} {b / a:6.2f}  ({sa} / {sb})")
        for tool in ("kbulk", "kunit_tool"):
            print(f"{arch:8} boot-to-results {tool}: {figs[tool].get('rerun_boot_to_results')} s")
    print(f"(log: {log})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
