"""Issue 11, items 10 and 14: run definitions, options and the command line shown.

Every error names the file and line of the mistake and ends without a traceback;
summary.md shows the command line as a shell would need it.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from harness import cli
from harness.record.meta import RunMeta
from harness.record.run import ArchRun
from harness.record.status import RunStatus
from harness.report.summary import render_summary
from harness.spec import SpecError, load_spec


def write(tmp_path: Path, text: str | bytes, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def fragments(tmp_path: Path, *names: str) -> None:
    for name in names:
        (tmp_path / name).write_text("CONFIG_KUNIT=y\n")


# ------------------------------------------------------------------ duplicate keys


def test_duplicate_key_is_rejected_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\nboot:\n  smp: 2\n  memory: 1G\n  smp: 4\n")
    with pytest.raises(SpecError) as e:
        load_spec(path, tmp_path)
    assert str(e.value).startswith(f"{path}:5: ")
    assert "duplicate key 'smp' (first at line 3)" in str(e.value)


def test_duplicate_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "arches: [x86_64]\nname: a\narches: [arm64]\n")
    with pytest.raises(SpecError, match=r"run\.yaml:3: .*duplicate key 'arches'"):
        load_spec(path, tmp_path)


def test_merge_key_override_is_no_duplicate(tmp_path: Path) -> None:
    # "<<" merges are meant to be overridden; only keys written twice are mistakes.
    path = write(tmp_path, "boot:\n  <<: {smp: 2, memory: 2G}\n  smp: 4\n")
    spec = load_spec(path, tmp_path)
    assert (spec.boot.smp, spec.boot.memory) == (4, "2G")


# ---------------------------------------------------------------------- non-UTF-8

NOT_UTF8 = b"name: a\n# caf\xe9 (latin-1)\narches: [x86_64]\n"


def test_non_utf8_spec_is_a_spec_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, NOT_UTF8)
    with pytest.raises(SpecError) as e:
        load_spec(path, tmp_path)
    assert str(e.value) == f"{path}:2: run definition is not UTF-8 text (byte 0xe9 at offset 13)"


@pytest.mark.parametrize("command", [["source"], ["series-check", "--checkpatch-only"]])
def test_non_utf8_spec_in_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    # `run` caught the UnicodeDecodeError as a ValueError; `source` and `series-check`
    # let it out as a traceback.
    path = write(tmp_path, NOT_UTF8)
    status = cli.main([*command, "--spec", str(path)])
    assert status in (2, 8)
    err = capsys.readouterr().err
    assert f"{path}:2: run definition is not UTF-8 text" in err


# ------------------------------------------------------------------ fragments


def test_missing_series_fragment_is_blamed_on_its_own_line(tmp_path: Path) -> None:
    fragments(tmp_path, "base.config")
    path = write(
        tmp_path,
        "config:\n"
        "  fragments:\n"
        "    - base.config\n"
        "  series_fragments:\n"
        "    - base.config\n"
        "    - gone.config\n",
    )
    with pytest.raises(SpecError) as e:
        load_spec(path, tmp_path)
    # Was: "run.yaml:2: fragments: ..." (the first key of config:, not the culprit).
    assert str(e.value) == (
        f"{path}:6: series_fragments: config fragment {tmp_path / 'gone.config'} does not exist"
    )


def test_missing_arch_fragment_names_the_arch(tmp_path: Path) -> None:
    path = write(tmp_path, "config:\n  arch_fragments:\n    arm64: [a.config]\n")
    with pytest.raises(SpecError) as e:
        load_spec(path, tmp_path)
    assert str(e.value).startswith(f"{path}:3: arm64: config fragment ")


def test_fragment_that_is_a_directory_says_so(tmp_path: Path) -> None:
    (tmp_path / "frags").mkdir()
    path = write(tmp_path, "config:\n  fragments: [frags]\n")
    with pytest.raises(SpecError) as e:
        load_spec(path, tmp_path)
    assert str(e.value) == (
        f"{path}:2: fragments: config fragment {tmp_path / 'frags'} is a directory, not a file"
    )


def test_good_fragments_still_load(tmp_path: Path) -> None:
    fragments(tmp_path, "a.config", "b.config", "c.config")
    path = write(
        tmp_path,
        "config:\n  fragments: [a.config]\n  series_fragments: [b.config]\n"
        "  arch_fragments:\n    x86_64: [c.config]\n",
    )
    spec = load_spec(path, tmp_path)
    assert spec.fragments == [tmp_path / "a.config"]
    assert spec.series_fragments == [tmp_path / "b.config"]
    assert spec.arch_fragments == {"x86_64": [tmp_path / "c.config"]}


# -------------------------------------------------------------------- timeouts


@pytest.mark.parametrize("key", ["timeout", "inactivity_timeout"])
@pytest.mark.parametrize("value", ["-5", "0", ".nan", ".inf"])
def test_spec_timeout_must_be_positive(tmp_path: Path, key: str, value: str) -> None:
    # A negative timeout was accepted and reported as "hang at boot".
    path = write(tmp_path, f"boot:\n  memory: 1G\n  {key}: {value}\n")
    with pytest.raises(SpecError, match=rf"run\.yaml:3: {key}: .* seconds; a timeout must be"):
        load_spec(path, tmp_path)


@pytest.mark.parametrize("value", ["-5", "0", "nan", "inf", "soon"])
@pytest.mark.parametrize("command", ["run", "ab"])
def test_cli_timeout_must_be_positive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    command: str, value: str,
) -> None:  # fmt: skip
    # "--timeout 0" was silently ignored (falsy), "--timeout -5" became a false hang.
    def no_run(*args: object, **kwargs: object) -> None:
        pytest.fail(f"--timeout={value} was accepted: a run started")

    monkeypatch.setattr(cli, "Pipeline", no_run)  # never a real build from this test
    with pytest.raises(SystemExit) as e:
        cli.main([command, f"--timeout={value}", "--results", str(tmp_path)])
    assert e.value.code == 2  # usage error, before anything is fetched or built
    assert f"argument --timeout: {value}: must be a positive number of seconds" in (
        capsys.readouterr().err
    )


def test_cli_timeout_overrides_the_spec() -> None:
    args = cli.build_parser().parse_args(["run", "--timeout", "0.5"])
    opts = cli._run_options(args, cli.Reporter())
    assert opts is not None and opts.spec.boot.timeout == 0.5


# ------------------------------------------------------------ item 14: summary.md


def test_summary_shows_a_command_line_a_shell_can_run() -> None:
    argv = ["kbulk", "run", "--suites", "page_alloc_bulk*", "--cmdline", "dyndbg=file x.c +p"]
    run = ArchRun("x86_64", "k", RunStatus.PASS, message="ok")
    text = render_summary([run], RunMeta(command_line=argv))
    line = next(t for t in text.splitlines() if t.startswith("- command: "))
    shown = line.removeprefix("- command: ").strip("`")
    assert shlex.split(shown) == argv
    assert "'page_alloc_bulk*'" in shown


def test_summary_command_with_backticks_stays_one_code_span() -> None:
    argv = ["kbulk", "run", "--cmdline", "a`b"]
    run = ArchRun("x86_64", "k", RunStatus.PASS, message="ok")
    line = next(
        t for t in render_summary([run], RunMeta(command_line=argv)).splitlines() if "command" in t
    )
    assert line == "- command: ``kbulk run --cmdline 'a`b'``"
