"""The shape a results.json must have before it is read (compare, report): every
problem is a :class:`ResultsFormatError` naming the file and the field
(``runs[0].metrics[2].values``), never a traceback from deep in the reader."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harness.record.status import Accel, CrashKind, ExitReason, RunStatus, Variant

__all__ = ["ResultsFormatError", "check_document"]


class ResultsFormatError(ValueError):
    """A results.json that is not JSON or not the schema; the message names file and field."""


_Check = Callable[[Any, str], None]


class _Checker:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, where: str, what: str, value: Any) -> None:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ResultsFormatError(f"{self.path}: {where}: expected {what}, found {shown}")

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(where, "an object", value)
        return value  # type: ignore[no-any-return]

    def is_mapping(self, value: Any, where: str) -> None:
        self.mapping(value, where)

    def listing(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(where, "a list", value)
        return value  # type: ignore[no-any-return]

    def field(
        self, data: Mapping[str, Any], key: str, where: str, check: _Check, required: bool = False
    ) -> None:
        if key not in data:
            if required:
                raise ResultsFormatError(f"{self.path}: {where}.{key}: missing")
            return
        check(data[key], f"{where}.{key}")

    def string(self, value: Any, where: str) -> None:
        if not isinstance(value, str):
            self.fail(where, "a string", value)

    def opt_string(self, value: Any, where: str) -> None:
        if value is not None:
            self.string(value, where)

    def number(self, value: Any, where: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(where, "a number", value)

    def opt_int(self, value: Any, where: str) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            self.fail(where, "an integer or null", value)

    def enum(self, kind: type[Any]) -> _Check:
        def check(value: Any, where: str) -> None:
            names = [str(m) for m in kind]
            if value not in names:
                self.fail(where, "one of " + ", ".join(names), value)

        return check

    def opt(self, check: _Check) -> _Check:
        return lambda value, where: None if value is None else check(value, where)

    def each(self, check: _Check) -> _Check:
        def run(value: Any, where: str) -> None:
            for i, item in enumerate(self.listing(value, where)):
                check(item, f"{where}[{i}]")

        return run

    def values(self, check: _Check) -> _Check:
        def run(value: Any, where: str) -> None:
            for key, item in self.mapping(value, where).items():
                check(item, f"{where}.{key}")

        return run

    def node(self, value: Any, where: str) -> None:
        data = self.mapping(value, where)
        self.field(data, "name", where, self.string, required=True)
        self.field(data, "status", where, self.string, required=True)
        self.field(data, "diagnostics", where, self.each(self.string))
        self.field(data, "subtests", where, self.each(self.node))

    def ktap(self, value: Any, where: str) -> None:
        data = self.mapping(value, where)
        self.field(data, "root", where, self.node, required=True)
        self.field(data, "warnings", where, self.each(self.string))

    def crash(self, value: Any, where: str) -> None:
        data = self.mapping(value, where)
        self.field(data, "kind", where, self.enum(CrashKind), required=True)
        self.field(data, "title", where, self.string, required=True)
        self.field(data, "line", where, self.opt_int, required=True)
        self.field(data, "excerpt", where, self.each(self.string))
        self.field(data, "source", where, self.opt_string)

    def metric(self, value: Any, where: str) -> None:
        data = self.mapping(value, where)
        self.field(data, "test", where, self.string, required=True)
        self.field(data, "test_path", where, self.each(self.string))
        self.field(data, "values", where, self.is_mapping)

    def build(self, value: Any, where: str) -> None:
        data = self.mapping(value, where)
        self.field(data, "dir", where, self.string, required=True)
        self.field(data, "log", where, self.string, required=True)
        self.field(data, "make_argv", where, self.each(self.string))

    def boot(self, value: Any, where: str) -> None:
        data = self.mapping(value, where)
        self.field(data, "accel", where, self.opt(self.enum(Accel)))
        self.field(data, "exit_reason", where, self.opt(self.enum(ExitReason)))
        self.field(data, "qemu_argv", where, self.each(self.string))
        self.field(data, "smp", where, self.opt_int)
        self.field(data, "numa_nodes", where, self.opt_int)
        self.field(data, "notes", where, self.each(self.string))

    def ab(self, value: Any, where: str) -> None:
        data = self.mapping(value, where)
        self.field(data, "variant", where, self.enum(Variant), required=True)
        self.field(data, "repetition", where, self.opt_int, required=True)

    def run(self, value: Any, where: str, version: int) -> None:
        data = self.mapping(value, where)
        self.field(data, "arch", where, self.string, required=True)
        self.field(data, "kernel", where, self.string, required=True)
        self.field(data, "status", where, self.enum(RunStatus), required=True)
        self.field(data, "message", where, self.opt_string)
        self.field(data, "console_log", where, self.opt_string)
        self.field(data, "durations", where, self.values(self.number))
        self.field(data, "ktap", where, self.opt(self.ktap))
        self.field(data, "crashes", where, self.each(self.crash))
        self.field(data, "metrics", where, self.each(self.metric))
        if version == 1:
            self.field(data, "details", where, self.opt(self.is_mapping))
            return
        self.field(data, "series", where, self.opt_string)
        self.field(data, "build", where, self.opt(self.build))
        self.field(data, "boot", where, self.opt(self.boot))
        self.field(data, "ab", where, self.opt(self.ab))
        self.field(data, "module_steps", where, self.values(self.opt_int))


def check_document(data: Any, path: str, newest: int) -> int:
    """Check a parsed results.json; return its schema version."""
    checker = _Checker(path)
    document = checker.mapping(data, "top level")
    version = document.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= newest:
        raise ResultsFormatError(f"{path}: schema_version: unsupported value {version!r}")
    if "meta" in document:
        checker.is_mapping(document["meta"], "meta")
    runs = checker.listing(document.get("runs", []), "runs")
    for i, run in enumerate(runs):
        checker.run(run, f"runs[{i}]", version)
    return version
