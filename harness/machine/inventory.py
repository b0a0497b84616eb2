"""Machine inventory: a YAML file with one entry per machine -> typed Machine records.

Errors name the file and the line, like the run definitions do. Commands
(console, power-cycle, power-off) are argv lists: the harness runs them
without a shell and never builds them from data it received.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from harness.kernel.arch import ARCHES


class InventoryError(ValueError):
    pass


class BootMethod(StrEnum):
    KEXEC = "kexec"  # load the test kernel with kexec, no boot entry touched
    ONE_SHOT = "one-shot"  # GRUB's one-shot entry (next_entry), see harness.machine.oneshot


@dataclass(frozen=True)
class Machine:
    name: str
    arch: str
    host: str
    port: int
    user: str
    key_file: Path
    host_key: str  # "ssh-ed25519 AAAA..." as in known_hosts, without the host name
    boot: BootMethod = BootMethod.KEXEC
    console: tuple[str, ...] = ()  # prints the machine's serial console on stdout
    power_cycle: tuple[str, ...] = ()
    power_off: tuple[str, ...] = ()
    workdir: str = "/var/tmp/kbulk"  # the only place the harness writes on the machine
    source: str = ""  # "file:line" of the entry, for messages


class _Map(dict[str, Any]):
    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    result = _Map()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        result[str(key)] = loader.construct_object(value_node, deep=True)
        result.key_lines[str(key)] = key_node.start_mark.line + 1
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

_REQUIRED = ("name", "arch", "host", "user", "key_file", "host_key")
_ALLOWED = {*_REQUIRED, "port", "boot", "console", "power_cycle", "power_off", "workdir"}
_HOST_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ssh-rsa")


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: _Map, key: str | None, message: str) -> InventoryError:
        line = where.key_lines.get(key, where.line) if key else where.line
        return InventoryError(f"{self.path}:{line}: {message}")

    def string(self, entry: _Map, key: str) -> str:
        value = entry[key]
        if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
            raise self.fail(entry, key, f"{key} must be a non-empty string")
        return str(value)

    def argv(self, entry: _Map, key: str) -> tuple[str, ...]:
        if key not in entry:
            return ()
        value = entry[key]
        if not isinstance(value, list) or not value:
            raise self.fail(
                entry, key, f"{key} must be a non-empty list of arguments (argv), not a string"
            )
        for item in value:
            if not isinstance(item, str | int) or isinstance(item, bool):
                raise self.fail(entry, key, f"{key}: every argument must be a string")
        return tuple(str(item) for item in value)

    def machine(self, entry: Any, parent: _Map, index: int) -> Machine:
        if not isinstance(entry, _Map):
            raise self.fail(parent, "machines", f"machines[{index}] must be a mapping")
        unknown = sorted(set(entry) - _ALLOWED)
        if unknown:
            raise self.fail(
                entry,
                unknown[0],
                f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(_ALLOWED))}",
            )
        for key in _REQUIRED:
            if key not in entry:
                raise self.fail(entry, None, f"machine entry lacks {key!r}")
        name = self.string(entry, "name")
        arch = self.string(entry, "arch")
        if arch not in ARCHES:
            raise self.fail(entry, "arch", f"arch {arch!r}; known: {', '.join(sorted(ARCHES))}")
        port = entry.get("port", 22)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise self.fail(entry, "port", f"port must be an integer 1..65535, not {port!r}")
        host_key = self.string(entry, "host_key").strip()
        parts = host_key.split()
        if len(parts) < 2 or parts[0] not in _HOST_KEY_TYPES:
            raise self.fail(
                entry,
                "host_key",
                "host_key must be '<type> <base64>' as in known_hosts "
                f"(types: {', '.join(_HOST_KEY_TYPES)}); get it with ssh-keyscan and check "
                "it on the machine's console",
            )
        boot_text = self.string(entry, "boot") if "boot" in entry else BootMethod.KEXEC.value
        try:
            boot = BootMethod(boot_text)
        except ValueError:
            allowed = ", ".join(m.value for m in BootMethod)
            raise self.fail(entry, "boot", f"boot {boot_text!r}; allowed: {allowed}") from None
        key_file = Path(self.string(entry, "key_file")).expanduser()
        if not key_file.is_absolute():
            key_file = (self.path.parent / key_file).resolve()
        workdir = self.string(entry, "workdir") if "workdir" in entry else "/var/tmp/kbulk"
        if not workdir.startswith("/") or workdir.rstrip("/") in ("", "/tmp", "/var/tmp"):
            raise self.fail(entry, "workdir", "workdir must be an absolute directory of its own")
        return Machine(
            name=name,
            arch=arch,
            host=self.string(entry, "host"),
            port=port,
            user=self.string(entry, "user"),
            key_file=key_file,
            host_key=" ".join(parts[:2]),
            boot=boot,
            console=self.argv(entry, "console"),
            power_cycle=self.argv(entry, "power_cycle"),
            power_off=self.argv(entry, "power_off"),
            workdir=workdir.rstrip("/"),
            source=f"{self.path}:{entry.line}",
        )


def load_inventory(path: Path) -> dict[str, Machine]:
    """Read an inventory file: ``machines:`` followed by a list of machine entries."""
    try:
        text = path.read_text()
    except OSError as e:
        raise InventoryError(f"{path}: cannot read the inventory: {e.strerror}") from e
    try:
        data = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise InventoryError(f"{where}: not valid YAML: {getattr(e, 'problem', e)}") from e
    reader = _Reader(path)
    if not isinstance(data, _Map) or "machines" not in data:
        raise InventoryError(f"{path}:1: the inventory must be a mapping with a 'machines' list")
    unknown = sorted(set(data) - {"machines"})
    if unknown:
        raise reader.fail(data, unknown[0], f"unknown key {unknown[0]!r}; allowed: machines")
    entries = data["machines"]
    if not isinstance(entries, list) or not entries:
        raise reader.fail(data, "machines", "machines must be a non-empty list")
    machines: dict[str, Machine] = {}
    for index, entry in enumerate(entries):
        machine = reader.machine(entry, data, index)
        if machine.name in machines:
            raise reader.fail(
                entry,
                "name",
                f"machine {machine.name!r} is already defined at {machines[machine.name].source}",
            )
        machines[machine.name] = machine
    return machines


def find_machine(path: Path, name: str) -> Machine:
    machines = load_inventory(path)
    if name not in machines:
        raise InventoryError(f"{path}: no machine named {name!r}; known: {', '.join(machines)}")
    return machines[name]
