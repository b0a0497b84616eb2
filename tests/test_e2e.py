"""End to end: real Linux 7.2 source, real builds, real QEMU boots.

Slow on a cold cache (the two kernel builds dominate); the builds are shared
by every test here through the harness's build cache, so only the first test
pays for them. Deselect with `-m 'not e2e'`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from junitparser import JUnitXml

from harness.paths import REPO_ROOT

pytestmark = pytest.mark.e2e

RUN_TIMEOUT = 3600  # seconds for one harness invocation (cold builds included)


@dataclass
class Invocation:
    returncode: int
    output: str
    result_dir: Path | None

    @property
    def results(self) -> dict:
        assert self.result_dir is not None, self.output
        return json.loads((self.result_dir / "results.json").read_text())

    def run_for(self, arch: str) -> dict:
        runs = [r for r in self.results["runs"] if r["arch"] == arch]
        assert len(runs) == 1, self.output
        return runs[0]


def kbulk(results_root: Path, *args: str, timeout: float = RUN_TIMEOUT) -> Invocation:
    results_root.mkdir(parents=True, exist_ok=True)
    before = set(results_root.iterdir())
    cmd = [sys.executable, "-m", "harness.cli", *args]
    if args and args[0] == "run":
        cmd += ["--results", str(results_root)]
    proc = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    # Shown by pytest when an assertion fails: what the harness said.
    output = proc.stdout + proc.stderr
    print(output)
    created = sorted(set(results_root.iterdir()) - before)
    return Invocation(proc.returncode, output, created[-1] if created else None)


def leaf_tests(node: dict, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    here = (*path, node["name"]) if path or node["name"] != "main" else ()
    if not node.get("subtests"):
        return [(here, node["status"])]
    out = []
    for child in node["subtests"]:
        out += leaf_tests(child, here)
    return out


def qemu_processes_using(path_fragment: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in cmdline and path_fragment in cmdline:
            pids.append(int(proc.name))
    return pids


@pytest.fixture(scope="session")
def results_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("results")


@pytest.fixture(scope="session")
def main_job(results_root: Path) -> Invocation:
    """The README's main job: default run definition, both architectures."""
    return kbulk(results_root / "main", "run")


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_main_job_passes_kunit_on_both_arches(main_job: Invocation, arch: str) -> None:
    assert main_job.returncode == 0, main_job.output
    run = main_job.run_for(arch)
    assert run["status"] == "pass", run["message"]
    assert run["accelerator"] in ("kvm", "tcg")
    assert run["build"]["image_sha256"]
    leaves = leaf_tests(run["ktap"]["root"])
    bulk = [(p, s) for p, s in leaves if p and p[0].startswith("page_alloc_bulk")]
    assert len(bulk) >= 10, leaves
    assert all(s in ("pass", "skip", "xfail") for _, s in bulk), bulk
    assert sum(s == "pass" for _, s in bulk) >= 10
    console = main_job.result_dir / run["console_log"]
    assert "kbulk-init: done" in console.read_text()


def test_main_job_junit_has_every_case(main_job: Invocation) -> None:
    assert main_job.result_dir is not None, main_job.output
    xml = JUnitXml.fromfile(str(main_job.result_dir / "junit.xml"))
    cases = [(suite.name, case.name) for suite in xml for case in suite]
    for arch in ("x86_64", "arm64"):
        run = main_job.run_for(arch)
        bulk = [
            p for p, _ in leaf_tests(run["ktap"]["root"]) if p and p[0].startswith("page_alloc")
        ]
        junit = [c for c in cases if c[0].startswith(f"{arch}.page_alloc_bulk")]
        assert len(junit) == len(bulk), (junit, bulk)


def test_parse_of_saved_console_agrees_with_run(main_job: Invocation, tmp_path: Path) -> None:
    run = main_job.run_for("x86_64")
    console = main_job.result_dir / run["console_log"]
    out_json, out_junit = tmp_path / "r.json", tmp_path / "j.xml"
    parsed = kbulk(
        tmp_path, "parse", str(console), "--json", str(out_json), "--junit", str(out_junit)
    )
    assert parsed.returncode == 0, parsed.output
    data = json.loads(out_json.read_text())
    assert leaf_tests(data["runs"][0]["ktap"]["root"]) == leaf_tests(run["ktap"]["root"])
    assert out_junit.stat().st_size > 0


def test_kernel_crash_is_a_classified_result_naming_the_test(
    main_job: Invocation, results_root: Path
) -> None:
    # Same configuration as the main job, so no rebuild: kunit's own
    # kunit_fault test dereferences NULL, oops=panic turns that into a panic.
    crash = kbulk(
        results_root / "crash",
        "run", "--arch", "x86_64", "--no-modules",
        "--suites", "kunit_fault", "--cmdline", "oops=panic",
    )  # fmt: skip
    assert crash.returncode == 3, crash.output
    run = crash.run_for("x86_64")
    assert run["status"] == "crash"
    assert run["crashes"], run
    first = run["crashes"][0]
    assert first["kind"] == "panic"
    assert first["test"].startswith("kunit_fault"), first
    assert "NULL pointer" in first["title"] or "Oops" in first["title"], first
    console = crash.result_dir / run["console_log"]
    assert "Kernel panic" in console.read_text()
    xml = JUnitXml.fromfile(str(crash.result_dir / "junit.xml"))
    errors = [
        case
        for suite in xml
        for case in suite
        if case.result and "rror" in type(case.result[0]).__name__
    ]
    assert errors, "the crashed test must be a JUnit error"
    image = run["build"]["image"]
    assert not qemu_processes_using(image)


def test_hang_is_a_timeout_and_qemu_is_gone(main_job: Invocation, results_root: Path) -> None:
    # The stress module alone runs for several seconds: a 5 s deadline
    # always expires while it runs, exactly as a hung guest would.
    hang = kbulk(results_root / "hang", "run", "--arch", "arm64", "--timeout", "5")
    assert hang.returncode == 4, hang.output
    run = hang.run_for("arm64")
    assert run["status"] == "timeout"
    assert "overall timeout" in run["message"]
    assert run["boot"]["exit_reason"] == "timeout"
    assert not qemu_processes_using(run["build"]["image"])


def test_patch_that_does_not_apply_names_patch_and_file(results_root: Path) -> None:
    bad = REPO_ROOT / "tests" / "data" / "bad-series"
    result = kbulk(results_root / "bad-series", "run", "--arch", "x86_64", "--series", str(bad))
    assert result.returncode == 7, result.output
    run = result.run_for("x86_64")
    assert run["status"] == "patch_failure"
    assert "0001-does-not-apply.patch" in run["message"]
    assert "mm/page_alloc.c: hunk #1 FAILED" in run["message"]


def test_dropped_config_symbol_is_a_config_error(results_root: Path, tmp_path: Path) -> None:
    fragment = tmp_path / "impossible.config"
    fragment.write_text("CONFIG_KBULK_NO_SUCH_SYMBOL=y\n")
    spec = tmp_path / "spec.yaml"
    default = (REPO_ROOT / "configs" / "default.yaml").read_text()
    spec.write_text(
        default.replace("    - configs/base.config", f"    - configs/base.config\n    - {fragment}")
    )
    result = kbulk(
        results_root / "cfg", "run", "--spec", str(spec), "--arch", "x86_64", "--no-series"
    )
    assert result.returncode == 6, result.output
    run = result.run_for("x86_64")
    assert run["status"] == "config_error"
    assert "CONFIG_KBULK_NO_SUCH_SYMBOL=y" in run["message"]
    assert str(fragment) in run["message"]


def test_sigterm_during_boot_kills_qemu_and_keeps_the_log(
    main_job: Invocation, results_root: Path
) -> None:
    root = results_root / "sigterm"
    root.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "--arch", "x86_64", "--results", str(root)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        console = None
        while time.monotonic() < deadline:
            logs = list(root.glob("*/x86_64/console.log"))
            if logs and "kbulk-init: start" in logs[0].read_text(errors="replace"):
                console = logs[0]
                break
            time.sleep(0.5)
        assert console is not None, "the guest never reached init"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    result_dir = console.parent.parent
    data = json.loads((result_dir / "results.json").read_text())
    assert data["meta"]["complete"] is False
    (run,) = data["runs"]
    assert run["status"] == "infra_error" and "interrupted" in run["message"]
    assert not qemu_processes_using(run["build"]["image"]), "QEMU outlived the harness"
    assert "kbulk-init: start" in console.read_text(errors="replace")


@pytest.fixture(scope="session")
def callers_job(results_root: Path) -> Invocation:
    """Kernel tests that reach converted callers: kunit_iov_iter and test_vmalloc."""
    return kbulk(results_root / "callers", "run", "--spec", "configs/callers.yaml")


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_converted_callers_pass_their_kernel_tests(callers_job: Invocation, arch: str) -> None:
    run = callers_job.run_for(arch)
    assert run["status"] == "pass", run["message"]
    leaves = dict(leaf_tests(run["ktap"]["root"]))
    iov = {p: s for p, s in leaves.items() if p[0] == "iov_iter"}
    vmalloc = {p: s for p, s in leaves.items() if p[0] == "test_vmalloc"}
    # kunit_iov_iter builds its buffers with alloc_pages_bulk(GFP_KERNEL)
    assert len(iov) >= 10 and all(s in ("pass", "skip") for s in iov.values()), iov
    # run_test_mask=3083 in callers.yaml: five test_vmalloc cases
    assert sorted(p[1] for p in vmalloc) == [
        "fix_size_alloc_test",
        "full_fit_alloc_test",
        "no_block_alloc_test",
        "random_size_alloc_test",
        "vm_map_ram_test",
    ], vmalloc
    assert all(s == "pass" for s in vmalloc.values()), vmalloc
    assert any(p[0].startswith("page_alloc_bulk") for p in leaves)


def test_kunit_at_patch_6_documents_the_old_semantics(results_root: Path) -> None:
    """Patch 6 adds the suites before patch 7 changes the semantics: the cases
    for the new semantics are expected failures there, not failures."""
    job = kbulk(results_root / "upto6", "run", "--upto", "6", "--arch", "x86_64", "--no-modules")
    assert job.returncode == 0, job.output
    run = job.run_for("x86_64")
    assert run["kernel"].startswith("v7.2") and "+series-" in run["kernel"]
    bulk = {p: s for p, s in leaf_tests(run["ktap"]["root"]) if p[0].startswith("page_alloc_bulk")}
    statuses = sorted(set(bulk.values()))
    assert "xfail" in statuses and "pass" in statuses, bulk
    assert set(statuses) <= {"pass", "xfail", "skip"}, bulk
    # patch 12 adds the order/folio suite: not there yet
    assert not any(p[0] == "page_alloc_bulk_order" for p in bulk)


def test_ab_writes_its_report(results_root: Path) -> None:
    """`kbulk ab` alone produces the comparison: report.md with the headline
    figures, instruction-counted times (-icount), both kernels' image hashes."""
    root = results_root / "ab"
    job = kbulk(root, "ab", "--spec", "configs/ab.yaml", "--reps", "1", "--arch", "x86_64",
                "--results", str(root))  # fmt: skip
    assert job.returncode == 0, job.output
    runs = job.results["runs"]
    assert sorted(r["ab"]["variant"] for r in runs) == ["baseline", "patched"]
    assert all(r["accelerator"] == "tcg-icount" and r["status"] == "pass" for r in runs)
    report = (job.result_dir / "report.md").read_text()
    assert "## Headline figures" in report and "instruction counts" in report
    assert "order-0 bulk, batch 64" in report
    assert all(r["build"]["image_sha256"] in report for r in runs)
    assert (job.result_dir / "report.html").is_file()
    assert json.loads((job.result_dir / "compare.json").read_text())["command_line"]
