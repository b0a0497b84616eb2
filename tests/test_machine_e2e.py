"""End to end on a lab machine: a QEMU guest with Debian's kernel, dropbear and kexec.

The harness reaches it only as a machine: paramiko to its real sshd on a
forwarded loopback port, its serial console through `tail -F`, power-cycle
through the QEMU monitor. One lab boot is shared by the module. Needs the
kernels of the main job (built, or taken from the build cache); both
arches by default, KBULK_MACHINE_ARCHES=x86_64 runs one.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sshd_fixture import free_port
from test_e2e import Invocation, kbulk, leaf_tests

from harness.analysis.analyze import analyze
from harness.analysis.crash import find_crashes
from harness.boot.console import ExitReason
from harness.boot.guest import cpio
from harness.errors import failure
from harness.kernel.arch import get_arch
from harness.machine import oneshot, pstore
from harness.machine.inventory import BootMethod, Machine, find_machine
from harness.machine.keys import generate
from harness.machine.lab import LabMachine
from harness.machine.labimage import build_lab_image
from harness.machine.remote import (
    Limits,
    MachineError,
    MachineSession,
    MachineUnusable,
    kernel_cmdline,
)
from harness.machine.transport import connect_when_ready
from harness.paths import cache_root
from harness.record.status import RunStatus

pytestmark = pytest.mark.e2e

ARCHES = os.environ.get("KBULK_MACHINE_ARCHES", "x86_64,arm64").split(",")
# no KUnit suite matches (kunit_fault would panic): the console goes silent at init
HANG_CMDLINE = ["panic=-1", "kunit.filter_glob=none"]


def processes_mentioning(fragment: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if fragment in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


@pytest.fixture(scope="module", params=ARCHES)
def lab(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabMachine]:
    image = build_lab_image(request.param, cache_root(), print)
    workdir = tmp_path_factory.mktemp("lab")
    machine = LabMachine(image, workdir, free_port())
    with machine:
        connect_when_ready(machine.machine(), 180).close()
        yield machine
    time.sleep(0.5)
    assert not processes_mentioning(str(workdir)), "QEMU, tail or ssh left behind"


@pytest.fixture(scope="module")
def inventory(lab: LabMachine) -> Path:
    return lab.write_inventory(lab.workdir / "machines.yaml")


@pytest.fixture(scope="module")
def qemu_run(lab: LabMachine, tmp_path_factory: pytest.TempPathFactory) -> Invocation:
    """The same kernel under QEMU, for comparison (cached build)."""
    run = kbulk(tmp_path_factory.mktemp("qemu"), "run", "--arch", lab.image.arch)
    assert run.returncode == 0, run.output
    return run


def back_home(lab: LabMachine) -> None:
    """The lab is on its own kernel and answers (power-cycle it if a test left it hung)."""
    try:
        conn = connect_when_ready(lab.machine(), 20, ["uname", "-r"])
    except Exception:
        subprocess.run(lab.labctl("reset"), check=True)
        conn = connect_when_ready(lab.machine(), 180, ["uname", "-r"])
    with conn:
        assert conn.check(["uname", "-r"]).strip() == lab.image.kernel_release


def hang_initramfs(tmp: Path, arch: str) -> Path:
    """An initramfs whose init sleeps forever: the console goes silent."""
    source = tmp / "hang.c"
    source.write_text("#include <unistd.h>\nint main(void) { for (;;) pause(); }\n")
    binary = tmp / "hang"
    cc = get_arch(arch).user_cc_for_host()
    subprocess.run([cc, "-static", "-Os", "-o", str(binary), str(source)], check=True)
    out = tmp / "hang.cpio"
    cpio.write_cpio(
        out,
        [
            cpio.directory("dev"),
            cpio.char_device("dev/console", 5, 1),
            cpio.regular("init", binary.read_bytes(), 0o755),
        ],
    )
    return out


def kernel_of(run: Invocation, lab: LabMachine) -> Path:
    return Path(run.run_for(lab.image.arch)["build"]["image"])


def accepted_logins(lab: LabMachine) -> int:
    with connect_when_ready(lab.machine(), 30) as conn:
        log = conn.check(["cat", "/run/dropbear.log"])
    return len(re.findall(r"auth succeeded", log, re.IGNORECASE))


def test_run_on_machine_matches_qemu(
    lab: LabMachine, inventory: Path, qemu_run: Invocation, tmp_path: Path
) -> None:
    started = time.monotonic()
    run = kbulk(tmp_path, "run", "--machine", lab.name, "--inventory", str(inventory))
    assert run.returncode == 0, run.output
    got, want = run.run_for(lab.image.arch), qemu_run.run_for(lab.image.arch)
    assert got["status"] == "pass", got["message"]
    assert leaf_tests(got["ktap"]["root"]) == leaf_tests(want["ktap"]["root"])
    assert got["module_steps"] == want["module_steps"]
    assert got["accelerator"] == "machine" and got["boot"]["accel"] == "machine"
    assert got["boot"]["qemu_argv"] == []
    assert "oops=panic" in got["boot"]["cmdline"].split()
    machine = got["boot"]["machine"]
    assert machine["name"] == lab.name
    assert machine["host_key_fingerprint"] == lab.image.host_key.fingerprint
    assert machine["returned_to"] == lab.image.kernel_release
    assert machine["power_cycles"] == 0
    assert machine["unusable"] is None and machine["interrupted"] is None
    # the lab's ramoops region went on the test kernel's command line; a clean
    # reboot leaves no dump in it
    assert machine["pstore"] == "ramoops"
    assert machine["from_own_cmdline"] == lab.ramoops_args()
    assert got["boot"]["cmdline"].split()[-len(lab.ramoops_args()) :] == lab.ramoops_args()
    assert machine["pstore_files"] == []
    assert set(machine["uploads"]) == {"kernel", "initramfs"}
    assert machine["uploads"]["kernel"] == got["build"]["image_sha256"]
    assert run.result_dir is not None
    assert (run.result_dir / "junit.xml").stat().st_size > 0
    secret = lab.image.client_key.private_path.read_text().splitlines()[1]
    for path in run.result_dir.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "PRIVATE KEY" not in text and secret not in text, path
    back_home(lab)
    print(f"machine run: {time.monotonic() - started:.0f} s")


def test_panic_is_a_crash_attributed_to_the_test(
    lab: LabMachine, inventory: Path, qemu_run: Invocation, tmp_path: Path
) -> None:
    # kunit_fault dereferences NULL; panic_on_oops (always set on machines) panics
    crash = kbulk(
        tmp_path, "run", "--machine", lab.name, "--inventory", str(inventory),
        "--no-modules", "--suites", "kunit_fault",
    )  # fmt: skip
    assert crash.returncode == 3, crash.output
    run = crash.run_for(lab.image.arch)
    assert run["status"] == "crash", run["message"]
    first = run["crashes"][0]
    assert first["kind"] == "panic"
    assert first["test"].startswith("kunit_fault"), first
    assert first["source"] is None  # the console's own report
    assert crash.result_dir is not None
    console = crash.result_dir / run["console_log"]
    assert "Kernel panic" in console.read_text()
    # the panic rebooted the machine by itself: no power cycle was needed
    machine = run["boot"]["machine"]
    assert machine["power_cycles"] == 0
    assert machine["returned_to"] == lab.image.kernel_release
    # ... and the kernel under test's panic is in the lab's pstore, read back by
    # its own kernel, stored beside the console log, and attributed the same way
    assert_pstore_dump(lab, console, machine["pstore_files"], first["test"])
    back_home(lab)


def assert_pstore_dump(
    lab: LabMachine, console: Path, files: list[str], test: str | None
) -> list[str]:
    assert files, "no pstore entry was read back"
    texts = [(console.parent / name).read_text() for name in files]
    panic = [t for t in texts if t.startswith("Panic#")]
    assert panic, [t.splitlines()[0] for t in texts]
    assert "Kernel panic - not syncing" in panic[0]
    [dump] = pstore.dumps({"dmesg-ramoops-0": panic[0]})
    crashes = find_crashes(dump.lines)
    assert crashes and crashes[0].test == test
    with connect_when_ready(lab.machine(), 60) as conn:
        left = conn.check(["ls", pstore.PSTORE_DIR]).split()
    assert left == [], f"pstore entries left on the machine: {left}"
    return files


def test_panic_without_a_console_is_a_crash_from_pstore(
    lab: LabMachine, inventory: Path, qemu_run: Invocation, tmp_path: Path
) -> None:
    if lab.image.arch != "x86_64":
        pytest.skip("one arch proves the console-less path; pstore itself is checked on both")
    entries = yaml.safe_load(inventory.read_text())
    blind = {k: v for k, v in entries["machines"][0].items() if k != "console"}
    blind["name"] = f"{lab.name}-noconsole"
    blind_inventory = tmp_path / "machines.yaml"
    blind_inventory.write_text(yaml.safe_dump({"machines": [blind]}))
    crash = kbulk(
        tmp_path / "results", "run", "--machine", blind["name"],
        "--inventory", str(blind_inventory), "--no-modules", "--suites", "kunit_fault",
        # unwatched, the whole limit is waited for if the lab does not come back
        "--timeout", "300",
    )  # fmt: skip
    assert crash.returncode == 3, crash.output
    run = crash.run_for(lab.image.arch)
    assert run["status"] == "crash", run["message"]
    assert run["boot"]["exit_reason"] == "unwatched"
    first = run["crashes"][0]
    assert first["kind"] == "panic"
    assert first["source"] in run["boot"]["machine"]["pstore_files"]
    assert first["test"].startswith("kunit_fault"), first
    assert run["message"].endswith(f"(from {first['source']})")
    assert crash.result_dir is not None
    console = crash.result_dir / run["console_log"]
    assert console.read_text() == ""  # nothing was watched: the verdict is pstore's
    assert_pstore_dump(lab, console, run["boot"]["machine"]["pstore_files"], first["test"])
    back_home(lab)


def test_hang_is_power_cycled_and_a_timeout(
    lab: LabMachine, qemu_run: Invocation, tmp_path: Path
) -> None:
    session = MachineSession(lab.machine(), Limits(overall=120, inactivity=10), info=print)
    hang = hang_initramfs(tmp_path, lab.image.arch)
    record = session.new_record()
    args = kernel_cmdline(lab.image.arch, HANG_CMDLINE)
    console = session.boot(kernel_of(qemu_run, lab), hang, args, tmp_path / "c.log", "h", record)
    assert console.reason == ExitReason.INACTIVITY
    assert record.power_cycles == 1
    assert record.returned_to == lab.image.kernel_release
    found = analyze(console.lines, console.reason, [])
    assert found.status == RunStatus.TIMEOUT, found.message
    assert "no console output" in found.message
    back_home(lab)


def test_wrong_host_key_is_refused_before_any_command(lab: LabMachine, tmp_path: Path) -> None:
    impostor_key = generate(tmp_path / "impostor")
    machine = dataclasses.replace(lab.machine(), host_key=impostor_key.public_line)
    before = accepted_logins(lab)
    session = MachineSession(machine, Limits(ready=10))
    record = session.new_record()
    started = time.monotonic()
    with pytest.raises(MachineUnusable) as refused:
        session.boot(
            Path("/nonexistent"), Path("/nonexistent"), [], tmp_path / "c.log", "k", record
        )
    assert time.monotonic() - started < 10, "a refused key is final, not retried"
    found = failure(refused.value)
    assert found.status == RunStatus.INFRA_ERROR
    assert lab.image.host_key.fingerprint in found.message
    assert "refused before logging in" in found.message
    assert session.unusable and record.unusable == session.unusable
    # the only login since is the one that reads the log
    assert accepted_logins(lab) == before + 1


def test_dead_power_cycle_is_an_infra_error(
    lab: LabMachine, qemu_run: Invocation, tmp_path: Path
) -> None:
    machine: Machine = dataclasses.replace(lab.machine(), power_cycle=("false",))
    session = MachineSession(machine, Limits(overall=120, inactivity=10, ready=10), info=print)
    kernel, args = kernel_of(qemu_run, lab), kernel_cmdline(lab.image.arch, HANG_CMDLINE)
    try:
        hang = hang_initramfs(tmp_path, lab.image.arch)
        record = session.new_record()
        with pytest.raises(MachineUnusable) as dead:
            session.boot(kernel, hang, args, tmp_path / "c.log", "x", record)
        found = failure(dead.value)
        assert found.status == RunStatus.INFRA_ERROR
        assert "unreachable after 2 power cycles" in found.message
        assert session.unusable and record.unusable == session.unusable
        assert record.power_cycles == 3  # the hang's, then two while unreachable
        again = session.new_record()
        assert again.unusable == session.unusable  # known from the start of the next boot
        with pytest.raises(MachineUnusable, match="unusable for this run"):
            session.boot(kernel, tmp_path / "x", args, tmp_path / "d.log", "y", again)
    finally:
        back_home(lab)


def test_inventory_from_the_lab_loads(inventory: Path, lab: LabMachine) -> None:
    assert find_machine(inventory, lab.name) == dataclasses.replace(
        lab.machine(), source=f"{inventory}:2"
    )


@pytest.mark.xfail(
    strict=False,
    reason="known defect, not yet diagnosed: in a full run of the test command the lab's own "
    "kernel can take minutes to come back after the interrupt's power cycle (seen since the "
    "lab loads ramoops), past this test's 240 s; it passes alone (63 s x86_64, 49 s arm64)",
)
def test_interrupt_brings_the_machine_home(
    lab: LabMachine, inventory: Path, qemu_run: Invocation, tmp_path: Path
) -> None:
    import json
    import signal
    import sys

    from harness.paths import REPO_ROOT

    # The main job's kernel and config, but a stress module that runs for
    # minutes: the interrupt must land while the kernel under test is busy. With
    # the main job as is, an idle host finishes the whole run (about 14 s of
    # guest time after the banner) before SIGINT is acted on, and the test
    # raced with it (seen once in a fresh-clone run of the test command).
    spec = yaml.safe_load((REPO_ROOT / "configs" / "default.yaml").read_text())
    spec["modules"]["load"] = [{"name": "kbulk_stress", "params": ["duration_ms=60000"]}]
    long_spec = tmp_path / "spec" / "long-stress.yaml"
    long_spec.parent.mkdir()
    long_spec.write_text(yaml.safe_dump(spec))
    results = tmp_path / "results"
    serial_before = lab.console_log.stat().st_size
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "harness.cli", "run", "--machine", lab.name,
            "--spec", str(long_spec), "--inventory", str(inventory),
            "--results", str(results),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        # the kernel under test's banner (the stock kernel's says +deb)
        banner = re.compile(r"Linux version 7\.\d+\.\d+ \(")
        while time.monotonic() < deadline:
            with lab.console_log.open(errors="replace") as f:
                f.seek(serial_before)
                if banner.search(f.read()):
                    break
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.5)
        else:
            pytest.fail("the kernel under test never started")
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=240)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(output)
    assert "back on its own kernel" in output
    with lab.console_log.open(errors="replace") as f:
        f.seek(serial_before)
        assert "kbulk-init: done" not in f.read(), "the kernel under test was not stopped"
    [result_dir] = list(results.iterdir())
    run = json.loads((result_dir / "results.json").read_text())["runs"][0]
    assert run["status"] == "infra_error"
    assert "back on its own kernel" in run["boot"]["machine"]["interrupted"]
    back_home(lab)


def test_ab_on_machine_interleaves_kernels_and_writes_the_report(
    lab: LabMachine, inventory: Path, tmp_path: Path
) -> None:
    if lab.image.arch != "x86_64":
        pytest.skip("the A/B path is the same on both arches; x86_64 covers it")
    job = kbulk(
        tmp_path, "ab", "--machine", lab.name, "--inventory", str(inventory),
        "--reps", "2", "--results", str(tmp_path),
    )  # fmt: skip
    assert job.returncode == 0, job.output
    runs = job.results["runs"]
    order = [(r["ab"]["variant"], r["ab"]["repetition"]) for r in runs]
    assert order == [("baseline", 0), ("patched", 0), ("baseline", 1), ("patched", 1)]
    assert job.result_dir is not None
    consoles = {run["console_log"] for run in runs}
    assert len(consoles) == 4, "every boot keeps its own console log"
    for run in runs:
        assert run["status"] == "pass", run["message"]
        assert run["accelerator"] == "machine"
        assert "kbulk-init: done" in (job.result_dir / run["console_log"]).read_text()
        assert run["boot"]["machine"]["host_key_fingerprint"] == lab.image.host_key.fingerprint
    report = (job.result_dir / "report.md").read_text()
    assert "## Headline figures" in report and "accelerator: x86_64: machine" in report
    assert (job.result_dir / "compare.json").is_file()
    back_home(lab)


def test_one_shot_is_refused_without_grub_and_changes_nothing(
    lab: LabMachine, tmp_path: Path
) -> None:
    # The lab boots without a boot loader: the one-shot's probes run on it (its
    # busybox sh, over its sshd) and refuse before anything is written.
    machine = dataclasses.replace(lab.machine(), boot=BootMethod.ONE_SHOT)
    session = MachineSession(machine, Limits(ready=30))
    record = session.new_record()
    with pytest.raises(MachineError) as refused:
        session.boot(
            Path("/nonexistent"), Path("/nonexistent"), [], tmp_path / "c.log", "o", record
        )
    found = failure(refused.value)
    assert found.status == RunStatus.INFRA_ERROR
    assert "one-shot boot refused: no GRUB" in found.message
    assert record.uploads == {} and record.one_shot is None
    with connect_when_ready(lab.machine(), 30) as conn:
        for path in (oneshot.BOOT_DIR, f"{machine.workdir}/o"):
            assert not conn.run(["test", "-e", path]).ok, f"{path} was created"
