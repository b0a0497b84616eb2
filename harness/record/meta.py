"""The typed ``meta`` block of results.json (schema versions 1 and 2).

Every key a kbulk command writes is a field here; the JSON key names are the
field names. Keys this version does not know (written by a newer or older kbulk,
or by hand) are kept in :attr:`RunMeta.extra` and written back unchanged, so a
load/save round trip loses nothing. A known key holding a value of the wrong type
is read as absent, never a crash: meta is context, the runs are the results.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.analysis.module_metrics import DeclaredMetric
from harness.spec import Tradeoff

__all__ = [
    "CellMeta",
    "HostMeta",
    "MergeMeta",
    "RepsAutoMeta",
    "RunMeta",
    "SeriesMeta",
    "SourceMeta",
    "utc_now",
]


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _strs(value: object) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [str(v) for v in value]


def _map(value: object) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


@dataclass
class HostMeta:
    """The machine kbulk ran on (meta.host)."""

    hostname: str | None = None
    platform: str | None = None
    machine: str | None = None
    python: str | None = None
    cpus: int | None = None

    @classmethod
    def current(cls) -> HostMeta:
        return cls(
            hostname=socket.gethostname(),
            platform=platform.platform(),
            machine=platform.machine(),
            python=platform.python_version(),
            cpus=os.cpu_count(),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "hostname": self.hostname,
            "platform": self.platform,
            "machine": self.machine,
            "python": self.python,
            "cpus": self.cpus,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HostMeta:
        return cls(
            hostname=_str(data.get("hostname")),
            platform=_str(data.get("platform")),
            machine=_str(data.get("machine")),
            python=_str(data.get("python")),
            cpus=_int(data.get("cpus")),
        )


@dataclass
class SourceMeta:
    """The kernel source tree (meta.source)."""

    origin: str
    version: str
    sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"origin": self.origin, "version": self.version, "sha256": self.sha256}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SourceMeta:
        return cls(
            origin=str(data.get("origin", "?")),
            version=str(data.get("version", "?")),
            sha256=_str(data.get("sha256")),
        )


@dataclass
class SeriesMeta:
    """The patch series applied (meta.series): the patches in order, each with its
    sha256 (KCIDB's patchset_hash is computed from those)."""

    dir: str | None = None
    sha256: str | None = None
    patches: list[str] = field(default_factory=list)
    patch_sha256: list[str] | None = None  # absent in files written before it was recorded

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"dir": self.dir, "sha256": self.sha256, "patches": self.patches}
        if self.patch_sha256 is not None:
            data["patch_sha256"] = self.patch_sha256
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SeriesMeta:
        return cls(
            dir=_str(data.get("dir")),
            sha256=_str(data.get("sha256")),
            patches=_strs(data.get("patches")) or [],
            patch_sha256=_strs(data.get("patch_sha256")),
        )


@dataclass
class RepsAutoMeta:
    """What `kbulk ab --reps auto` decided for one architecture (meta.reps_auto[arch])."""

    reps: int
    max_reps: int
    stop: str
    text: str
    wide: list[tuple[str, float, float]] = field(default_factory=list)  # label, width, target

    def to_json(self) -> dict[str, Any]:
        return {
            "reps": self.reps,
            "max_reps": self.max_reps,
            "stop": self.stop,
            "text": self.text,
            "wide": [[label, width, target] for label, width, target in self.wide],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RepsAutoMeta | None:
        reps, max_reps = _int(data.get("reps")), _int(data.get("max_reps"))
        stop, text = _str(data.get("stop")), _str(data.get("text"))
        if reps is None or max_reps is None or stop is None or text is None:
            return None
        wide = []
        for item in data.get("wide") or []:
            if isinstance(item, list) and len(item) == 3:
                width, target = _num(item[1]), _num(item[2])
                if width is not None and target is not None:
                    wide.append((str(item[0]), width, target))
        return cls(reps, max_reps, stop, text, wide)


@dataclass
class CellMeta:
    """One cell of a plan (`kbulk run --cell`): which cell, of which plan (meta.cell)."""

    id: str
    plan_id: str
    plan_cells: list[str]  # every cell of the plan, so a merge can name missing ones
    series: str | None = None  # the cell's series directory as the plan names it
    upto: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "plan_id": self.plan_id,
            "plan_cells": list(self.plan_cells),
            "series": self.series,
            "upto": self.upto,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CellMeta | None:
        cell_id, plan_id = _str(data.get("id")), _str(data.get("plan_id"))
        if cell_id is None or plan_id is None:
            return None
        return cls(
            cell_id,
            plan_id,
            _strs(data.get("plan_cells")) or [],
            _str(data.get("series")),
            _int(data.get("upto")),
        )


@dataclass
class MergeMeta:
    """What `kbulk merge` merged (meta.merged): the cells, and what --force let through."""

    plan_id: str | None
    cells: list[dict[str, Any]] = field(default_factory=list)  # id, dir, run_id, hostname
    forced: bool = False
    warnings: list[str] = field(default_factory=list)  # every refusal --force overrode

    def to_json(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "cells": [dict(c) for c in self.cells],
            "forced": self.forced,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MergeMeta:
        cells = data.get("cells")
        return cls(
            _str(data.get("plan_id")),
            [dict(c) for c in cells if isinstance(c, Mapping)] if isinstance(cells, list) else [],
            data.get("forced") is True,
            _strs(data.get("warnings")) or [],
        )


# JSON key order of a written meta block (unset fields are left out).
_KEYS = (
    "command_line", "host", "started", "mode", "repetitions", "max_reps", "spec",
    "spec_name", "arches", "source_sha256", "parsed_log", "run_id", "created", "complete",
    "source", "series", "kernel", "kernels", "tradeoffs", "module_metrics", "reps_auto",
    "cell", "merged",
    "updated", "finished",
)  # fmt: skip


@dataclass
class RunMeta:
    """results.json ``meta``: how, where and on what a kbulk command ran.

    ``None`` (or an empty ``extra``) means the key is not written.
    """

    command_line: list[str] = field(default_factory=list)
    host: HostMeta | None = None
    started: str | None = None
    # the run definition and the arches asked for (run, ab)
    spec: str | None = None
    spec_name: str | None = None
    arches: list[str] | None = None
    # the result directory's life (ResultDir)
    run_id: str | None = None
    created: str | None = None
    updated: str | None = None
    finished: str | None = None
    complete: bool | None = None
    # what was built (run, ab, series-check)
    source: SourceMeta | None = None
    source_sha256: str | None = None  # series-check: the source's checksum alone
    series: SeriesMeta | None = None
    kernel: str | None = None
    kernels: dict[str, str] | None = None  # ab: variant -> kernel label
    # A/B (kbulk ab)
    mode: str | None = None
    repetitions: int | str | None = None  # a number, or "auto"
    max_reps: int | None = None  # with repetitions "auto"
    reps_auto: dict[str, RepsAutoMeta] | None = None  # arch -> the stopping decision
    tradeoffs: list[Tradeoff] | None = None  # declared (run definition, tradeoffs.yaml)
    # how to judge the metrics of modules read with regex rules (run definition)
    module_metrics: list[DeclaredMetric] | None = None
    # kbulk parse
    parsed_log: str | None = None
    # plans: the cell this directory holds (run --cell), or the cells merged (merge)
    cell: CellMeta | None = None
    merged: MergeMeta | None = None
    # keys this version does not know, kept as read
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, argv: Sequence[str] | None = None) -> RunMeta:
        """The standard start: command line, host, start time."""
        return cls(
            command_line=[str(a) for a in (sys.argv if argv is None else argv)],
            host=HostMeta.current(),
            started=utc_now(),
        )

    def to_json(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "command_line": list(self.command_line),
            "host": self.host.to_json() if self.host is not None else None,
            "started": self.started,
            "mode": self.mode,
            "repetitions": self.repetitions,
            "max_reps": self.max_reps,
            "spec": self.spec,
            "spec_name": self.spec_name,
            "arches": list(self.arches) if self.arches is not None else None,
            "source_sha256": self.source_sha256,
            "parsed_log": self.parsed_log,
            "run_id": self.run_id,
            "created": self.created,
            "complete": self.complete,
            "source": self.source.to_json() if self.source is not None else None,
            "series": self.series.to_json() if self.series is not None else None,
            "kernel": self.kernel,
            "kernels": dict(self.kernels) if self.kernels is not None else None,
            "tradeoffs": (
                [t.to_json() for t in self.tradeoffs] if self.tradeoffs is not None else None
            ),
            "module_metrics": (
                [d.to_json() for d in self.module_metrics]
                if self.module_metrics is not None
                else None
            ),
            "reps_auto": (
                {a: d.to_json() for a, d in self.reps_auto.items()}
                if self.reps_auto is not None
                else None
            ),
            "cell": self.cell.to_json() if self.cell is not None else None,
            "merged": self.merged.to_json() if self.merged is not None else None,
            "updated": self.updated,
            "finished": self.finished,
        }
        assert tuple(values) == _KEYS
        data = _drop_none(values)
        data.update({k: v for k, v in self.extra.items() if k not in data})
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunMeta:
        host, source, series = _map(data.get("host")), _map(data.get("source")), None
        if (raw_series := _map(data.get("series"))) is not None:
            series = SeriesMeta.from_json(raw_series)
        kernels = _map(data.get("kernels"))
        reps_auto = _map(data.get("reps_auto"))
        cell, merged = _map(data.get("cell")), _map(data.get("merged"))
        tradeoffs = data.get("tradeoffs")
        module_metrics = data.get("module_metrics")
        repetitions = data.get("repetitions")
        complete = data.get("complete")
        extra = {k: v for k, v in data.items() if k not in _KEYS}
        # a known key with a value of an unexpected shape: kept as read, not lost
        extra.update({k: data[k] for k in ("series", "source") if k in data and not _map(data[k])})
        return cls(
            command_line=_strs(data.get("command_line")) or [],
            host=HostMeta.from_json(host) if host is not None else None,
            started=_str(data.get("started")),
            spec=_str(data.get("spec")),
            spec_name=_str(data.get("spec_name")),
            arches=_strs(data.get("arches")),
            run_id=_str(data.get("run_id")),
            created=_str(data.get("created")),
            updated=_str(data.get("updated")),
            finished=_str(data.get("finished")),
            complete=complete if isinstance(complete, bool) else None,
            source=SourceMeta.from_json(source) if source is not None else None,
            source_sha256=_str(data.get("source_sha256")),
            series=series,
            kernel=_str(data.get("kernel")),
            kernels={str(k): str(v) for k, v in kernels.items()} if kernels is not None else None,
            mode=_str(data.get("mode")),
            repetitions=repetitions if isinstance(repetitions, int | str) else None,
            max_reps=_int(data.get("max_reps")),
            reps_auto=(
                {
                    str(arch): decision
                    for arch, entry in reps_auto.items()
                    if isinstance(entry, Mapping)
                    and (decision := RepsAutoMeta.from_json(entry)) is not None
                }
                if reps_auto is not None
                else None
            ),
            tradeoffs=(
                [
                    t
                    for item in tradeoffs
                    if isinstance(item, Mapping) and (t := Tradeoff.from_json(item)) is not None
                ]
                if isinstance(tradeoffs, list)
                else None
            ),
            module_metrics=(
                [
                    d
                    for item in module_metrics
                    if isinstance(item, Mapping)
                    and (d := DeclaredMetric.from_json(item)) is not None
                ]
                if isinstance(module_metrics, list)
                else None
            ),
            parsed_log=_str(data.get("parsed_log")),
            cell=CellMeta.from_json(cell) if cell is not None else None,
            merged=MergeMeta.from_json(merged) if merged is not None else None,
            extra=extra,
        )
