"""analyze(): how a console and the way the boot ended become a run status and message."""

from __future__ import annotations

import pytest

from harness.analysis.analyze import analyze
from harness.boot.guest.markers import INIT_DONE, INIT_START
from harness.record.status import ExitReason, RunStatus

KTAP_PASS = ["KTAP version 1", "1..1", "    KTAP version 1", "    # Subtest: s", "    1..1",
             "    ok 1 a", "ok 1 s"]  # fmt: skip
KTAP_FAIL = [*KTAP_PASS[:5], "    not ok 1 a", "not ok 1 s"]
OOPS = ["BUG: kernel NULL pointer dereference, address: 0", "Oops: 0002 [#1] SMP"]
WARN = ["------------[ cut here ]------------", "WARNING: CPU: 0 PID: 1 at mm/x.c:1 f+0x1/0x2",
        "---[ end trace 0000000000000000 ]---"]  # fmt: skip
STEP = [
    "kbulk-init: step begin insmod kbulk_stress",
    "kbulk-init: step end insmod kbulk_stress rc=0",
]
BAD_STEP = [STEP[0], "kbulk-init: step end insmod kbulk_stress rc=-12"]


def boot(*parts: list[str]) -> list[str]:
    return [INIT_START, *(line for part in parts for line in part), INIT_DONE]


@pytest.mark.parametrize(
    ("lines", "reason", "modules", "status", "message"),
    [
        (boot(KTAP_PASS, STEP), ExitReason.COMPLETED, ["kbulk_stress"], RunStatus.PASS,
         "1 passed, 0 failed"),
        (boot(KTAP_FAIL), ExitReason.COMPLETED, [], RunStatus.TEST_FAILURE, "0 passed, 1 failed"),
        ([], ExitReason.QEMU_ERROR, [], RunStatus.INFRA_ERROR,
         "QEMU failed before the guest printed anything"),
        (boot(KTAP_PASS, OOPS), ExitReason.COMPLETED, [], RunStatus.CRASH, "bug: BUG: kernel NULL"),
        ([], ExitReason.INACTIVITY, [], RunStatus.TIMEOUT,
         "no console output before the kernel printed anything (hang at boot)"),
        ([INIT_START, *KTAP_PASS[:5]], ExitReason.TIMEOUT, [], RunStatus.TIMEOUT,
         "overall timeout while s"),
        (["Linux version 7.2.13"], ExitReason.GUEST_EXIT, [], RunStatus.CRASH,
         "the guest stopped before init started"),
        ([INIT_START], ExitReason.GUEST_EXIT, [], RunStatus.CRASH,
         "the guest stopped before init finished its plan"),
        (boot(KTAP_PASS, BAD_STEP), ExitReason.COMPLETED, [], RunStatus.TEST_FAILURE,
         "module load failed: kbulk_stress rc=-12"),
        (boot(KTAP_PASS), ExitReason.COMPLETED, ["kbulk_bench"], RunStatus.INFRA_ERROR,
         "modules never loaded: kbulk_bench"),
        (boot(KTAP_PASS, WARN), ExitReason.COMPLETED, [], RunStatus.TEST_FAILURE,
         "kernel warning"),
        (boot(KTAP_PASS), None, ["kbulk_bench"], RunStatus.PASS, "1 passed"),  # parse: no plan
    ],
    ids=["pass", "test-failure", "qemu-error", "oops", "hang-at-boot", "timeout-in-test",
         "died-before-init", "died-in-plan", "module-load-failed", "module-missing",
         "warning", "parse-ignores-plan"],
)  # fmt: skip
def test_classification(
    lines: list[str],
    reason: ExitReason | None,
    modules: list[str],
    status: RunStatus,
    message: str,
) -> None:
    found = analyze(lines, reason, modules)
    assert found.status is status, found.message
    assert message in found.message


def test_module_steps_are_recorded() -> None:
    found = analyze(boot(KTAP_PASS, STEP), ExitReason.COMPLETED, ["kbulk_stress"])
    assert found.module_steps == {"kbulk_stress": 0}


def test_qemu_error_names_qemu_s_own_message_and_exit() -> None:
    found = analyze(
        [], ExitReason.QEMU_ERROR, [], qemu_stderr=["qemu-system-x86_64: -m 1G: bad"],
        qemu_exit="exit status 1",
    )  # fmt: skip
    assert found.status is RunStatus.INFRA_ERROR
    assert found.message == (
        "QEMU failed before the guest printed anything (exit status 1): "
        "qemu-system-x86_64: -m 1G: bad"
    )
