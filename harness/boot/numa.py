"""NUMA guests: a node count from the run definition -> QEMU memory backends and -numa nodes.

The guest's memory is split evenly between the nodes and its CPUs are spread
over them in contiguous blocks (the first nodes get one more when they do not
divide evenly; with fewer CPUs than nodes the last nodes are memory-only, as
CXL-style memory nodes are). Every node is a ``memory-backend-ram`` object, so
the layout is explicit and QEMU's deprecated implicit split is never used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# QEMU's -m syntax: a number of MiB, or a number with a binary suffix.
_MEMORY = re.compile(r"^\s*(\d+)\s*([MmGgTt]?)[iI]?[bB]?\s*$")
_MIB_PER_UNIT = {"": 1, "m": 1, "g": 1024, "t": 1024 * 1024}

MAX_NODES = 16  # well inside every arch's NODES_SHIFT default; more proves nothing here


class NumaError(ValueError):
    """A NUMA request that cannot be turned into a guest (the message says why)."""


@dataclass(frozen=True)
class NumaNode:
    node_id: int
    memory_mib: int
    cpus: tuple[int, ...]  # empty: a memory-only node

    def cpu_ranges(self) -> list[str]:
        """The CPUs as QEMU ``cpus=`` values, one contiguous range each (``0`` or ``2-3``)."""
        if not self.cpus:
            return []
        first, last = self.cpus[0], self.cpus[-1]
        return [str(first) if first == last else f"{first}-{last}"]


def memory_mib(text: str) -> int:
    """QEMU -m value in MiB: ``1G`` -> 1024, ``512M`` / ``512`` -> 512."""
    match = _MEMORY.match(text)
    if match is None:
        raise NumaError(f"memory {text!r}: expected a size such as 1G or 512M")
    return int(match.group(1)) * _MIB_PER_UNIT[match.group(2).lower()]


def layout(nodes: int, memory: str, smp: int) -> list[NumaNode]:
    """Split ``memory`` evenly and ``smp`` CPUs in blocks over ``nodes`` nodes."""
    if not 1 <= nodes <= MAX_NODES:
        raise NumaError(f"{nodes} nodes; allowed: 1 to {MAX_NODES}")
    if smp < 1:
        raise NumaError(f"{smp} CPUs; a guest needs at least one")
    total = memory_mib(memory)
    if total % nodes:
        raise NumaError(
            f"memory {memory} ({total} MiB) does not split evenly into {nodes} nodes; "
            f"use a multiple of {nodes} MiB"
        )
    per_node = total // nodes
    base, extra = divmod(smp, nodes)
    out, cpu = [], 0
    for node in range(nodes):
        count = base + (1 if node < extra else 0)
        out.append(NumaNode(node, per_node, tuple(range(cpu, cpu + count))))
        cpu += count
    return out


def qemu_args(nodes: list[NumaNode]) -> list[str]:
    """-object/-numa arguments for the layout (the total stays QEMU's -m)."""
    argv: list[str] = []
    for node in nodes:
        memdev = f"kbulk-numa-mem{node.node_id}"
        argv += ["-object", f"memory-backend-ram,id={memdev},size={node.memory_mib}M"]
        spec = [f"node,nodeid={node.node_id}", *(f"cpus={r}" for r in node.cpu_ranges())]
        argv += ["-numa", ",".join([*spec, f"memdev={memdev}"])]
    return argv
