"""Inventory parsing: typed machines, errors that name file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.machine.inventory import BootMethod, InventoryError, find_machine, load_inventory

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIbz8uqVyI9ZVhBq9GBkl5yL0W5uWkH4n2KLG8VJ7Ggc"

GOOD = f"""\
machines:
  - name: lab1
    arch: x86_64
    host: 10.0.0.5
    port: 2222
    user: root
    key_file: keys/lab1
    host_key: "{KEY} root@lab1"
    boot: kexec
    console: [conserver-client, -q, lab1]
    power_cycle: [ipmitool, -H, lab1-bmc, chassis, power, cycle]
  - name: lab2
    arch: arm64
    host: lab2.example
    user: kbulk
    key_file: /etc/kbulk/lab2
    host_key: {KEY}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "machines.yaml"
    path.write_text(text)
    return path


def test_good_inventory(tmp_path: Path) -> None:
    machines = load_inventory(write(tmp_path, GOOD))
    lab1 = machines["lab1"]
    assert lab1.port == 2222 and lab1.arch == "x86_64" and lab1.boot is BootMethod.KEXEC
    assert lab1.key_file == tmp_path / "keys" / "lab1"
    assert lab1.host_key == KEY  # the comment is dropped
    assert lab1.console == ("conserver-client", "-q", "lab1")
    assert lab1.power_cycle[-1] == "cycle"
    assert lab1.source == f"{tmp_path / 'machines.yaml'}:2"
    lab2 = machines["lab2"]
    assert (lab2.port, lab2.console, lab2.power_cycle) == (22, (), ())
    assert lab2.workdir == "/var/tmp/kbulk"
    assert find_machine(tmp_path / "machines.yaml", "lab2").user == "kbulk"


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("    port: 2222", "    port: twenty", 5, "port must be an integer"),
        ("    arch: arm64", "    arch: riscv", 13, "arch 'riscv'"),
        ("    boot: kexec", "    boot: pxe", 9, "boot 'pxe'; allowed: kexec, one-shot"),
        (
            "    console: [conserver-client, -q, lab1]",
            "    console: conserver-client -q lab1",
            10,
            "list of arguments",
        ),
        (f"    host_key: {KEY}\n", "    host_key: AAAA\n", 17, "host_key must be"),
        ("    user: kbulk", "    usr: kbulk", 15, "unknown key 'usr'"),
        ("  - name: lab2", "  - name: lab1", 12, "already defined at"),
    ],
)
def test_errors_name_file_and_line(
    tmp_path: Path, old: str, new: str, line: int, message: str
) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(InventoryError) as error:
        load_inventory(path)
    assert str(error.value).startswith(f"{path}:{line}: "), error.value
    assert message in str(error.value)


def test_missing_key_and_bad_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("    user: root\n", ""))
    with pytest.raises(InventoryError, match=r"machines.yaml:2: machine entry lacks 'user'"):
        load_inventory(path)
    path = write(tmp_path, "machines:\n  - name: [unclosed\n")
    with pytest.raises(InventoryError, match=r"machines.yaml:\d+: not valid YAML"):
        load_inventory(path)
    with pytest.raises(InventoryError, match="no machine named 'lab9'"):
        find_machine(write(tmp_path, GOOD), "lab9")
