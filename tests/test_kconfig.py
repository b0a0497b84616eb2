from pathlib import Path

import pytest

from harness.kernel.kconfig import ConfigRequest, KconfigError, parse_dotconfig, verify


def test_fragment_lines_and_overrides(tmp_path: Path) -> None:
    frag = tmp_path / "a.config"
    frag.write_text('# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_S="x y"\nCONFIG_A=m\n')
    req = ConfigRequest("tinyconfig")
    req.add_fragment(frag)
    eff = req.effective()
    assert eff["CONFIG_A"].value == "m"
    assert eff["CONFIG_A"].origin == f"{frag}:5"
    assert eff["CONFIG_B"].value == "n"
    assert 'CONFIG_S="x y"' in req.fragment_text()
    assert "# CONFIG_B is not set" in req.fragment_text()


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    frag = tmp_path / "bad.config"
    frag.write_text("CONFIG_A=y\nCONFIG_B y\n")
    with pytest.raises(KconfigError, match=r"bad\.config:2: not a Kconfig line"):
        ConfigRequest("tinyconfig").add_fragment(frag)


def test_missing_fragment_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KconfigError, match=r"nope\.config"):
        ConfigRequest("tinyconfig").add_fragment(tmp_path / "nope.config")


def test_verify_reports_dropped_and_changed_symbols() -> None:
    req = ConfigRequest("tinyconfig")
    req.add_fragment_text("CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_D=y\n", "f")
    dotconfig = "CONFIG_A=y\nCONFIG_B=m\nCONFIG_C=y\n"
    problems = {m.requirement.symbol: m.actual for m in verify(req, dotconfig)}
    assert problems == {"CONFIG_B": "m", "CONFIG_C": "y", "CONFIG_D": "n"}
    assert "CONFIG_D=y (from f:4) became n" in [str(m) for m in verify(req, dotconfig)]


def test_digest_changes_with_content_not_comments() -> None:
    a, b, c = (ConfigRequest("tinyconfig") for _ in range(3))
    a.add_fragment_text("CONFIG_A=y\n", "x")
    b.add_fragment_text("# hello\nCONFIG_A=y\n", "y")
    c.add_fragment_text("CONFIG_A=m\n", "x")
    assert a.digest == b.digest != c.digest


def test_parse_dotconfig() -> None:
    assert parse_dotconfig("CONFIG_X=y\n# CONFIG_Y is not set\nfoo\n") == {
        "CONFIG_X": "y",
        "CONFIG_Y": "n",
    }
