"""The fault matrix (issue 11): each fault a hostile but fair user can cause gets its
status, a clear message and a kept record, never a traceback.

Fast cases run the real CLI in a subprocess before anything is built (missing QEMU,
bad input, compare); cases that need a booted kernel are marked e2e and reuse the
main job's cached x86_64 build. Pathological long lines and bad timeouts are
covered in tests/test_reliability_parse.py and tests/test_reliability_spec.py
(referenced here so the matrix is complete in one place).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.paths import REPO_ROOT

PYTHON = sys.executable


@dataclass
class Cli:
    returncode: int
    output: str
    result_dir: Path | None

    @property
    def results(self) -> dict:
        assert self.result_dir is not None, self.output
        return json.loads((self.result_dir / "results.json").read_text())


def kbulk(
    *args: str,
    results: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    stdin: str | None = None,
) -> Cli:
    cmd = [PYTHON, "-m", "harness.cli", *args]
    before: set[Path] = set()
    if results is not None:
        results.mkdir(parents=True, exist_ok=True)
        before = set(results.iterdir())
        cmd += ["--results", str(results)]
    proc = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        check=False,
    )
    output = proc.stdout + proc.stderr
    print(output)
    created = sorted(set(results.iterdir()) - before) if results is not None else []
    return Cli(proc.returncode, output, created[-1] if created else None)


def path_without(tmp_path: Path, *prefixes: str) -> str:
    """A real PATH: symlinks to every tool on this host's PATH except those named prefix*."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            if entry.name.startswith(prefixes) or (bin_dir / entry.name).exists():
                continue
            if entry.is_file() and os.access(entry.path, os.X_OK):
                (bin_dir / entry.name).symlink_to(entry.path)
    assert shutil.which("make", path=str(bin_dir))
    return str(bin_dir)


def assert_no_traceback(cli: Cli) -> None:
    assert "Traceback" not in cli.output, cli.output


# --- 1. QEMU missing -----------------------------------------------------------------


def test_qemu_missing_for_every_arch_is_infra_error_before_the_source(tmp_path: Path) -> None:
    """No qemu-system-* on PATH: each arch infra_error with the install line, and the
    source is never looked at (a --source that does not exist is not what is reported)."""
    path = path_without(tmp_path, "qemu-system-")
    cli = kbulk(
        "run", "--arch", "x86_64", "--arch", "arm64", "--source", str(tmp_path / "no-such-tree"),
        results=tmp_path / "results", env={"PATH": path},
    )  # fmt: skip
    assert cli.returncode == 8
    assert_no_traceback(cli)
    runs = {r["arch"]: r for r in cli.results["runs"]}
    assert set(runs) == {"x86_64", "arm64"}
    for arch, package in (("x86_64", "qemu-system-x86"), ("arm64", "qemu-system-arm")):
        assert runs[arch]["status"] == "infra_error"
        assert "qemu-system-" in runs[arch]["message"]
        assert f"apt-get install -y {package}" in runs[arch]["message"]
        assert "no-such-tree" not in runs[arch]["message"]


def test_qemu_missing_for_one_arch_the_other_still_runs(tmp_path: Path) -> None:
    """qemu-system-aarch64 missing: arm64 infra_error (QEMU named); x86_64 goes on to the
    source stage (here a missing tree, so the run stops there, with its own message)."""
    path = path_without(tmp_path, "qemu-system-aarch64")
    cli = kbulk(
        "run", "--arch", "x86_64", "--arch", "arm64", "--source", str(tmp_path / "no-such-tree"),
        results=tmp_path / "results", env={"PATH": path},
    )  # fmt: skip
    assert_no_traceback(cli)
    runs = {r["arch"]: r for r in cli.results["runs"]}
    assert runs["arm64"]["status"] == "infra_error"
    assert "qemu-system-aarch64" in runs["arm64"]["message"]
    assert "no-such-tree" not in runs["arm64"]["message"]
    assert "qemu-system" not in runs["x86_64"]["message"]
    assert "no-such-tree" in runs["x86_64"]["message"]


# --- 2. QEMU failing at start-up -------------------------------------------------------


def test_qemu_start_up_failure_is_infra_error_with_qemu_message(tmp_path: Path) -> None:
    """The real QEMU, asked for an impossible memory size (as a run definition's
    boot.memory can): its stderr is kept apart from the guest console, the boot ends
    with qemu_error, and the analysis says infra_error with QEMU's own words."""
    from harness.analysis.analyze import analyze
    from harness.boot.console import ExitReason, run_console
    from harness.boot.qemu import BootSpec, qemu_command
    from harness.kernel.arch import get_arch

    arch = get_arch("x86_64")
    if shutil.which(arch.qemu_binary) is None:
        pytest.skip("no qemu-system-x86_64")
    kernel, initrd = tmp_path / "bzImage", tmp_path / "initramfs.cpio"
    kernel.write_bytes(b"\0" * 4096)
    initrd.write_bytes(b"\0" * 512)
    command = qemu_command(arch, BootSpec(kernel, initrd, [], memory="64T"), "tcg")
    console = tmp_path / "x86_64" / "console.log"
    outcome = run_console(command.argv, console, overall_timeout=60, inactivity_timeout=60)
    assert outcome.reason == ExitReason.QEMU_ERROR
    assert outcome.qemu_exit_status == 1
    assert console.read_text() == ""  # QEMU's complaint is not guest output
    stderr_log = console.parent / "console.qemu-stderr.log"
    assert "cannot set up guest memory" in stderr_log.read_text()
    found = analyze(
        outcome.lines,
        outcome.reason,
        [],
        qemu_stderr=outcome.qemu_stderr,
        qemu_exit=outcome.qemu_exit,
    )
    assert found.status.value == "infra_error"
    assert "cannot set up guest memory" in found.message
    assert "exit status 1" in found.message


# --- 3. two runs sharing a build directory ----------------------------------------------


def test_two_runs_on_one_build_directory_each_boot_their_own_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run B builds its guest image while run A is between building its own and booting
    it (the KVM probe can take 30 s there): A must still boot A's plan. The real
    initramfs builder and QemuBooter; only the accelerator choice and QEMU are stubbed,
    the stub reading the -initrd QEMU would get."""
    from harness.boot import stage
    from harness.boot.accel import Verdict
    from harness.boot.console import ConsoleResult, ExitReason
    from harness.boot.guest.initramfs import ModuleStep
    from harness.boot.stage import BootRequest, QemuBooter
    from harness.kernel.arch import get_arch
    from harness.progress import Reporter
    from harness.record.status import Accel

    arch = get_arch("x86_64")
    build_dir = tmp_path / "build-x86_64"  # shared by both runs
    build_dir.mkdir()
    modules = {}
    for name in ("kbulk_stress", "kbulk_bench"):
        modules[name] = build_dir / f"{name}.ko"
        modules[name].write_bytes(b"\x7fELF" + name.encode())
    booted: dict[str, bytes] = {}
    booter = QemuBooter("tcg", tmp_path / "cache")
    monkeypatch.setattr(stage.accel_mod, "choose", lambda *a, **k: Verdict(Accel.TCG, "stub"))

    def request(name: str) -> BootRequest:
        return BootRequest(arch, build_dir / "bzImage", build_dir, [ModuleStep(modules[name])])

    def boot(run: str, name: str) -> None:
        booter.boot(request(name), tmp_path / run / "x86_64" / "console.log", Reporter(quiet=True))

    def console(argv: list[str], log: Path, **kwargs: object) -> ConsoleResult:
        run = log.parent.parent.name
        if run == "a":  # B starts and boots while A is about to start QEMU
            boot("b", "kbulk_bench")
        booted[run] = Path(argv[argv.index("-initrd") + 1]).read_bytes()
        return ConsoleResult(ExitReason.COMPLETED, [], 0.1, 0, True)

    monkeypatch.setattr(stage, "run_console", console)
    boot("a", "kbulk_stress")
    assert b"insmod /kbulk/modules/kbulk_stress.ko" in booted["a"]
    assert b"kbulk_bench" not in booted["a"]
    assert b"insmod /kbulk/modules/kbulk_bench.ko" in booted["b"]
    # nothing of the guest is written into the shared build directory
    assert not (build_dir / "kbulk-guest").exists()


# --- 15. the harness killed mid-boot ----------------------------------------------------


def test_harness_killed_mid_boot_leaves_an_honest_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What results.json says while the boot runs is what a SIGKILL leaves behind: the
    run cut while booting (infra_error, "interrupted while booting"), not no_tests."""
    from test_errors import prepared, stub_source

    from harness.pipeline import Pipeline, RunOptions
    from harness.progress import Reporter
    from harness.record.run import BootInfo
    from harness.record.status import Accel
    from harness.spec import load_spec

    stub_source(monkeypatch, tmp_path)
    left: list[dict] = []

    class KilledMidBoot:
        def boot(self, request, console_log, reporter, on_booted=None):  # type: ignore[no-untyped-def]
            assert on_booted is not None
            on_booted(BootInfo(Accel.TCG, "stub", ["qemu-system-x86_64"]))
            console_log.write_text("Linux version 7.2.13\n")
            result_dir = console_log.parent.parent
            left.append(json.loads((result_dir / "results.json").read_text()))
            raise SystemExit(137)  # the harness goes away here

    spec = load_spec(REPO_ROOT / "configs" / "default.yaml", REPO_ROOT)
    opts = RunOptions(spec=spec, results_root=tmp_path / "results", cache=tmp_path / "cache",
                      arches=["x86_64"], modules=False)  # fmt: skip
    pipeline = Pipeline(opts, Reporter(quiet=True), KilledMidBoot())
    monkeypatch.setattr(pipeline, "prepare", lambda *a, **k: prepared(tmp_path))
    with pytest.raises(SystemExit):
        pipeline.run()
    (document,) = left
    assert document["meta"]["complete"] is False
    assert document["summary"]["status"] != "no_tests"
    (run,) = document["runs"]
    assert run["status"] == "infra_error"
    assert run["message"].startswith("interrupted while booting")
    assert run["console_log"] == "x86_64/console.log"
    assert run["boot"]["qemu_argv"] == ["qemu-system-x86_64"]


# --- e2e: real boots of the main job's cached x86_64 kernel -----------------------------

DEFAULT_SPEC = (REPO_ROOT / "configs" / "default.yaml").read_text()


def spec_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.mark.e2e
def test_e2e_impossible_memory_is_infra_error_with_qemu_message(tmp_path: Path) -> None:
    spec = spec_file(tmp_path, "bigmem", DEFAULT_SPEC.replace("memory: 1G", "memory: 64T"))
    cli = kbulk("run", "--spec", str(spec), "--arch", "x86_64", "--accel", "tcg",
                results=tmp_path / "results", timeout=1800)  # fmt: skip
    assert cli.returncode == 8
    assert_no_traceback(cli)
    (run,) = cli.results["runs"]
    assert run["status"] == "infra_error"
    assert "cannot set up guest memory" in run["message"]
    assert run["boot"]["exit_reason"] == "qemu_error"
    assert run["boot"]["qemu_exit_status"] == 1
    assert cli.result_dir is not None
    assert (cli.result_dir / "x86_64" / "console.log").read_text() == ""
    assert "cannot set up" in (cli.result_dir / "x86_64" / "console.qemu-stderr.log").read_text()


@pytest.mark.e2e
def test_e2e_two_concurrent_runs_different_plans_one_build_directory(tmp_path: Path) -> None:
    plans = {"stress": "kbulk_stress", "bench": "kbulk_bench"}
    procs = {}
    for name, module in plans.items():
        text = DEFAULT_SPEC.replace(
            "    - kbulk_stress\n    - kbulk_bench\n", f"    - {module}\n"
        ).replace('filter_glob: "page_alloc_bulk*"', 'filter_glob: "page_alloc_bulk_order*"')
        assert text.count("    - kbulk_") == 1
        spec = spec_file(tmp_path, name, text)
        results = tmp_path / f"results-{name}"
        results.mkdir()
        procs[name] = subprocess.Popen(
            [PYTHON, "-m", "harness.cli", "run", "--spec", str(spec), "--arch", "x86_64",
             "--accel", "tcg", "--results", str(results)],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    outputs = {name: proc.communicate(timeout=1800)[0] for name, proc in procs.items()}
    builds = set()
    for name, module in plans.items():
        print(outputs[name])
        assert "Traceback" not in outputs[name]
        (result_dir,) = (tmp_path / f"results-{name}").iterdir()
        (run,) = json.loads((result_dir / "results.json").read_text())["runs"]
        builds.add(run["build"]["dir"])
        assert run["module_steps"] == {module: 0}, run["message"]
        assert "never loaded" not in run["message"]
        assert run["status"] == "pass", run["message"]
    assert len(builds) == 1  # they really shared one build directory


# --- 5. JUnit for huge suites and absurd plans ------------------------------------------


def _big_suite_run(cases: int):  # type: ignore[no-untyped-def]
    from harness.analysis.ktap import parse_ktap
    from harness.record.run import ArchRun
    from harness.record.status import RunStatus

    body = "".join(f"    ok {i} case_{i}\n" for i in range(1, cases + 1))
    head = "KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: big\n"
    text = f"{head}    1..{cases}\n{body}ok 1 big\n"
    return ArchRun("x86_64", "k", RunStatus.PASS, ktap=parse_ktap(text))


def test_junit_counts_each_suite_once_not_once_per_case(monkeypatch: pytest.MonkeyPatch) -> None:
    """junitparser's add_testcase recounts the whole suite on every add (quadratic: 4000
    cases took 33 s). The suite statistics must be computed once per suite."""
    from junitparser import TestSuite

    from harness.record.junit import build_junit

    calls = 0
    original = TestSuite.update_statistics

    def counting(self: TestSuite) -> None:
        nonlocal calls
        calls += 1
        original(self)

    monkeypatch.setattr(TestSuite, "update_statistics", counting)
    xml = build_junit([_big_suite_run(2000)])
    assert xml.tests == 2000
    assert calls <= 2  # the one suite, counted once (plus at most once by the document)


def test_junit_of_an_absurd_plan_is_bounded(tmp_path: Path) -> None:
    """A plan of 10^23 tests: a bounded number of placeholder cases and a bounded file."""
    from harness.analysis.ktap import MAX_MISSING, parse_ktap
    from harness.record.junit import write_junit
    from harness.record.run import ArchRun
    from harness.record.status import RunStatus

    text = (
        "KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: absurd\n"
        f"    1..{10**23}\n    ok 1 first\n"
    )
    doc = parse_ktap(text)
    run = ArchRun("x86_64", "k", RunStatus.CRASH, ktap=doc)
    out = tmp_path / "junit.xml"
    write_junit(out, [run])
    cases = out.read_text().count("<testcase ")
    assert cases <= MAX_MISSING + 10
    assert out.stat().st_size < 300 * (MAX_MISSING + 10)


# --- 6. parse: endless input, size cap, SIGTERM -----------------------------------------


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_parse_of_an_endless_input_has_bounded_memory_and_honours_sigterm() -> None:
    """/dev/zero is one endless line: memory stays bounded (the line is cut as it is read)
    and SIGTERM ends the parse promptly, without a traceback."""
    import signal
    import time

    proc = subprocess.Popen(
        [PYTHON, "-m", "harness.cli", "parse", "/dev/zero", "--max-bytes", "1000G"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        time.sleep(3)
        assert proc.poll() is None, proc.communicate()[0]
        peak = _peak_rss_kib(proc.pid)
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=10)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in output
    assert proc.returncode == 128 + signal.SIGTERM
    assert peak < 150 * 1024, f"peak RSS {peak} KiB"


def test_parse_size_cap_is_a_clear_status(tmp_path: Path) -> None:
    """An input larger than --max-bytes: only its start is read, infra_error, said so."""
    log = tmp_path / "console.log"
    log.write_text("KTAP version 1\n1..1\nok 1 first\n" + "noise\n" * 400_000)
    cli = kbulk("parse", str(log), "--max-bytes", "1M", "--json", str(tmp_path / "r.json"))
    assert cli.returncode == 8
    assert_no_traceback(cli)
    (run,) = json.loads((tmp_path / "r.json").read_text())["runs"]
    assert run["status"] == "infra_error"
    assert run["message"].startswith("console log cut at 1048576 bytes (--max-bytes)")


# --- 7. full or read-only results filesystem --------------------------------------------


@pytest.fixture
def small_fs(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real 256 KiB tmpfs (root only), filled to the brim; unmounted afterwards."""
    mount = tmp_path / "fs"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path) -> None:
    fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def test_run_into_a_full_results_filesystem_is_infra_error_naming_path_and_errno(
    small_fs: Path,
) -> None:
    (small_fs / "results").mkdir()
    fill(small_fs)
    cli = kbulk("run", "--arch", "x86_64", "--source", str(small_fs / "no-such-tree"),
                "--results", str(small_fs / "results"))  # fmt: skip
    assert_no_traceback(cli)
    assert cli.returncode == 8
    assert "No space left on device (ENOSPC)" in cli.output
    assert str(small_fs / "results") in cli.output


def test_run_into_a_read_only_results_filesystem_is_infra_error(small_fs: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    cli = kbulk("run", "--arch", "x86_64", "--results", str(small_fs / "results"))
    assert_no_traceback(cli)
    assert cli.returncode == 8
    assert "Read-only file system (EROFS)" in cli.output
    assert str(small_fs / "results") in cli.output


def test_parse_json_into_a_full_filesystem_or_missing_directory(
    small_fs: Path, tmp_path: Path
) -> None:
    log = tmp_path / "console.log"
    log.write_text("KTAP version 1\n1..1\nok 1 first\n" + "# noise\n" * 40_000)
    fill(small_fs)
    full = kbulk("parse", str(log), "--json", str(small_fs / "r.json"))
    assert_no_traceback(full)
    assert full.returncode == 8
    assert f"cannot write {small_fs / 'r.json'}: No space left on device (ENOSPC)" in full.output
    missing = kbulk("parse", str(log), "--json", str(tmp_path / "no" / "such" / "r.json"))
    assert_no_traceback(missing)
    assert missing.returncode == 8
    assert f"cannot write {tmp_path / 'no' / 'such' / 'r.json'}: No such file" in missing.output


# --- 8./9. compare: malformed results.json, disjoint arches -----------------------------


def _ab_dirs(tmp_path: Path) -> tuple[Path, Path]:
    from runs import two_dirs

    return two_dirs(tmp_path)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("field", "damage", "named"),
    [
        ("status", lambda run: run.update(status=42), "runs[0].status"),
        ("ktap", lambda run: run.update(ktap="not a tree"), "runs[0].ktap"),
        (
            "metrics",
            lambda run: run["metrics"][0].update(values=[1, 2]),
            "runs[0].metrics[0].values",
        ),
        (
            "durations",
            lambda run: run.update(durations={"build": "fast"}),
            "runs[0].durations.build",
        ),
        ("arch", lambda run: run.pop("arch"), "runs[0].arch"),
    ],
    ids=["status", "ktap", "metric-values", "duration", "missing-arch"],
)
def test_compare_on_malformed_results_names_file_and_field(
    tmp_path: Path,
    field: str,
    damage,
    named: str,  # type: ignore[no-untyped-def]
) -> None:
    a, b = _ab_dirs(tmp_path)
    data = json.loads((b / "results.json").read_text())
    damage(data["runs"][0])
    (b / "results.json").write_text(json.dumps(data))
    cli = kbulk("compare", str(a), str(b))
    assert_no_traceback(cli)
    assert cli.returncode == 10
    assert f"{b / 'results.json'}: {named}" in cli.output


def test_compare_on_a_results_file_that_is_not_json(tmp_path: Path) -> None:
    a, b = _ab_dirs(tmp_path)
    (b / "results.json").write_text('{"schema_version": 2, "runs": [')
    cli = kbulk("compare", str(a), str(b))
    assert_no_traceback(cli)
    assert cli.returncode == 10
    assert f"{b / 'results.json'}: not valid JSON" in cli.output


def test_compare_of_disjoint_arches_is_refused(tmp_path: Path) -> None:
    from runs import BASE, PATCHED, make_run, write_dir

    a = write_dir(tmp_path / "a", [make_run(BASE, filled=900, arch="x86_64")])
    b = write_dir(tmp_path / "b", [make_run(PATCHED, filled=1000, arch="arm64")])
    cli = kbulk("compare", str(a), str(b))
    assert_no_traceback(cli)
    assert cli.returncode == 8
    assert "refusing to compare" in cli.output
    assert "x86_64" in cli.output and "arm64" in cli.output


# --- 12. make failing while configuring -------------------------------------------------


def test_make_failing_while_configuring_is_a_build_failure_with_make_s_error(
    tmp_path: Path,
) -> None:
    """The real kernel tree and make, with flex missing from PATH: `make tinyconfig`
    cannot build scripts/kconfig/conf. That is build_failure with make's first error
    line, not config_error with "0 errors"."""
    from harness.errors import failure
    from harness.kernel.arch import get_arch
    from harness.kernel.build import KernelBuilder
    from harness.kernel.kconfig import ConfigRequest
    from harness.kernel.patches import PatchedTree
    from harness.kernel.source import SourceTree
    from harness.pipeline import check_build

    src = os.environ.get("KBULK_LINUX_SRC")
    if not src or not Path(src, "Makefile").is_file():
        pytest.skip("KBULK_LINUX_SRC: no kernel tree")
    tree_path = Path(src)
    source = SourceTree(tree_path, "7.2.13", "test", "0" * 64)
    tree = PatchedTree(tree_path, source, None, "none")
    work = tmp_path / "work"
    builder = KernelBuilder(tree, get_arch("x86_64"), ConfigRequest("tinyconfig"),
                            tmp_path / "cache", work, jobs=2, use_ccache=False)  # fmt: skip
    path = path_without(tmp_path, "flex", "lex")
    old = os.environ["PATH"]
    os.environ["PATH"] = path
    try:
        result = builder.build()
    finally:
        os.environ["PATH"] = old
    assert not result.ok
    with pytest.raises(Exception) as raised:
        check_build(result)
    found = failure(raised.value)
    assert found.status.value == "build_failure", found.message
    assert "0 errors" not in found.message
    assert "flex" in found.message
    assert "make" in found.message and "tinyconfig" in found.message


# --- bad timeouts and pathological lines, end to end through the CLI ----------------------
# (the unit cases: tests/test_reliability_spec.py::test_spec_timeout_must_be_positive,
#  ::test_cli_timeout_must_be_positive; tests/test_reliability_parse.py, every
#  *_is_linear case and test_line_over_the_cap_is_truncated_with_a_warning)


@pytest.mark.parametrize("value", ["-5", "0", "nan", "inf", "soon"])
def test_bad_timeout_on_the_command_line(tmp_path: Path, value: str) -> None:
    cli = kbulk("run", "--arch", "x86_64", f"--timeout={value}", results=tmp_path / "r")
    assert_no_traceback(cli)
    assert cli.returncode == 2
    assert "positive number of seconds" in cli.output
    assert cli.result_dir is None  # nothing started


@pytest.mark.parametrize("value", ["-1", "0", "'ten'"])
def test_bad_timeout_in_the_run_definition(tmp_path: Path, value: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(DEFAULT_SPEC.replace("  timeout: 1200", f"  timeout: {value}"))
    cli = kbulk("run", "--spec", str(spec), "--arch", "x86_64", results=tmp_path / "r")
    assert_no_traceback(cli)
    assert cli.returncode == 2
    assert f"{spec}:" in cli.output and "timeout" in cli.output


def test_pathological_lines_through_parse(tmp_path: Path) -> None:
    """100 KB of spaces after a result line and a 2 MB line: cut with a warning, parsed."""
    log = tmp_path / "console.log"
    log.write_text(
        "KTAP version 1\n1..2\nok 1 first" + " " * 100_000 + "x\n"
        "# " + "y" * 2_000_000 + "\nok 2 second\n"
    )
    cli = kbulk("parse", str(log), "--json", str(tmp_path / "r.json"))
    assert_no_traceback(cli)
    (run,) = json.loads((tmp_path / "r.json").read_text())["runs"]
    assert run["status"] == "pass"
    assert sum("truncated to 65536" in w for w in run["ktap"]["warnings"]) == 2


def test_build_into_a_full_cache_is_infra_error_naming_the_disk(
    small_fs: Path, tmp_path: Path
) -> None:
    """The build directory (in the cache) on a full filesystem: the host's fault
    (infra_error, "No space left on device" quoted), not the kernel's (build_failure)."""
    from harness.errors import failure
    from harness.kernel.arch import get_arch
    from harness.kernel.build import KernelBuilder
    from harness.kernel.kconfig import ConfigRequest
    from harness.kernel.patches import PatchedTree
    from harness.kernel.source import SourceTree
    from harness.pipeline import check_build

    src = os.environ.get("KBULK_LINUX_SRC")
    if not src or not Path(src, "Makefile").is_file():
        pytest.skip("KBULK_LINUX_SRC: no kernel tree")
    source = SourceTree(Path(src), "7.2.13", "test", "0" * 64)
    tree = PatchedTree(Path(src), source, None, "none")
    work = small_fs / "work"
    builder = KernelBuilder(tree, get_arch("x86_64"), ConfigRequest("tinyconfig"),
                            small_fs / "cache", work, jobs=2, use_ccache=False)  # fmt: skip
    builder.build_dir.mkdir(parents=True)
    fill(small_fs)
    filler = small_fs / "filler"
    os.truncate(filler, filler.stat().st_size - 48 * 1024)  # room for the log, not for make
    with pytest.raises(Exception) as raised:
        check_build(builder.build())
    found = failure(raised.value)
    assert found.status.value == "infra_error", found.message
    assert "No space left on device" in found.message


def test_kvm_probe_records_why_kvm_was_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KVM that aborts QEMU: the probe's verdict quotes QEMU, not "ended with guest_exit"."""
    from harness.boot import accel
    from harness.boot.console import ConsoleResult, ExitReason
    from harness.kernel.arch import get_arch

    def aborting(argv: list[str], log: Path, **kwargs: object) -> ConsoleResult:
        result = ConsoleResult(ExitReason.QEMU_ERROR, ["Linux version 7.2.13"], 0.5)
        result.qemu_exit_signal = 6
        result.qemu_stderr = ["KVM internal error. Suberror: 1", "emulation failure"]
        return result

    monkeypatch.setattr(accel, "run_console", aborting)
    verdict = accel.probe_kvm(get_arch("x86_64"), tmp_path / "bzImage", tmp_path / "cache")
    assert verdict.accel == "tcg"
    assert "QEMU failed (killed by SIGABRT): KVM internal error. Suberror: 1" in verdict.reason


@pytest.mark.e2e
def test_e2e_sigkill_mid_boot_leaves_interrupted_not_no_tests(tmp_path: Path) -> None:
    """SIGKILL (no handler runs) once the guest's init started: results.json says the
    run was interrupted while booting, the console so far is kept, QEMU is gone."""
    import signal
    import time

    root = tmp_path / "results"
    root.mkdir()
    proc = subprocess.Popen(
        [PYTHON, "-m", "harness.cli", "run", "--arch", "x86_64", "--accel", "tcg",
         "--results", str(root)],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    console = None
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and proc.poll() is None:
            logs = list(root.glob("*/x86_64/console.log"))
            if logs and "kbulk-init: start" in logs[0].read_text(errors="replace"):
                console = logs[0]
                break
            time.sleep(0.2)
        assert console is not None, "the guest never reached init"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    data = json.loads((console.parent.parent / "results.json").read_text())
    assert data["meta"]["complete"] is False
    assert data["summary"]["status"] == "infra_error"
    (run,) = data["runs"]
    assert run["message"].startswith("interrupted while booting"), run["message"]
    assert run["console_log"] == "x86_64/console.log"
    assert "kbulk-init: start" in console.read_text(errors="replace")
    time.sleep(1)  # PDEATHSIG is delivered at once; give the kernel a moment to reap
    leftover = [
        p.name for p in Path("/proc").iterdir() if p.name.isdigit()
        and str(console.parent) in _cmdline(p)
    ]  # fmt: skip
    assert not leftover, "QEMU outlived the harness"


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _parse_peak_kib(log: Path) -> int:
    # VmHWM, not ru_maxrss: exec carries the forking process's peak into ru_maxrss.
    code = (
        "import sys; from harness.cli import main; rc = main(sys.argv[1:]); "
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]; "
        "print('MAXRSS', hwm.split()[1], file=sys.stderr); sys.exit(rc)"
    )
    proc = subprocess.run([PYTHON, "-c", code, "parse", str(log)],
                          cwd=REPO_ROOT, capture_output=True, text=True, check=False)  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    return int(proc.stderr.rsplit("MAXRSS", 1)[1].split()[0])


def test_parse_memory_does_not_grow_with_the_console_outside_ktap(tmp_path: Path) -> None:
    """`kbulk parse` re-reads the file for each pass instead of holding it: 2 MB and
    16 MB of boot noise cost the same memory (was: every line held, ~5x the log)."""
    noise = b"[   12.345678] virtio_blk virtio0: [vda] 2048 512-byte logical blocks\n"
    peaks = []
    for megabytes in (2, 16):
        log = tmp_path / f"console-{megabytes}.log"
        log.write_bytes(noise * (megabytes * (1 << 20) // len(noise)))
        peaks.append(_parse_peak_kib(log))
    assert peaks[1] - peaks[0] < 8 * 1024, f"peak RSS {peaks} KiB"
