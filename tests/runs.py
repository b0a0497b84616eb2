"""Builders of typed runs and result directories shared by the compare/report tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.analysis.ktap import metrics_from, parse_ktap
from harness.record.meta import RunMeta
from harness.record.run import AbSlot, ArchRun, BootInfo, BuildInfo, CrashReport
from harness.record.status import Accel, RunStatus, Variant
from harness.record.store import write_json

BASE, PATCHED = "v7.2.13", "v7.2.13+series-0123abcd"
SHA = {BASE: "a" * 64, PATCHED: "b" * 64}


def ktap_text(
    *, filled: int, p50: int, nowait_ok: bool = True, ns: tuple[float, ...] = (100, 60, 40, 35)
) -> str:
    """A console's KTAP: kbulk_stress (2 cases) and kbulk_bench (4 batch sizes)."""
    nowait = "ok" if nowait_ok else "not ok"
    bench = "".join(
        f"    # kbulk-metric: test=order0_batch{b} api=bulk ns_per_page={v} batch={b} short=0\n"
        f"    ok {i} order0_batch{b}\n"
        for i, (b, v) in enumerate(zip((1, 8, 64, 512), ns, strict=True), start=1)
    )
    return (
        "KTAP version 1\n1..2\n"
        "    KTAP version 1\n    # Subtest: kbulk_stress\n    1..2\n"
        "    # kbulk-metric: test=env api_bulk_order=0 nr_cpus=2\n"
        f"    # kbulk-metric: test=gfp_kernel_order0 requests=1000 filled={filled}"
        f" partial={1000 - filled} failed=0 pages=64000 p50_ns={p50} p99_ns={p50 * 4}"
        f" max_ns={p50 * 20} compact_stall=-1 allocstall=10 api=bulk\n"
        "    ok 1 gfp_kernel_order0\n"
        "    # kbulk-metric: test=gfp_nowait_order0 requests=500 filled=400 partial=100"
        " failed=0 p50_ns=800 p99_ns=2000 max_ns=9000 api=bulk\n"
        f"    {nowait} 2 gfp_nowait_order0\n"
        f"{'ok' if nowait_ok else 'not ok'} 1 kbulk_stress\n"
        "    KTAP version 1\n    # Subtest: kbulk_bench\n    1..4\n"
        f"{bench}"
        "ok 2 kbulk_bench\n"
    )


def make_run(
    kernel: str,
    *,
    filled: int,
    p50: int = 1000,
    arch: str = "x86_64",
    accel: str = "tcg",
    config: str = "151d77eb2003",
    nowait_ok: bool = True,
    crashes: list[CrashReport] | None = None,
    rep: int = 0,
    ns: tuple[float, ...] = (100, 60, 40, 35),
) -> ArchRun:
    doc = parse_ktap(ktap_text(filled=filled, p50=p50, nowait_ok=nowait_ok, ns=ns))
    build = f"/cache/work/7.2.13-30a8c5fc63f9-x/build-{arch}-{config}"
    qemu = [f"qemu-system-{arch}", "-machine", f"pc,accel={accel}", "-m", "1G", "-smp", "2",
            "-append", "console=ttyS0"]  # fmt: skip
    status = RunStatus.PASS if nowait_ok else RunStatus.TEST_FAILURE
    patched = kernel != BASE
    return ArchRun(
        arch,
        kernel,
        RunStatus.CRASH if crashes else status,
        series=kernel.partition("+series-")[2] or None,
        ktap=doc,
        crashes=crashes or [],
        metrics=metrics_from(doc),
        build=BuildInfo(
            dir=build,
            log=f"{build}/build.log",
            config_digest=config,
            image=f"{build}/bzImage",
            image_sha256=SHA.get(kernel, "c" * 64),
            make_argv=["make", f"O={build}", "bzImage"],
        ),
        boot=BootInfo(
            accel=Accel(accel),
            accel_reason="KVM probe boot failed; using TCG",
            qemu_argv=qemu,
            memory="1G",
            smp=2,
            cmdline="console=ttyS0",
        ),
        ab=AbSlot(Variant.PATCHED if patched else Variant.BASELINE, rep),
    )


def write_dir(path: Path, runs: list[ArchRun], **meta: Any) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    info = {
        "command_line": ["kbulk", "run", "--results", str(path)],
        "spec_name": "default",
        "host": {"hostname": "vm", "cpus": 2},
        **meta,
    }
    write_json(path / "results.json", runs, RunMeta.from_json(info))
    return path


def two_dirs(tmp_path: Path, base_filled=(900, 910, 905), new_filled=(1000, 1000, 998), **kw):
    a = write_dir(
        tmp_path / "a", [make_run(BASE, filled=f, rep=i) for i, f in enumerate(base_filled)]
    )
    b = write_dir(
        tmp_path / "b", [make_run(PATCHED, filled=f, rep=i, **kw) for i, f in enumerate(new_filled)]
    )
    return a, b


def comparison_figures(compare_json: dict[str, Any]) -> dict[str, Any]:
    """compare.json without what names the invocation (command line, directories):
    the figures, verdicts and kernels, to check two comparisons are the same."""
    data = {k: v for k, v in compare_json.items() if k != "command_line"}
    for side in ("baseline", "patched"):
        if isinstance(data.get(side), dict):
            entry = {k: v for k, v in data[side].items() if k != "directories"}
            entry["runs"] = [
                {k: v for k, v in run.items() if k != "directory"} for run in entry["runs"]
            ]
            data[side] = entry
    return data
