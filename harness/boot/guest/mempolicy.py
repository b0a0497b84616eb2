"""A task memory policy for one module step: set by the guest's init before it loads the
module, so the module's init function allocates under it (set_mempolicy(2) semantics)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class MemPolicyMode(enum.StrEnum):
    """The set_mempolicy(2) modes a step may ask for (the plan spells them this way)."""

    BIND = "bind"
    INTERLEAVE = "interleave"
    PREFERRED = "preferred"
    PREFERRED_MANY = "preferred_many"


class MemPolicyError(ValueError):
    pass


@dataclass(frozen=True)
class MemPolicy:
    mode: MemPolicyMode
    nodes: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.nodes:
            raise MemPolicyError(f"{self.mode}: needs at least one node")
        if len(set(self.nodes)) != len(self.nodes):
            raise MemPolicyError(f"{self.mode}: node listed twice in {list(self.nodes)}")
        if any(n < 0 for n in self.nodes):
            raise MemPolicyError(f"{self.mode}: node numbers start at 0, got {list(self.nodes)}")
        # MPOL_PREFERRED takes one node; several preferred nodes are preferred_many.
        if self.mode is MemPolicyMode.PREFERRED and len(self.nodes) != 1:
            raise MemPolicyError(
                f"preferred takes exactly one node, got {list(self.nodes)}; "
                "use preferred_many for a set"
            )

    def plan_line(self) -> str:
        """``mempolicy <mode> <n,n,...>``: the guest init's plan step."""
        return f"mempolicy {self.mode} {','.join(map(str, sorted(self.nodes)))}"


# Restores the default policy after the step (init's own later allocations are its own).
RESET_LINE = "mempolicy default"
