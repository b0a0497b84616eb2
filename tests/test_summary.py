from harness.analysis.ktap import Metric, parse_ktap
from harness.record.meta import RunMeta, SeriesMeta
from harness.record.run import ArchRun, BootInfo, BuildInfo, CrashReport
from harness.record.status import Accel, CrashKind, RunStatus
from harness.report.summary import render_summary

KTAP = """\
KTAP version 1
1..1
    KTAP version 1
    # Subtest: kbulk_stress
    1..2
    ok 1 gfp_kernel_order0
    not ok 2 leak_check
not ok 1 kbulk_stress
"""


def test_summary_lists_suites_failures_crashes_and_metrics() -> None:
    doc = parse_ktap(KTAP.splitlines())
    run = ArchRun(
        "arm64", "v7.2.13+series-abc", RunStatus.TEST_FAILURE,
        ktap=doc, message="1 passed, 1 failed",
        metrics=[Metric(["kbulk_stress", "gfp_kernel_order0"], "gfp_kernel_order0",
                        {"requests": 10, "filled": 9, "partial": 1, "p99_ns": 1234.5})],
        crashes=[CrashReport(kind=CrashKind.WARNING, title="WARNING: CPU: 0 PID: 1 at mm/x.c:1 f",
                             test="kbulk_stress.<case #2>", line=42, excerpt=[])],
        build=BuildInfo(dir="/b", log="/b/build.log", image_sha256="f" * 64),
        boot=BootInfo(accel=Accel.TCG, accel_reason="TCG requested",
                      notes=["QEMU did not exit after the guest finished"]),
    )  # fmt: skip
    text = render_summary([run], RunMeta(command_line=["kbulk", "run"], series=SeriesMeta()))
    assert "## arm64: FAIL" in text
    assert "- arm64: kbulk_stress.leak_check" in text
    assert "| kbulk_stress | fail   | 1    | 1    |" in text
    assert "**warning** in kbulk_stress.<case #2>" in text and "console line 42" in text
    assert "| gfp_kernel_order0 | 10       | 9      | 1       | -      | -      | 1234.5" in text
    assert "f" * 64 in text
    assert "accelerator: tcg (TCG requested)" in text
    assert "- note: QEMU did not exit after the guest finished" in text


def test_summary_shows_the_lockhold_stretches() -> None:
    """kbulk_lockhold's metric lines become their own table; its env line does not."""
    ktap = KTAP.replace("kbulk_stress", "kbulk_lockhold")
    run = ArchRun(
        "x86_64", "v7.2.13+series-abc", RunStatus.PASS, ktap=parse_ktap(ktap.splitlines()),
        metrics=[
            Metric(["kbulk_lockhold", "env"], "env", {"nr_cpus": 1}),
            Metric(["kbulk_lockhold", "order9_zero"], "order9_zero",
                   {"order": 9, "blocks": 32, "zero": 1, "api": "bulk_order", "reps": 5,
                    "short": 0, "max_stretch_ns": 2114000, "min_stretch_ns": 2087000}),
        ],
    )  # fmt: skip
    text = render_summary([run], RunMeta(command_line=["kbulk", "run"], series=SeriesMeta()))
    assert "kbulk_lockhold (longest preempt/irqs-off stretch" in text
    assert "| order9_zero | bulk_order | 9     | 32     | 1    | 0     | 2114000" in text
    assert "| env " not in text
