"""YAML run definitions -> typed RunSpec.

Every error names the file, the line and the key, and says what is allowed,
so a typo in a run definition is a one-line fix rather than a traceback.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.analysis.module_metrics import DeclaredMetric, MetricRule
from harness.boot import numa
from harness.boot.guest.mempolicy import MemPolicy, MemPolicyError, MemPolicyMode
from harness.kernel.arch import ARCHES
from harness.kernel.source import DebianPackage
from harness.spec_modules import ENTRY_KEYS, ModuleSource, check_name, parse_entry_extras


class SpecError(ValueError):
    pass


class _Map(dict[str, Any]):
    """A mapping that remembers the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    pass


class _Seq(list[Any]):
    """A list that remembers the line of each item (1-based)."""

    item_lines: list[int]


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Map:
    # Keys written in this mapping (not merged in with "<<", which may be overridden).
    own = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
    loader.flatten_mapping(node)
    result = _Map()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    written: set[object] = set()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if id(key_node) in own:
            if key in written:  # PyYAML keeps the last silently; a typo would go unseen
                first = result.key_lines.get(str(key))
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {first})",
                    key_node.start_mark,
                )
            written.add(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[str(key)] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> _Seq:
    result = _Seq(loader.construct_object(item, deep=True) for item in node.value)
    result.item_lines = [item.start_mark.line + 1 for item in node.value]
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


@dataclass(frozen=True)
class MemcgLimits:
    """Run a module step in a child cgroup v2 memory cgroup with these limits."""

    max_bytes: int  # memory.max


@dataclass
class ModuleLoad:
    name: str
    params: list[str] = field(default_factory=list)
    # Out-of-tree modules from anywhere (harness/spec_modules.py): None is modules.dir.
    source: ModuleSource | None = None
    load_rc: int = 0  # the load's expected status (test_vmalloc: -EAGAIN once it ran)
    rules: list[MetricRule] = field(default_factory=list)  # regex -> metrics; none: KTAP
    declared: list[DeclaredMetric] = field(default_factory=list)  # the rules' metrics
    where: str = ""  # file:line of the entry
    mempolicy: MemPolicy | None = None  # the task policy its init runs under (NUMA guests)
    memcg: MemcgLimits | None = None


_SIZE_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
MEMCG_MIN_BYTES = 1 << 20  # below this the step's own module load cannot be charged


def parse_size(text: str) -> int | None:
    """'64M' -> bytes (suffixes K, M, G, powers of 1024); None if not a size."""
    text = text.strip().upper().removesuffix("B") or "x"
    suffix = text[-1] if text[-1] in "KMG" else ""
    digits = text[: len(text) - len(suffix)]
    if not digits.isdigit():
        return None
    return int(digits) * _SIZE_SUFFIXES[suffix]


@dataclass
class BootOptions:
    memory: str = "1G"
    smp: int = 2
    cmdline: list[str] = field(default_factory=lambda: ["panic=-1"])
    timeout: float = 1200.0  # overall seconds per boot
    inactivity_timeout: float = 300.0  # seconds without console output
    # QEMU -icount shift: guest time advances 2^shift ns per instruction, so
    # the modules' timings are instruction counts, not host speed (TCG only).
    icount: int | None = None
    # NUMA nodes of the guest (None: QEMU's single node); memory split evenly.
    numa_nodes: int | None = None


TRADEOFF_DIRECTIONS = ("higher", "lower")
TRADEOFF_KEYS = {"metric", "direction", "reason", "arch"}
TRADEOFFS_FILE = "tradeoffs.yaml"  # beside the series' patches


@dataclass(frozen=True)
class Tradeoff:
    """A change the series intends (``metric`` moves ``direction``, for ``reason``): a
    worsening it covers is listed as "intended, as declared", not as a regression."""

    metric: str  # fnmatch pattern on "<module>.<case>.<key>", e.g. kbulk_stress.*.p50_ns
    direction: str  # "higher" / "lower": the way the figure is meant to move
    reason: str
    arch: str | None = None  # None: every architecture
    source: str = ""  # file:line of the declaration

    @property
    def up(self) -> bool:
        return self.direction == "higher"

    def matches(self, arch: str, path: str) -> bool:
        if self.arch is not None and self.arch != arch:
            return False
        return fnmatch.fnmatchcase(path, self.metric)

    def to_json(self) -> dict[str, str | None]:
        return {
            "metric": self.metric,
            "direction": self.direction,
            "reason": self.reason,
            "arch": self.arch,
            "source": self.source,
        }

    @staticmethod
    def from_json(data: Mapping[str, object]) -> Tradeoff | None:
        metric, direction, reason = data.get("metric"), data.get("direction"), data.get("reason")
        if not (isinstance(metric, str) and isinstance(reason, str)):
            return None
        if direction not in TRADEOFF_DIRECTIONS:
            return None
        arch, source = data.get("arch"), data.get("source")
        return Tradeoff(
            metric,
            str(direction),
            reason,
            arch if isinstance(arch, str) else None,
            source if isinstance(source, str) else "",
        )


@dataclass
class RunSpec:
    name: str
    path: Path  # the YAML file this came from
    debian: DebianPackage | None
    series: Path | None
    arches: list[str]
    config_base: str = "tinyconfig"
    fragments: list[Path] = field(default_factory=list)
    # Only with the series applied: symbols the series itself adds (its KUnit
    # tests) do not exist in the baseline kernel.
    series_fragments: list[Path] = field(default_factory=list)
    arch_fragments: dict[str, list[Path]] = field(default_factory=dict)
    kunit_filter: str | None = None
    modules_dir: Path | None = None
    modules: list[ModuleLoad] = field(default_factory=list)
    boot: BootOptions = field(default_factory=BootOptions)
    # Intended trade-offs of the series (here and in <series>/tradeoffs.yaml).
    tradeoffs: list[Tradeoff] = field(default_factory=list)

    @property
    def declared_metrics(self) -> list[DeclaredMetric]:
        """How to judge the metrics the modules' regex rules yield (for compare)."""
        return [d for m in self.modules for d in m.declared]


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(
        self, where: _Map | None, key: str | None, message: str, line: int | None = None
    ) -> SpecError:
        if line is None and where is not None and key:
            line = where.key_lines.get(key, where.line)
        if line is None and where is not None:
            line = where.line
        loc = f"{self.path}:{line}" if line else str(self.path)
        return SpecError(f"{loc}: {key + ': ' if key else ''}{message}")

    def mapping(self, data: Any, parent: _Map | None, key: str, allowed: set[str]) -> _Map:
        if not isinstance(data, _Map):
            raise self.fail(parent, key, f"expected a mapping, got {type(data).__name__}")
        unknown = set(map(str, data)) - allowed
        if unknown:
            bad = sorted(unknown)[0]
            raise self.fail(data, bad, f"unknown key; allowed here: {', '.join(sorted(allowed))}")
        return data

    def typed(self, data: _Map, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        if key not in data:
            return default
        value = data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise self.fail(data, key, f"expected {names}, got {value!r}")
        return value

    def str_list(self, data: _Map, key: str) -> list[str]:
        value = self.typed(data, key, list, [])
        for item in value:
            if not isinstance(item, str | int | float) or isinstance(item, bool):
                raise self.fail(data, key, f"expected a list of strings, got item {item!r}")
        return [str(v) for v in value]

    def fragments(self, data: _Map, key: str, repo_root: Path) -> list[Path]:
        """Config fragment paths under ``key``; a bad one is blamed on its own item line."""
        items = self.str_list(data, key)
        lines = getattr(data[key], "item_lines", []) if key in data else []
        paths = []
        for index, item in enumerate(items):
            path = _resolve(repo_root, item)
            if path.is_dir():
                problem = "is a directory, not a file"
            elif not path.exists():
                problem = "does not exist"
            elif not path.is_file():
                problem = "is not a regular file"
            else:
                paths.append(path)
                continue
            line = lines[index] if index < len(lines) else None
            raise self.fail(data, key, f"config fragment {path} {problem}", line)
        return paths

    def seconds(self, data: _Map, key: str, default: float) -> float:
        value = float(self.typed(data, key, (int, float), default))
        if not (math.isfinite(value) and value > 0):
            raise self.fail(data, key, f"{value:g} seconds; a timeout must be a positive number")
        return value


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


TOP_KEYS = {
    "name", "source", "series", "arches", "config", "kunit", "modules", "boot", "tradeoffs",
}  # fmt: skip


def _tradeoffs(r: _Reader, parent: _Map | None, key: str, value: Any) -> list[Tradeoff]:
    """A list of {metric, direction, reason, arch?}; each error at its own line."""
    if not isinstance(value, list):
        raise r.fail(parent, key, f"expected a list of trade-offs, got {type(value).__name__}")
    lines = getattr(value, "item_lines", [])
    out = []
    for index, item in enumerate(value):
        line = lines[index] if index < len(lines) else None
        if not isinstance(item, _Map):
            raise r.fail(
                parent, key, f"each trade-off is a mapping of {', '.join(sorted(TRADEOFF_KEYS))}",
                line,
            )  # fmt: skip
        entry = r.mapping(item, parent, key, TRADEOFF_KEYS)
        for required in ("metric", "direction", "reason"):
            if required not in entry:
                raise r.fail(entry, None, f"trade-off needs '{required}'")
        metric = r.typed(entry, "metric", str, "")
        if metric.count(".") < 2:
            raise r.fail(
                entry, "metric",
                f"{metric!r}: expected <module>.<case>.<key> (fnmatch patterns allowed), "
                "e.g. kbulk_stress.gfp_kernel_order0.p50_ns",
            )  # fmt: skip
        direction = r.typed(entry, "direction", str, "")
        if direction not in TRADEOFF_DIRECTIONS:
            raise r.fail(
                entry, "direction",
                f"{direction!r}; allowed: {', '.join(TRADEOFF_DIRECTIONS)} "
                "(the way the figure is meant to move)",
            )  # fmt: skip
        reason = r.typed(entry, "reason", str, "").strip()
        if not reason:
            raise r.fail(entry, "reason", "a trade-off needs a reason (why it is worth it)")
        arch = r.typed(entry, "arch", (str, type(None)), None)
        if arch is not None and arch not in ARCHES:
            raise r.fail(
                entry, "arch", f"unknown architecture {arch!r}; known: {', '.join(ARCHES)}"
            )
        out.append(Tradeoff(metric, direction, reason, arch, f"{r.path}:{entry.line}"))
    return out


def _check_module_names(r: _Reader, mods: _Map, loads: list[ModuleLoad]) -> None:
    """One name, one directory: the guest image holds the modules by file name."""
    seen: dict[str, ModuleLoad] = {}
    for load in loads:
        first = seen.setdefault(load.name, load)
        if first.source != load.source:
            raise r.fail(
                mods, "load",
                f"module {load.name!r} comes from two directories ({load.where} and "
                f"{first.where}); rename one",
            )  # fmt: skip
        if first.rules != load.rules and first.rules and load.rules:
            raise r.fail(
                mods, "load",
                f"module {load.name!r} has two different metrics: lists ({load.where} and "
                f"{first.where}); declare them once",
            )  # fmt: skip


def _memcg(r: _Reader, entry: _Map) -> MemcgLimits:
    """``memcg: {max: 64M}``: the step runs in a child memory cgroup."""
    memcg = r.mapping(entry["memcg"], entry, "memcg", {"max"})
    if "max" not in memcg:
        raise r.fail(memcg, None, "memcg needs 'max' (memory.max, e.g. 64M)")
    raw = memcg["max"]
    sized = isinstance(raw, str | int) and not isinstance(raw, bool)
    size = parse_size(str(raw)) if sized else None
    if size is None:
        raise r.fail(memcg, "max", f"{raw!r} is not a size; use bytes or K/M/G, e.g. 64M")
    if size < MEMCG_MIN_BYTES:
        raise r.fail(memcg, "max", f"{raw!r} is below 1M; the module load itself is charged")
    return MemcgLimits(max_bytes=size)


def _load_yaml(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise SpecError(f"{path}: cannot read run definition: {e.strerror}") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise SpecError(
            f"{path}:{line}: run definition is not UTF-8 text "
            f"(byte 0x{raw[e.start]:02x} at offset {e.start})"
        ) from e
    try:
        return yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SpecError(f"{where}: invalid YAML: {getattr(e, 'problem', e)}") from e


def load_tradeoffs(path: Path) -> list[Tradeoff]:
    """A series' tradeoffs.yaml: ``tradeoffs:`` and a list, as in a run definition."""
    data = _load_yaml(path)
    r = _Reader(path)
    if data is None:
        return []
    top = r.mapping(data, None, "", {"tradeoffs"})
    return _tradeoffs(r, top, "tradeoffs", top.get("tradeoffs", []))


def tradeoffs_file(path: Path) -> list[Tradeoff]:
    """Trade-offs from either a tradeoffs.yaml or a run definition's ``tradeoffs:``
    (only that key is read: the rest of the run definition is not checked here)."""
    data = _load_yaml(path)
    r = _Reader(path)
    if data is None:
        return []
    top = r.mapping(data, None, "", TOP_KEYS)
    return _tradeoffs(r, top, "tradeoffs", top.get("tradeoffs", []))


def series_tradeoffs(series: Path | None) -> list[Tradeoff]:
    """The trade-offs declared beside a series (none when it has no tradeoffs.yaml)."""
    if series is None or not (series / TRADEOFFS_FILE).is_file():
        return []
    return load_tradeoffs(series / TRADEOFFS_FILE)


def _numa_nodes(r: _Reader, boot: _Map) -> int:
    """boot.numa: {nodes: N}; the memory must split evenly (checked against boot.memory)."""
    numa_map = r.mapping(boot["numa"], boot, "numa", {"nodes"})
    if "nodes" not in numa_map:
        raise r.fail(numa_map, None, "boot.numa needs 'nodes' (e.g. numa: {nodes: 2})")
    nodes = r.typed(numa_map, "nodes", int, 0)
    memory = str(r.typed(boot, "memory", (str, int), "1G"))
    smp = r.typed(boot, "smp", int, 2)
    try:
        numa.layout(nodes, memory, smp)
    except numa.NumaError as e:
        key = "memory" if "memory" in str(e) and "memory" in boot else "nodes"
        where = boot if key == "memory" else numa_map
        raise r.fail(where, key, f"boot.numa: {e}") from None
    return int(nodes)


def _mempolicy(r: _Reader, entry: _Map) -> MemPolicy:
    """A module step's mempolicy: {mode: bind|interleave|preferred|preferred_many, nodes: [..]}."""
    pol = r.mapping(entry["mempolicy"], entry, "mempolicy", {"mode", "nodes"})
    for required in ("mode", "nodes"):
        if required not in pol:
            raise r.fail(pol, None, f"mempolicy needs '{required}'")
    mode = r.typed(pol, "mode", str, "")
    allowed = ", ".join(m.value for m in MemPolicyMode)
    if mode not in {m.value for m in MemPolicyMode}:
        raise r.fail(pol, "mode", f"{mode!r}; allowed: {allowed}")
    nodes = r.typed(pol, "nodes", list, [])
    if any(not isinstance(n, int) or isinstance(n, bool) for n in nodes):
        raise r.fail(pol, "nodes", f"expected a list of node numbers, got {nodes!r}")
    try:
        return MemPolicy(MemPolicyMode(mode), tuple(nodes))
    except MemPolicyError as e:
        raise r.fail(pol, "nodes", str(e)) from None


def _check_mempolicy_nodes(r: _Reader, top: _Map, spec: RunSpec, lines: list[int]) -> None:
    """Every policy names nodes the guest has (a policy without boot.numa has no nodes to use)."""
    for load, line in zip(spec.modules, lines, strict=True):
        if load.mempolicy is None:
            continue
        nodes = spec.boot.numa_nodes
        if nodes is None:
            raise r.fail(
                top, "modules",
                f"{load.name}: a mempolicy needs a NUMA guest; add boot: numa: {{nodes: N}}",
                line,
            )  # fmt: skip
        missing = [n for n in load.mempolicy.nodes if n >= nodes]
        if missing:
            raise r.fail(
                top, "modules",
                f"{load.name}: mempolicy node(s) {missing} do not exist: boot.numa.nodes is "
                f"{nodes} (nodes 0-{nodes - 1})",
                line,
            )  # fmt: skip


def load_spec(path: Path, repo_root: Path) -> RunSpec:
    """Load a run definition; relative paths are relative to the repository root."""
    data = _load_yaml(path)
    r = _Reader(path)
    if data is None:
        raise SpecError(f"{path}: empty run definition")
    top = r.mapping(data, None, "", TOP_KEYS)
    spec = RunSpec(
        name=r.typed(top, "name", str, path.stem),
        path=path,
        debian=None,
        series=None,
        arches=r.str_list(top, "arches") or list(ARCHES),
    )
    for arch in spec.arches:
        if arch not in ARCHES:
            raise r.fail(
                top, "arches", f"unknown architecture {arch!r}; known: {', '.join(ARCHES)}"
            )

    if "source" in top:
        source = r.mapping(top["source"], top, "source", {"debian"})
        if "debian" in source:
            deb = r.mapping(
                source["debian"], source, "debian", {"package", "version", "suite", "sha256"}
            )
            for required in ("package", "version", "suite"):
                if required not in deb:
                    raise r.fail(deb, None, f"source.debian needs '{required}'")
            spec.debian = DebianPackage(
                package=r.typed(deb, "package", str, ""),
                version=str(deb["version"]),
                suite=r.typed(deb, "suite", str, ""),
                sha256=r.typed(deb, "sha256", str, None),
            )
    series = r.typed(top, "series", (str, type(None)), None)
    spec.series = _resolve(repo_root, series) if series else None

    if "config" in top:
        config_keys = {"base", "fragments", "series_fragments", "arch_fragments"}
        cfg = r.mapping(top["config"], top, "config", config_keys)
        spec.config_base = r.typed(cfg, "base", str, "tinyconfig")
        spec.fragments = r.fragments(cfg, "fragments", repo_root)
        spec.series_fragments = r.fragments(cfg, "series_fragments", repo_root)
        if "arch_fragments" in cfg:
            per_arch = r.mapping(cfg["arch_fragments"], cfg, "arch_fragments", set(ARCHES))
            spec.arch_fragments = {a: r.fragments(per_arch, a, repo_root) for a in per_arch}

    if "kunit" in top:
        kunit = r.mapping(top["kunit"], top, "kunit", {"filter_glob"})
        spec.kunit_filter = r.typed(kunit, "filter_glob", (str, type(None)), None)

    policy_lines: list[int] = []  # line of each module entry's mempolicy (or the entry)
    if "modules" in top:
        mods = r.mapping(top["modules"], top, "modules", {"dir", "load"})
        spec.modules_dir = _resolve(repo_root, r.typed(mods, "dir", str, "kselftests"))
        loads = r.typed(mods, "load", list, [])
        lines = getattr(loads, "item_lines", [])
        for index, item in enumerate(loads):
            label = f"modules.load[{index}]"
            if isinstance(item, str):
                line = lines[index] if index < len(lines) else None
                check_name(r, label, item, line)
                spec.modules.append(ModuleLoad(item, where=f"{path}:{line}"))
                policy_lines.append(mods.key_lines.get("load", mods.line))
                continue
            keys = {"name", "params", "mempolicy", "memcg", *ENTRY_KEYS}
            entry = r.mapping(item, mods, "load", keys)
            if "name" not in entry:
                raise r.fail(entry, None, "modules.load entry needs 'name'")
            name = r.typed(entry, "name", str, "")
            check_name(r, label, name, entry.key_lines.get("name", entry.line))
            extras = parse_entry_extras(r, entry, label, name, path.parent.resolve())
            spec.modules.append(
                ModuleLoad(
                    name, r.str_list(entry, "params"), extras.source, extras.load_rc,
                    extras.rules, extras.declared, extras.where,
                    _mempolicy(r, entry) if "mempolicy" in entry else None,
                    _memcg(r, entry) if "memcg" in entry else None,
                )
            )  # fmt: skip
            policy_lines.append(entry.key_lines.get("mempolicy", entry.line))
        _check_module_names(r, mods, spec.modules)

    if "boot" in top:
        boot = r.mapping(
            top["boot"],
            top,
            "boot",
            {"memory", "smp", "cmdline", "timeout", "inactivity_timeout", "icount", "numa"},
        )
        icount = r.typed(boot, "icount", (int, type(None)), None)
        if icount is not None and not 0 <= icount <= 10:
            raise r.fail(boot, "icount", f"shift {icount} out of range; use 0 (1 ns/insn) to 10")
        spec.boot = BootOptions(
            memory=str(r.typed(boot, "memory", (str, int), "1G")),
            smp=r.typed(boot, "smp", int, 2),
            cmdline=r.str_list(boot, "cmdline") if "cmdline" in boot else ["panic=-1"],
            timeout=r.seconds(boot, "timeout", 1200),
            inactivity_timeout=r.seconds(boot, "inactivity_timeout", 300),
            icount=icount,
            numa_nodes=_numa_nodes(r, boot) if "numa" in boot else None,
        )
    _check_mempolicy_nodes(r, top, spec, policy_lines)
    if "tradeoffs" in top:
        spec.tradeoffs = _tradeoffs(r, top, "tradeoffs", top["tradeoffs"])
    return spec
