"""MachineBooter at the pipeline's boot seam, without a machine: how it is picked, what
it records, how its faults map to statuses, the record in results.json, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.boot.stage import BootRequest, QemuBooter
from harness.errors import failure
from harness.kernel.arch import get_arch
from harness.machine.booter import MachineBooter
from harness.machine.inventory import Machine
from harness.machine.keys import generate
from harness.machine.remote import MachineError
from harness.paths import REPO_ROOT
from harness.pipeline import RunOptions, choose_booter
from harness.progress import Reporter
from harness.record.meta import RunMeta
from harness.record.run import ArchRun, BootInfo, MachineInfo
from harness.record.status import Accel, ExitReason, RunStatus
from harness.record.store import load_json, write_json
from harness.spec import load_spec


def machine(tmp_path: Path, arch: str = "x86_64") -> Machine:
    key = generate(tmp_path / "host")
    return Machine(
        name="lab1", arch=arch, host="127.0.0.1", port=9, user="root",
        key_file=tmp_path / "client", host_key=key.public_line, console=("true",),
        source=f"{tmp_path}/machines.yaml:2",
    )  # fmt: skip


def options(tmp_path: Path, on: Machine | None) -> RunOptions:
    spec = load_spec(REPO_ROOT / "configs" / "default.yaml", REPO_ROOT)
    return RunOptions(spec=spec, results_root=tmp_path, cache=tmp_path / "cache", machine=on)


def test_choose_booter_picks_the_machine_when_one_is_given(tmp_path: Path) -> None:
    assert isinstance(choose_booter(options(tmp_path, None)), QemuBooter)
    booter = choose_booter(options(tmp_path, machine(tmp_path)))
    assert isinstance(booter, MachineBooter)
    assert booter.session.machine.name == "lab1"


def test_wrong_arch_is_an_infra_error_with_the_machine_recorded(tmp_path: Path) -> None:
    lab = machine(tmp_path, arch="arm64")
    booter = MachineBooter(lab, tmp_path / "cache")
    request = BootRequest(get_arch("x86_64"), tmp_path / "bzImage", tmp_path / "build")
    booted: list[BootInfo] = []
    with pytest.raises(MachineError) as raised:
        booter.boot(request, tmp_path / "r" / "x86_64" / "console.log", Reporter(), booted.append)
    found = failure(raised.value)
    assert found.status is RunStatus.INFRA_ERROR
    assert "lab1 is arm64, the kernel is x86_64" in found.message
    [info] = booted  # on_booted ran first: the failed run still says where it was booted
    assert info.accel is Accel.MACHINE and info.qemu_argv == []
    assert info.machine is not None and info.machine.name == "lab1"
    assert info.machine.host_key_fingerprint.startswith("SHA256:")
    assert info.cmdline is not None and "oops=panic" in info.cmdline.split()


def test_machine_record_round_trips_through_results_json(tmp_path: Path) -> None:
    record = MachineInfo(
        name="lab1", host_key_fingerprint="SHA256:abc", own_kernel="6.12.1-amd64",
        mem_available_kb=900000, lockdown="none", uploads={"kernel": "00ff"},
        upload_seconds=1.5, power_cycles=1, returned_to="6.12.1-amd64",
    )  # fmt: skip
    boot = BootInfo(Accel.MACHINE, cmdline="console=ttyS0", machine=record)
    boot.exit_reason = ExitReason.INACTIVITY
    run = ArchRun("x86_64", "v7.2.13", RunStatus.TIMEOUT, boot=boot)
    path = tmp_path / "results.json"
    write_json(path, [run], RunMeta())
    data = json.loads(path.read_text())["runs"][0]
    assert data["accelerator"] == "machine"
    assert data["boot"]["machine"]["power_cycles"] == 1
    _, [back] = load_json(path)
    assert back.boot == boot and back.accelerator is Accel.MACHINE


def kbulk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_inventory_error_is_a_usage_error_naming_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "machines.yaml"
    bad.write_text("machines:\n  - name: lab1\n    arch: sparc\n")
    for command in ("run", "ab"):
        proc = kbulk(
            command, "--machine", "lab1", "--inventory", str(bad), "--results", str(tmp_path)
        )
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"{bad}:" in proc.stdout + proc.stderr
    alone = kbulk("run", "--machine", "lab1", "--results", str(tmp_path))
    assert alone.returncode == 2
    assert "--machine and --inventory go together" in alone.stdout + alone.stderr
    assert not any(tmp_path.glob("*/results.json")), "a usage error starts no run"
