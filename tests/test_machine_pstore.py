"""pstore read-back: which arguments carry the ramoops region over, which entries are a
boot's, which dump is the evidence, and how the analysis uses it. The lab machine's
e2e tests (test_machine_e2e.py) read real records; these pin the decisions."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.analysis.analyze import analyze
from harness.analysis.crash import Evidence
from harness.machine import pstore
from harness.record.meta import RunMeta
from harness.record.run import ArchRun, BootInfo, MachineInfo
from harness.record.status import Accel, ExitReason, RunStatus
from harness.record.store import load_json, write_json

DATA = Path(__file__).parent / "data" / "pstore"

KTAP_UNTIL_FAULT = [
    "[    1.000000] KTAP version 1",
    "[    1.000001] 1..1",
    "[    1.000002]     KTAP version 1",
    "[    1.000003]     # Subtest: kunit_fault",
    "[    1.000004]     1..1",
]


def test_region_args_are_the_ramoops_and_memory_arguments_in_order() -> None:
    own = (
        "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro memmap=1M$0x30000000 mem_encrypt=off "
        "ramoops.mem_address=0x30000000 ramoops.mem_size=0x100000 ramoops.ecc=1 "
        "memtest=1 ramoops mem=2G quiet"
    )
    assert pstore.region_args(own) == [
        "memmap=1M$0x30000000",
        "ramoops.mem_address=0x30000000",
        "ramoops.mem_size=0x100000",
        "ramoops.ecc=1",
        "mem=2G",
    ]
    assert pstore.has_ramoops_region(pstore.region_args(own))
    assert not pstore.has_ramoops_region(["memmap=1M$0x30000000", "ramoops.ecc=1"])


def test_listing_keeps_only_pstore_names_with_a_digest() -> None:
    digest = "a" * 64
    text = "\n".join(
        [
            f"{digest}  dmesg-ramoops-0",
            f"{'b' * 64}  console-ramoops-0",
            f"{digest}  ../etc/passwd",
            f"{digest}  -rf",
            "sha256sum: can't open 'x'",
            f"{'z' * 64}  dmesg-ramoops-1",
        ]
    )
    assert pstore.parse_listing(text) == {"dmesg-ramoops-0": digest, "console-ramoops-0": "b" * 64}


def test_a_boots_entries_are_the_new_and_the_changed_ones() -> None:
    before = {"dmesg-ramoops-0": "1" * 64, "dmesg-ramoops-1": "2" * 64}
    after = {"dmesg-ramoops-0": "3" * 64, "dmesg-ramoops-1": "2" * 64, "dmesg-ramoops-2": "4" * 64}
    assert pstore.new_entries(before, after) == ["dmesg-ramoops-0", "dmesg-ramoops-2"]
    assert pstore.new_entries(after, after) == []


def test_the_panic_dump_is_preferred_and_parts_are_joined_oldest_first() -> None:
    records = {
        "dmesg-ramoops-0": "Oops#1 Part1\n<4>[    2.0] BUG: oops text\n",
        "dmesg-ramoops-1": "Panic#2 Part1\n<0>[    2.5] newest\n",
        "dmesg-ramoops-2": "Panic#2 Part2\n<6>[    1.0] oldest\n",
        "console-ramoops-0": "Panic#9 Part1\nnot a dump\n",
        "dmesg-ramoops-3": "no header here\n",
    }
    dumps = pstore.dumps(records)
    assert [(d.why, d.count) for d in dumps] == [("Panic", 2), ("Oops", 1)]
    assert dumps[0].files == ["dmesg-ramoops-2", "dmesg-ramoops-1"]
    assert dumps[0].lines == [
        "Panic#2 Part2", "<6>[    1.0] oldest", "Panic#2 Part1", "<0>[    2.5] newest",
    ]  # fmt: skip


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_a_crash_in_pstore_is_used_when_the_console_shows_none(arch: str) -> None:
    # recorded on the lab machines: the Panic record of kunit_fault's NULL dereference
    record = (DATA / f"dmesg-ramoops-kunit_fault-{arch}").read_text()
    [dump] = pstore.dumps({"dmesg-ramoops-1": record})
    evidence = [Evidence("console.pstore/dmesg-ramoops-1", dump.lines)]
    # the console stopped before the fault (a console server that lost the end)
    found = analyze(KTAP_UNTIL_FAULT, ExitReason.INACTIVITY, [], evidence=evidence)
    assert found.status is RunStatus.CRASH, found.message
    first = found.crashes[0]
    assert first.source == "console.pstore/dmesg-ramoops-1"
    assert first.location == f"console.pstore/dmesg-ramoops-1 line {first.line}"
    assert dump.lines[first.line - 1].endswith(first.title)  # the record's own numbering
    assert first.test is not None and first.test.startswith("kunit_fault"), first
    assert found.message.endswith("(from console.pstore/dmesg-ramoops-1)")
    # without the evidence the same console is a hang
    assert analyze(KTAP_UNTIL_FAULT, ExitReason.INACTIVITY, []).status is RunStatus.TIMEOUT


def test_the_consoles_own_crash_wins_over_pstore() -> None:
    console = [*KTAP_UNTIL_FAULT, "[    1.1] Kernel panic - not syncing: console's own"]
    evidence = [Evidence("p", ["Kernel panic - not syncing: from pstore"])]
    found = analyze(console, ExitReason.GUEST_EXIT, [], evidence=evidence)
    assert found.status is RunStatus.CRASH
    assert [c.source for c in found.crashes] == [None]
    assert "console's own" in found.message


def test_no_console_classifies_from_pstore_or_says_the_results_are_unknown() -> None:
    evidence = [Evidence("p", ["<0>[ 3.0] Kernel panic - not syncing: Fatal exception"])]
    crashed = analyze([], ExitReason.UNWATCHED, ["kbulk_stress"], evidence=evidence, watched=False)
    assert crashed.status is RunStatus.CRASH
    back = analyze([], ExitReason.UNWATCHED, ["kbulk_stress"], watched=False)
    assert back.status is RunStatus.NO_TESTS
    assert "no console" in back.message and "results are unknown" in back.message
    hung = analyze([], ExitReason.TIMEOUT, [], watched=False)
    assert hung.status is RunStatus.TIMEOUT
    assert "did not come back" in hung.message


def test_pstore_fields_round_trip_through_results_json(tmp_path: Path) -> None:
    evidence = [Evidence("c.pstore/d-0", ["Kernel panic - not syncing: x"])]
    found = analyze([], ExitReason.UNWATCHED, [], evidence=evidence, watched=False)
    record = MachineInfo(
        name="lab1", host_key_fingerprint="SHA256:abc", pstore="ramoops",
        from_own_cmdline=["memmap=1M$0x30000000"], pstore_files=["c.pstore/d-0"],
    )  # fmt: skip
    boot = BootInfo(Accel.MACHINE, machine=record)
    run = ArchRun("x86_64", "v7.2.13", found.status, boot=boot, crashes=found.crashes)
    path = tmp_path / "results.json"
    write_json(path, [run], RunMeta())
    _, [back] = load_json(path)
    assert back.boot == boot
    assert back.crashes[0].source == "c.pstore/d-0"
