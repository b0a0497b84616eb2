"""Kernel configuration: a small base plus fragments, verified after olddefconfig.

Like kunit_tool, every symbol a fragment asks for must survive `olddefconfig`
(Kconfig silently drops symbols whose dependencies are not met); the harness
fails naming the symbols that did not, instead of building a kernel that
quietly lacks the tests.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.record.status import RunStatus

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


class KconfigError(HarnessError, ValueError):
    """A config fragment or request is malformed (names file:line)."""

    status = RunStatus.CONFIG_ERROR


@dataclass(frozen=True)
class Requirement:
    symbol: str
    value: str  # "y", "m", "n", a number or a quoted string
    origin: str  # "file:line" or "arch x86_64"


@dataclass
class ConfigRequest:
    base_target: str  # e.g. "tinyconfig"
    requirements: list[Requirement] = field(default_factory=list)

    def add_fragment_text(self, text: str, origin: str) -> None:
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            where = f"{origin}:{lineno}"
            if not line or (line.startswith("#") and not _UNSET.match(line)):
                continue
            if m := _SET.match(line):
                self.requirements.append(Requirement(m.group(1), m.group(2), where))
            elif m := _UNSET.match(line):
                self.requirements.append(Requirement(m.group(1), "n", where))
            else:
                raise KconfigError(
                    f"{where}: not a Kconfig line: {raw!r} "
                    f"(expected CONFIG_FOO=y or '# CONFIG_FOO is not set')"
                )

    def add_fragment(self, path: Path) -> None:
        try:
            text = path.read_text()
        except OSError as e:
            raise KconfigError(f"config fragment {path}: {e.strerror}") from e
        self.add_fragment_text(text, str(path))

    def add_symbols(self, symbols: dict[str, str], origin: str) -> None:
        for symbol, value in symbols.items():
            self.requirements.append(Requirement(symbol, value, origin))

    def effective(self) -> dict[str, Requirement]:
        """Later requirements override earlier ones, as merge_config.sh does."""
        return {r.symbol: r for r in self.requirements}

    def fragment_text(self) -> str:
        lines = []
        for req in self.effective().values():
            if req.value == "n":
                lines.append(f"# {req.symbol} is not set")
            else:
                lines.append(f"{req.symbol}={req.value}")
        return "\n".join(lines) + "\n"

    @property
    def digest(self) -> str:
        h = hashlib.sha256(self.base_target.encode() + b"\0" + self.fragment_text().encode())
        return h.hexdigest()


def parse_dotconfig(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        if m := _SET.match(line):
            values[m.group(1)] = m.group(2)
        elif m := _UNSET.match(line):
            values[m.group(1)] = "n"
    return values


@dataclass(frozen=True)
class Mismatch:
    requirement: Requirement
    actual: str  # "n" when absent

    def __str__(self) -> str:
        r = self.requirement
        return f"{r.symbol}={r.value} (from {r.origin}) became {self.actual}"


def verify(request: ConfigRequest, dotconfig_text: str) -> list[Mismatch]:
    actual = parse_dotconfig(dotconfig_text)
    problems = []
    for req in request.effective().values():
        got = actual.get(req.symbol, "n")
        if got != req.value:
            problems.append(Mismatch(req, got))
    return problems
