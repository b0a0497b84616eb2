"""KernelBuilder's make lines, with make itself stubbed at the process boundary (_run)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from harness.kernel.arch import ARCHES
from harness.kernel.build import BuildError, KernelBuilder, LogScan
from harness.kernel.kconfig import ConfigRequest
from harness.kernel.patches import PatchedTree
from harness.kernel.source import SourceTree


def builder(tmp_path: Path, arch: str = "x86_64") -> KernelBuilder:
    work = tmp_path / "work"
    tree_path = work / "key" / "linux"
    tree_path.mkdir(parents=True)
    source = SourceTree(tree_path, "7.2.13", "test", "0" * 64)
    tree = PatchedTree(tree_path, source, None, "none")
    return KernelBuilder(tree, ARCHES[arch], ConfigRequest("tinyconfig"), tmp_path, work,
                         jobs=3, use_ccache=False)  # fmt: skip


def stub_make(
    monkeypatch: pytest.MonkeyPatch, b: KernelBuilder, dotconfig: str, rc: int = 0
) -> list[list[str]]:
    """Configuring writes ``dotconfig``; every make run is recorded and makes the image."""
    calls: list[list[str]] = []

    def configure(log: Path, force: bool = False) -> list[object]:
        (b.build_dir / ".config").write_text(dotconfig)
        return []

    def run(args: list[str], log: Path, on_line: object = None) -> tuple[int, LogScan]:
        calls.append(args)
        image = b.build_dir / b.arch.image
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(b"image")
        return rc, LogScan()

    monkeypatch.setattr(b, "configure", configure)
    monkeypatch.setattr(b, "_run", run)
    return calls


@pytest.mark.parametrize(("dotconfig", "modules"), [("CONFIG_MODULES=y\n", True), ("", False)])
def test_reproducer_is_the_make_line_that_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dotconfig: str, modules: bool
) -> None:
    b = builder(tmp_path)
    calls = stub_make(monkeypatch, b, dotconfig)
    result = b.build()
    assert result.ok
    assert calls == [result.make_argv]  # recorded after configuring: what really ran
    targets = ["bzImage", "vmlinux", *(["modules"] if modules else [])]
    assert result.make_argv[-len(targets) :] == targets
    assert result.make_argv == b.make_args(*b.kernel_targets())
    assert "-j3" in result.make_argv and f"O={b.build_dir}" in result.make_argv
    assert shlex.split(result.reproducer) == result.make_argv


def test_failed_configuration_has_no_reproducer_and_is_a_config_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = builder(tmp_path)

    def configure(log: Path, force: bool = False) -> list[object]:
        raise BuildError("configuring failed at `make tinyconfig`")

    monkeypatch.setattr(b, "configure", configure)
    result = b.build()
    assert (result.ok, result.stage, result.make_argv) == (False, "config", [])
    assert "tinyconfig" in result.first_error


def test_make_failure_keeps_the_line_and_the_first_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = builder(tmp_path, "arm64")
    calls = stub_make(monkeypatch, b, "CONFIG_MODULES=y\n", rc=2)
    result = b.build()
    assert not result.ok and result.stage == "build"
    assert result.first_error == "make exited with 2"
    assert calls == [result.make_argv] and result.make_argv[-3:] == ["Image", "vmlinux", "modules"]
