from pathlib import Path

import pytest

from harness.paths import REPO_ROOT
from harness.spec import SpecError, load_spec


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_default_spec_loads() -> None:
    spec = load_spec(REPO_ROOT / "configs" / "default.yaml", REPO_ROOT)
    assert spec.arches == ["x86_64", "arm64"]
    assert spec.debian is not None and spec.debian.package == "linux-source-7.2"
    assert spec.series == REPO_ROOT / "patches" / "v7.2"
    assert all(f.is_file() for f in spec.fragments)


def test_unknown_key_names_file_line_and_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nboot:\n  memory: 1G\n  smpp: 2\n")
    with pytest.raises(SpecError) as e:
        load_spec(path, tmp_path)
    assert f"{path}:4: smpp: unknown key" in str(e.value)
    assert "smp" in str(e.value)


def test_wrong_type(tmp_path: Path) -> None:
    path = write(tmp_path, "boot:\n  smp: two\n")
    with pytest.raises(SpecError, match=r"run\.yaml:2: smp: expected int"):
        load_spec(path, tmp_path)


def test_unknown_arch(tmp_path: Path) -> None:
    path = write(tmp_path, "arches: [x86_64, riscv]\n")
    with pytest.raises(SpecError, match=r":1: arches: unknown architecture 'riscv'"):
        load_spec(path, tmp_path)


def test_missing_fragment(tmp_path: Path) -> None:
    path = write(tmp_path, "config:\n  fragments: [nope.config]\n")
    with pytest.raises(SpecError, match=r"nope\.config does not exist"):
        load_spec(path, tmp_path)


def test_invalid_yaml_has_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\narches: [x86_64\n")
    with pytest.raises(SpecError, match=r"run\.yaml:\d+: invalid YAML"):
        load_spec(path, tmp_path)


def test_modules_and_source(tmp_path: Path) -> None:
    (tmp_path / "kselftests").mkdir()
    path = write(
        tmp_path,
        "source:\n  debian: {package: p, version: 1-1, suite: sid}\n"
        "modules:\n  load:\n    - kbulk_bench\n    - {name: kbulk_stress, params: [threads=2]}\n",
    )
    spec = load_spec(path, tmp_path)
    assert spec.debian is not None and spec.debian.version == "1-1"
    assert [(m.name, m.params) for m in spec.modules] == [
        ("kbulk_bench", []),
        ("kbulk_stress", ["threads=2"]),
    ]
    assert spec.modules_dir == tmp_path / "kselftests"


def test_debian_needs_version(tmp_path: Path) -> None:
    path = write(tmp_path, "source:\n  debian:\n    package: p\n    suite: sid\n")
    with pytest.raises(SpecError, match="needs 'version'"):
        load_spec(path, tmp_path)


def test_icount_shift_is_checked(tmp_path: Path) -> None:
    assert load_spec(write(tmp_path, "boot:\n  icount: 0\n"), tmp_path).boot.icount == 0
    assert load_spec(write(tmp_path, "boot:\n  smp: 1\n"), tmp_path).boot.icount is None
    with pytest.raises(SpecError, match=r"run\.yaml:3: icount: shift 11 out of range"):
        load_spec(write(tmp_path, "boot:\n  smp: 1\n  icount: 11\n"), tmp_path)


def test_every_shipped_run_definition_loads() -> None:
    for path in sorted((REPO_ROOT / "configs").glob("*.yaml")):
        spec = load_spec(path, REPO_ROOT)
        assert spec.arches and spec.debian is not None, path


def test_module_memcg_limit(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "modules:\n  load:\n    - {name: kbulk_memcg, memcg: {max: 64M}}\n"
        "    - {name: kbulk_bench, memcg: {max: 2097152}}\n    - kbulk_stress\n",
    )
    spec = load_spec(path, tmp_path)
    assert [m.memcg.max_bytes if m.memcg else None for m in spec.modules] == [
        64 << 20,
        2 << 20,
        None,
    ]


@pytest.mark.parametrize(
    ("memcg", "message"),
    [
        ("{max: lots}", r":3: max: 'lots' is not a size; use bytes or K/M/G"),
        ("{max: 4K}", r":3: max: '4K' is below 1M"),
        ("{limit: 64M}", r":3: limit: unknown key; allowed here: max"),
        ("{}", r":3: memcg needs 'max'"),
        ("64M", r":3: memcg: expected a mapping"),
    ],
)
def test_module_memcg_errors_name_the_line(tmp_path: Path, memcg: str, message: str) -> None:
    path = write(tmp_path, f"modules:\n  load:\n    - {{name: kbulk_memcg, memcg: {memcg}}}\n")
    with pytest.raises(SpecError, match=message):
        load_spec(path, tmp_path)
